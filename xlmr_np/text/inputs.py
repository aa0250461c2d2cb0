"""What a caller passes to the tokenizer: texts checked and sorted into examples, call arguments checked.

HF's behaviour followed, in `tokenization_utils_base.py`: `PreTrainedTokenizerBase.__call__` / `_call_one`
(a str, a pair, a batch of str or of pairs, pre-split words with `is_split_into_words`; a batch `text_pair`
must be a list as long as `text`), and `prepare_for_model` (token_type_ids need the special tokens;
`return_token_type_ids` / `return_attention_mask` default to whether the model takes them).  Deliberate
differences: a non-string input raises TypeError naming its position in the batch; `return_tensors` is
None or "np" only.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np


def check_text(value, where: str) -> None:
    """TypeError unless `value` is a str; `where` names it in the message ("text", "text_pair[2]", ...)."""
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a str, got {type(value).__name__} ({value!r:.40}); decode bytes first "
                        "and pass text, not ids")


def collect_examples(text, text_pair, is_split_into_words: bool):
    """Normalise the `__call__` inputs to a list of (first, second) examples and whether it was a batch.

    A sequence is a str, or a list of str words when is_split_into_words=True.
    """
    def check_sequence(seq, where):
        if is_split_into_words:
            if not isinstance(seq, (list, tuple)):
                raise TypeError(f"{where} must be a list of words (is_split_into_words=True), "
                                f"got {type(seq).__name__}")
            for j, word in enumerate(seq):
                check_text(word, f"{where}[{j}]")
            return list(seq)
        check_text(seq, where)
        return seq

    if text is None:
        raise TypeError("text must be a str or a list of str, got None")
    if is_split_into_words:
        batched = isinstance(text, (list, tuple)) and len(text) > 0 and isinstance(text[0], (list, tuple))
    else:
        batched = isinstance(text, (list, tuple))
    if not batched:
        if not is_split_into_words and not isinstance(text, str):
            raise TypeError(f"text must be a str or a list of str, got {type(text).__name__} ({text!r:.40})")
        first = check_sequence(text, "text")
        second = None if text_pair is None else check_sequence(text_pair, "text_pair")
        return [(first, second)], False
    if len(text) == 0:
        raise ValueError("text is an empty batch; pass at least one string")
    if text_pair is not None:
        if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
            raise TypeError("when tokenizing batches of text, `text_pair` must be a list or tuple with the same "
                            "length as `text`.")
        if len(text_pair) != len(text):
            raise ValueError(f"batch length of `text`: {len(text)} does not match batch length of `text_pair`: "
                             f"{len(text_pair)}.")
    examples = []
    for i, item in enumerate(text):
        if text_pair is not None:
            examples.append((check_sequence(item, f"text[{i}]"), check_sequence(text_pair[i], f"text_pair[{i}]")))
        elif not is_split_into_words and isinstance(item, (list, tuple)):
            if len(item) != 2:
                raise TypeError(f"text[{i}] must be a str or a (text, text_pair) pair, got a "
                                f"{type(item).__name__} of length {len(item)}")
            examples.append((check_sequence(item[0], f"text[{i}][0]"), check_sequence(item[1], f"text[{i}][1]")))
        else:
            examples.append((check_sequence(item, f"text[{i}]"), None))
    return examples, True


def check_call_arguments(return_tensors, padding_side, stride) -> None:
    """The `__call__` arguments checked before anything is tokenized (ValueError naming the fix)."""
    if return_tensors not in (None, "np"):
        raise ValueError(f"return_tensors={return_tensors!r} is not supported: use None or 'np' "
                         "(wrap the arrays yourself, e.g. torch.from_numpy)")
    if padding_side not in (None, "left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    if not isinstance(stride, int) or stride < 0:
        raise ValueError(f"stride must be a non-negative int, got {stride!r}")


def returned_fields(return_token_type_ids: Optional[bool], return_attention_mask: Optional[bool],
                    add_special_tokens: bool, model_input_names: List[str]) -> Tuple[bool, bool]:
    """(return_token_type_ids, return_attention_mask) with HF's defaults: whether the model takes them."""
    if return_token_type_ids and not add_special_tokens:
        raise ValueError("Asking to return token_type_ids while setting add_special_tokens to False results in "
                         "an undefined behavior. Please set add_special_tokens to True or set "
                         "return_token_type_ids to None.")
    if return_token_type_ids is None:
        return_token_type_ids = "token_type_ids" in model_input_names
    if return_attention_mask is None:
        return_attention_mask = "attention_mask" in model_input_names
    return return_token_type_ids, return_attention_mask


def to_python(ids):
    """Ids as plain Python: numpy arrays and integers, and anything with `tolist` (torch tensors), converted."""
    if isinstance(ids, np.ndarray):
        return ids.tolist()
    if isinstance(ids, np.integer):
        return int(ids)
    if hasattr(ids, "tolist") and not isinstance(ids, (list, tuple)):  # torch tensors and the like
        return ids.tolist()
    return ids
