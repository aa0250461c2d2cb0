"""`tokenizer.pad`: pad encodings made earlier (lists or dicts of them) to a common length, as HF does.

HF's behaviour followed: `tokenization_utils_base.py`, `PreTrainedTokenizerBase.pad` and `_pad`:

- input: one encoding (a dict / BatchEncoding of lists), a dict of batched lists, or a list of encodings
  (turned into a dict of lists); it must hold `input_ids` (`model_input_names[0]`);
- NumPy arrays (and torch tensors, anything with `tolist`) are turned into lists first, and then
  `return_tensors` defaults to "np";
- `padding`: True / "longest" (the longest of the batch), "max_length" (`max_length`, or the model's),
  False / "do_not_pad"; `pad_to_multiple_of` rounds the length up; `padding_side` defaults to the tokenizer's;
- per example: `attention_mask` is created (1s) if asked for (default: if the model takes it) and padded
  with 0, `token_type_ids` with 0, `special_tokens_mask` with 1, `input_ids` with the pad id; other keys
  (`offset_mapping`, `length`, ...) are left as they are, as HF's `_pad` leaves them.

Deliberate differences: the input is not modified (HF pads a single encoding in place); torch tensors come
back as NumPy arrays (HF: torch tensors), since xlmr_np returns None or "np" only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import numpy as np

from .batching import BatchEncoding, batch_encoding, pad_example, resolve_strategies
from .inputs import check_call_arguments, to_python


def pad_encodings(tok, encoded_inputs, padding=True, max_length: Optional[int] = None,
                  pad_to_multiple_of: Optional[int] = None, padding_side: Optional[str] = None,
                  return_attention_mask: Optional[bool] = None, return_tensors=None, verbose: bool = True):
    """HF `pad` for the tokenizer `tok` (its pad id, padding side, model input names, model_max_length)."""
    if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
        encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0]}
    if not isinstance(encoded_inputs, Mapping):
        raise TypeError(f"pad takes an encoding (a dict with {tok.model_input_names[0]!r}) or a list of them, "
                        f"got {type(encoded_inputs).__name__}")
    key = tok.model_input_names[0]
    if key not in encoded_inputs:
        raise ValueError("You should supply an encoding or a list of encodings to this method that includes "
                         f"{key}, but you provided {list(encoded_inputs.keys())}")
    encoded_inputs = dict(encoded_inputs)
    required = encoded_inputs[key]
    if required is None or len(required) == 0:
        if return_attention_mask:
            encoded_inputs["attention_mask"] = []
        return encoded_inputs
    return_tensors = _convert_arrays(encoded_inputs, key, return_tensors)
    check_call_arguments(return_tensors, padding_side, 0)
    strategy, _, max_length = resolve_strategies(padding, None, max_length, None, tok.model_max_length,
                                                 tok._warned, verbose)
    if return_attention_mask is None:
        return_attention_mask = "attention_mask" in tok.model_input_names
    side = padding_side or tok.padding_side
    pad = dict(pad_to_multiple_of=pad_to_multiple_of, side=side, return_attention_mask=return_attention_mask,
               pad_id=tok.pad_token_id, pad_type_id=tok.pad_token_type_id, key=key)
    required = encoded_inputs[key]
    if not isinstance(required[0], (list, tuple)):  # one example
        return BatchEncoding(batch_encoding(pad_example(encoded_inputs, strategy, max_length, **pad), return_tensors))
    if any(len(v) != len(required) for v in encoded_inputs.values()):
        raise ValueError("Some items in the output dictionary have a different batch size than others.")
    if strategy == "longest":
        strategy, max_length = "max_length", max(len(ids) for ids in required)
    out = {}
    for i in range(len(required)):
        example = pad_example({k: v[i] for k, v in encoded_inputs.items()}, strategy, max_length, **pad)
        for name, value in example.items():
            out.setdefault(name, []).append(value)
    return batch_encoding(out, return_tensors)


def _convert_arrays(encoded_inputs: dict, key: str, return_tensors):
    """Arrays and tensors to lists in place (HF: `to_py_obj`); returns `return_tensors`, "np" by default then."""
    required = encoded_inputs[key]
    first = required[0]
    if isinstance(first, (list, tuple)):
        first = next((item[0] for item in required if len(item)), first)
    if isinstance(first, (int, list, tuple)):
        return return_tensors
    if not (isinstance(first, np.ndarray) or hasattr(first, "tolist")) or isinstance(first, np.generic):
        raise ValueError(f"type of {first} unknown: {type(first)}. Should be one of a python, numpy, pytorch or "
                         "tensorflow object.")
    for name, value in encoded_inputs.items():
        encoded_inputs[name] = _to_lists(value)
    return "np" if return_tensors is None else return_tensors


def _to_lists(value):
    if isinstance(value, (list, tuple)):
        return [_to_lists(v) for v in value]
    return to_python(value)
