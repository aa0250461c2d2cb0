"""Truncation, special-token layout, padding, tensor conversion and BatchEncoding for xlmr_np.text.

Pure functions on lists of ids (and, alongside, character offsets), and the two small types they use
(`PadOptions`, `BatchEncoding`).  They follow Hugging Face transformers 4.57.6, `tokenization_utils_base.py`:

- `resolve_strategies` is `PreTrainedTokenizerBase._get_padding_truncation_strategies` (including its
  warnings and the fall-back to `model_max_length`);
- `truncation_plan` is `truncate_sequences` (slow tokenizer: one overflow window of `stride` extra tokens;
  "longest_first" removes from the longer sequence, then alternately, the first sequence keeping the extra
  token; impossible requests are logged, not raised, and leave the input untouched);
- `pad_features` is `_pad` (attention mask 0, special-tokens mask 1, token type 0 and offsets (0, 0) on the
  padded side; `pad_to_multiple_of` rounds the target length up), and `pad_batch_to_numpy` the same for a
  whole batch, written straight into arrays;
- `to_numpy` is `BatchEncoding.convert_to_tensors` for "np" (int64; ragged lists become object arrays), and
  `BatchEncoding` the result dict with attribute access;
- `layout_with_specials` is `models/xlm_roberta/tokenization_xlm_roberta.py`,
  `XLMRobertaTokenizer.build_inputs_with_special_tokens` (and `get_special_tokens_mask`) for any per-token
  values;
- `overflow_windows` is the windowing of the Rust `tokenizers` library (`Encoding::truncate`), which HF's
  *fast* tokenizer uses for `return_overflowing_tokens` (one row per window plus `overflow_to_sample_mapping`).

Shapes: a "feature dict" maps names ("input_ids", "attention_mask", ...) to per-token lists of one example,
or to lists of such lists for a batch.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

# the logger of tokenizer.py (named as before xlmr_np/text/ existed: logging configs, tests' caplog)
logger = logging.getLogger("xlmr_np.tokenizer")

VERY_LARGE_INTEGER = int(1e30)  # HF's "no maximum length" marker for model_max_length
LARGE_INTEGER = int(1e20)

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("only_first", "only_second", "longest_first", "do_not_truncate")


class BatchEncoding(dict):
    """The result of calling the tokenizer: a dict ("input_ids", "attention_mask", ...) with attribute access."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no field {name!r}; fields: {list(self)}") from None

    @property
    def data(self) -> dict:
        return dict(self)


@dataclass(frozen=True)
class PadOptions:
    """How to pad (HF `_pad`'s arguments): a PADDING_STRATEGIES name, the target length (None: the row's
    own), rounding up to a multiple, "left" or "right", whether to add an attention mask, the pad id."""

    padding: str
    max_length: Optional[int]
    pad_to_multiple_of: Optional[int]
    side: str
    return_attention_mask: bool
    pad_id: Optional[int]


def resolve_strategies(padding, truncation, max_length, pad_to_multiple_of, model_max_length, warned, verbose=True):
    """Turn the user's padding/truncation/max_length into (padding, truncation, max_length) strategy names.

    `warned` is the tokenizer's set of one-time warnings already given (HF's `deprecation_warnings`).
    """
    # Only max_length given: HF turns truncation on ("longest_first") with a warning.
    if max_length is not None and padding is False and truncation is None:
        if verbose and "truncation-not-explicit" not in warned:
            logger.warning(
                "Truncation was not explicitly activated but `max_length` is provided a specific value, please use "
                "`truncation=True` to explicitly truncate examples to max length. Defaulting to 'longest_first' "
                "truncation strategy. If you encode pairs of sequences (GLUE-style) with the tokenizer you can select "
                "this strategy more precisely by providing a specific strategy to `truncation`."
            )
            warned.add("truncation-not-explicit")
        truncation = "longest_first"

    if padding is False or padding is None:
        padding_strategy = "do_not_pad"
    elif padding is True:
        if verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
            warnings.warn(
                "`max_length` is ignored when `padding`=`True` and there is no truncation strategy. "
                "To pad to max length, use `padding='max_length'`."
            )
        padding_strategy = "longest"
    elif padding in PADDING_STRATEGIES:
        padding_strategy = padding
    else:
        raise ValueError(f"padding={padding!r} is not valid; use True, False, 'longest', 'max_length' or 'do_not_pad'")

    if truncation is False or truncation is None:
        truncation_strategy = "do_not_truncate"
    elif truncation is True:
        truncation_strategy = "longest_first"
    elif truncation in TRUNCATION_STRATEGIES:
        truncation_strategy = truncation
    else:
        raise ValueError(
            f"truncation={truncation!r} is not valid; use True, False, 'longest_first', 'only_first', "
            "'only_second' or 'do_not_truncate'"
        )

    if max_length is None:
        padding_strategy, truncation_strategy, max_length = _fall_back_to_model_max_length(
            padding_strategy, truncation_strategy, model_max_length, warned, verbose)

    if (
        truncation_strategy != "do_not_truncate"
        and padding_strategy != "do_not_pad"
        and pad_to_multiple_of is not None
        and max_length is not None
        and max_length % pad_to_multiple_of != 0
    ):
        raise ValueError(
            f"Truncation and padding are both activated but truncation length ({max_length}) is not a multiple of "
            f"pad_to_multiple_of ({pad_to_multiple_of}); choose a max_length that is a multiple of it."
        )
    return padding_strategy, truncation_strategy, max_length


def _fall_back_to_model_max_length(padding_strategy: str, truncation_strategy: str, model_max_length: int,
                                   warned: set, verbose: bool):
    """No max_length given: padding to "max_length" and truncation use `model_max_length`, or are switched
    off with a one-time warning when the model has none (HF's `VERY_LARGE_INTEGER` marker)."""
    max_length = None
    if padding_strategy == "max_length":
        if model_max_length > LARGE_INTEGER:
            if verbose and "pad-no-max-length" not in warned:
                logger.warning(
                    "Asking to pad to max_length but no maximum length is provided and the model has no "
                    "predefined maximum length. Default to no padding."
                )
                warned.add("pad-no-max-length")
            padding_strategy = "do_not_pad"
        else:
            max_length = model_max_length
    if truncation_strategy != "do_not_truncate":
        if model_max_length > LARGE_INTEGER:
            if verbose and "truncate-no-max-length" not in warned:
                logger.warning(
                    "Asking to truncate to max_length but no maximum length is provided and the model has no "
                    "predefined maximum length. Default to no truncation."
                )
                warned.add("truncate-no-max-length")
            truncation_strategy = "do_not_truncate"
        else:
            max_length = model_max_length
    return padding_strategy, truncation_strategy, max_length


def truncation_plan(len_a: int, len_b: Optional[int], num_to_remove: int, strategy: str, stride: int, side: str):
    """Decide what to cut, as slices: (keep_a, keep_b, overflow) where overflow is (sequence 0|1, slice) or None.

    Mirrors HF `truncate_sequences` (slow tokenizer), including its refusal (logged, input kept) when the
    sequence that may be cut is not longer than the number of tokens to remove.
    """
    keep_a, keep_b = slice(0, len_a), (slice(0, len_b) if len_b is not None else None)
    if num_to_remove <= 0:
        return keep_a, keep_b, None

    def cut(length: int):  # keep-slice and overflow-slice of one sequence losing num_to_remove tokens
        window = min(length, stride + num_to_remove)
        if side == "left":
            return slice(num_to_remove, length), slice(0, window)
        return slice(0, length - num_to_remove), slice(length - window, length)

    if strategy == "only_first" or (strategy == "longest_first" and len_b is None):
        if len_a > num_to_remove:
            keep_a, over = cut(len_a)
            return keep_a, keep_b, (0, over)
        message = (f"We need to remove {num_to_remove} to truncate the input but the first sequence has a length "
                   f"{len_a}. ")
        if strategy == "only_first":
            message += ("Please select another truncation strategy than TruncationStrategy.ONLY_FIRST, for instance "
                        "'longest_first' or 'only_second'.")
        logger.error(message)
    elif strategy == "longest_first":
        logger.warning(
            "Be aware, overflowing tokens are not returned for the setting you have chosen, i.e. sequence pairs with "
            "the 'longest_first' truncation strategy. So the returned list will always be empty even if some tokens "
            "have been removed."
        )
        # Remove from the longer one until both are equal, then alternately; the first sequence keeps the odd token.
        first_remove = min(abs(len_b - len_a), num_to_remove)
        second_remove = num_to_remove - first_remove
        if len_a > len_b:
            remove_a, remove_b = first_remove + second_remove // 2, second_remove - second_remove // 2
        else:
            remove_a, remove_b = second_remove // 2, first_remove + second_remove - second_remove // 2
        if side == "left":
            keep_a, keep_b = slice(remove_a, len_a), slice(min(remove_b, len_b), len_b)
        else:
            keep_a, keep_b = slice(0, max(0, len_a - remove_a)), slice(0, max(0, len_b - remove_b))
    elif strategy == "only_second" and len_b is not None:
        if len_b > num_to_remove:
            keep_b, over = cut(len_b)
            return keep_a, keep_b, (1, over)
        logger.error(
            f"We need to remove {num_to_remove} to truncate the input but the second sequence has a length {len_b}. "
            "Please select another truncation strategy than TruncationStrategy.ONLY_SECOND, for instance "
            "'longest_first' or 'only_first'."
        )
    return keep_a, keep_b, None


def overflow_windows(length: int, window: int, stride: int, side: str) -> List[slice]:
    """Windows of `window` tokens that overlap by `stride`, as the Rust tokenizers library cuts them.

    The first window is the one a plain truncation keeps; the following ones are the overflow.
    """
    if length <= window:
        return [slice(0, length)]
    step = window - stride
    windows = []
    if side == "left":
        stop = length
        while True:
            start = max(0, stop - window)
            windows.append(slice(start, stop))
            if start == 0:
                break
            stop -= step
    else:
        start = 0
        while True:
            stop = min(start + window, length)
            windows.append(slice(start, stop))
            if stop == length:
                break
            start += step
    return windows


def pad_features(features: dict, pad: PadOptions) -> dict:
    """Pad one example's features in place (HF `_pad`); the attention mask is created if asked for."""
    features.update(pad_example(features, pad.padding, pad.max_length, pad.pad_to_multiple_of, pad.side,
                                pad.return_attention_mask, pad.pad_id, pad_type_id=0, pad_offsets=True))
    return features


def pad_example(features: dict, strategy: str, max_length: Optional[int], pad_to_multiple_of, side: str,
                return_attention_mask: bool, pad_id, pad_type_id: int, key: str = "input_ids",
                pad_offsets: bool = False) -> dict:
    """One example padded (HF `_pad`), as a new dict: attention mask 0, special-tokens mask 1, `pad_type_id` and
    `pad_id` on the padding side; offsets (0, 0) too with `pad_offsets` (what `__call__` returns, as HF fast)."""
    features = dict(features)
    ids = features[key]
    if strategy == "longest":
        max_length = len(ids)
    if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of != 0:
        max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
    if return_attention_mask and "attention_mask" not in features:
        features["attention_mask"] = [1] * len(ids)
    if strategy == "do_not_pad" or max_length is None or len(ids) >= max_length:
        return features
    n = max_length - len(ids)
    fill = {"attention_mask": 0, "token_type_ids": pad_type_id, "special_tokens_mask": 1, key: pad_id}
    if pad_offsets:
        fill["offset_mapping"] = (0, 0)
    for name, value in fill.items():
        if name in features and (name != "attention_mask" or return_attention_mask):
            row = list(features[name])
            features[name] = row + [value] * n if side == "right" else [value] * n + row
    return features


def pad_batch_to_numpy(rows: list, pad: PadOptions) -> Optional[dict]:
    """The batch padding of `pad_features` + `to_numpy`, straight into int64 arrays; None if the result
    would be ragged (a row longer than the padded length), which the list path handles.

    Same values and key order as padding every row and converting: per-row lists are concatenated once
    and scattered into [B, T] (offsets [B, T, 2]) arrays pre-filled with the padding values.
    """
    padding, max_length, pad_to_multiple_of = pad.padding, pad.max_length, pad.pad_to_multiple_of
    side, return_attention_mask, pad_id = pad.side, pad.return_attention_mask, pad.pad_id
    lengths = np.array([len(r["input_ids"]) for r in rows], dtype=np.int64)  # [B]
    if padding == "longest":
        max_length = int(lengths.max())
    if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of != 0:
        max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
    if padding == "do_not_pad" or max_length is None or lengths.max() > max_length:
        return None
    batch, width = len(rows), max_length
    row_of = np.repeat(np.arange(batch), lengths)  # [N] row of every real token
    col_of = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # [N] column, right pad
    if side == "left":
        col_of += np.repeat(width - lengths, lengths)
    fill = {"input_ids": pad_id, "token_type_ids": 0, "special_tokens_mask": 1}
    out = {}
    for key in rows[0]:
        if key == "length":  # one number per row, measured before padding (HF batch behaviour)
            out[key] = np.array([r[key] for r in rows], dtype=np.int64)
        elif key == "offset_mapping":
            flat = np.array([pair for r in rows for pair in r[key]], dtype=np.int64).reshape(-1, 2)  # [N, 2]
            out[key] = np.zeros((batch, width, 2), dtype=np.int64)  # [B, T, 2]
            out[key][row_of, col_of] = flat
        else:
            flat = np.fromiter(itertools.chain.from_iterable(r[key] for r in rows), dtype=np.int64,
                               count=int(lengths.sum()))  # [N]
            out[key] = np.full((batch, width), fill[key], dtype=np.int64)  # [B, T]
            out[key][row_of, col_of] = flat
    if return_attention_mask:
        mask = np.zeros((batch, width), dtype=np.int64)  # [B, T]
        mask[row_of, col_of] = 1
        out["attention_mask"] = mask
    return out


def to_numpy(features: dict, prepend_batch_axis: bool) -> dict:
    """Lists to int64 arrays, as HF `convert_to_tensors("np")`: ragged batches become object arrays."""
    out = {}
    for key, value in features.items():
        if prepend_batch_axis:
            value = [value]
        if (isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, np.ndarray))
                and len({len(v) for v in value}) > 1):
            ragged = np.empty(len(value), dtype=object)  # [B] of int64 arrays of different lengths
            for i, row in enumerate(value):  # an empty row stays float64, as np.asarray([]) makes it in HF
                ragged[i] = np.asarray(row, dtype=np.int64) if len(row) else np.asarray(row)
            out[key] = ragged
        else:
            out[key] = np.asarray(value, dtype=np.int64)
    return out


def batch_encoding(features: dict, return_tensors, prepend_batch_axis: bool = False) -> BatchEncoding:
    """The call's result: the feature lists as they are, or as int64 arrays when `return_tensors` ("np")."""
    return BatchEncoding(to_numpy(features, prepend_batch_axis) if return_tensors else features)


def num_special_tokens(pair: bool) -> int:
    """How many special tokens `layout_with_specials` adds: 2 (`<s> A </s>`) or 4 (`<s> A </s></s> B </s>`)."""
    return 4 if pair else 2


def layout_with_specials(a: Sequence, b: Optional[Sequence], cls, sep) -> list:
    """`<s> A </s>` or `<s> A </s></s> B </s>` (XLM-R / RoBERTa layout) for any per-token values."""
    if b is None:
        return [cls] + list(a) + [sep]
    return [cls] + list(a) + [sep, sep] + list(b) + [sep]
