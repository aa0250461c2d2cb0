"""From the ids of each example to the call's result: truncate, add the special tokens, pad, collate.

HF's behaviour followed, in `tokenization_utils_base.py`:

- `prepare_example` is `PreTrainedTokenizerBase.prepare_for_model` for the slow tokenizer (truncation with
  `truncate_sequences`, `overflowing_tokens` / `num_truncated_tokens`, the `<s> A </s></s> B </s>` layout,
  token types, special-tokens mask), and `finish_single` its padding and `length`;
- `finish_batch` is `tokenization_utils.py`, `PreTrainedTokenizer._batch_prepare_for_model`: `length`
  measured before padding, then the batch padded together (`PreTrainedTokenizerBase.pad`);
- `windowed_features` is the fast tokenizer's overflow (`tokenization_utils_fast.py`,
  `PreTrainedTokenizerFast._batch_encode_plus` with the Rust `tokenizers` windows): every window of
  `stride` overlap is a row, `overflow_to_sample_mapping` names its example; used when offsets are asked
  for together with `return_overflowing_tokens`, as the question-answering and NER recipes expect;
- `check_truncation_request` raises ValueError where HF logs an error or silently returns odd windows
  (`max_length` below the special tokens, `stride >= max_length`), and where HF raises too.

An example's sequences arrive as (ids, offsets or None) pairs (`pieces.encode_texts`); a row is one
example's (or window's) feature dict before collation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

from .batching import (BatchEncoding, PadOptions, batch_encoding, layout_with_specials, num_special_tokens,
                       overflow_windows, pad_batch_to_numpy, pad_features, truncation_plan)


@dataclass(frozen=True)
class EncodeOptions:
    """What one `__call__` asked for (strategies resolved), and the tokenizer settings the steps use."""

    add_special_tokens: bool
    truncation: str  # a batching.TRUNCATION_STRATEGIES name
    max_length: Optional[int]
    stride: int
    return_token_type_ids: bool
    return_special_tokens_mask: bool
    return_offsets_mapping: bool
    return_overflowing_tokens: bool
    return_length: bool
    verbose: bool
    truncation_side: str
    cls_id: Optional[int]
    sep_id: Optional[int]

    @property
    def windows(self) -> bool:
        """Overflow in the fast tokenizer's layout (one row per window) rather than the slow one's."""
        return bool(self.return_overflowing_tokens and self.return_offsets_mapping)

    def n_special(self, pair: bool) -> int:
        """Special tokens each example gets: 2 or 4 (pair), 0 without `add_special_tokens`."""
        return num_special_tokens(pair) if self.add_special_tokens else 0


def check_truncation_request(opts: EncodeOptions, any_pair: bool) -> None:
    """ValueError for truncation and overflow requests that cannot be met, before anything is encoded."""
    if opts.truncation != "do_not_truncate" and opts.max_length is not None:
        needed = opts.n_special(any_pair)
        if opts.max_length < needed:
            raise ValueError(f"max_length={opts.max_length} is smaller than the {needed} special tokens each "
                             f"{'pair' if any_pair else 'sequence'} needs; use max_length >= {needed}")
        if opts.return_overflowing_tokens and opts.stride >= opts.max_length - (needed if opts.windows else 0):
            raise ValueError(f"stride={opts.stride} must be smaller than max_length={opts.max_length}"
                             + (f" minus the {needed} special tokens" if opts.windows else ""))
    if opts.return_overflowing_tokens and opts.truncation == "longest_first" and any_pair:
        raise ValueError("Not possible to return overflowing tokens for pair of sequences with the "
                         "`longest_first`. Please select another truncation strategy than `longest_first`, "
                         "for instance `only_second` or `only_first`.")
    if opts.return_overflowing_tokens and opts.max_length is None and not opts.windows:
        raise ValueError("return_overflowing_tokens=True needs a max_length (and truncation) to measure "
                         "the overflow against")


def assemble(ids_a: List[int], off_a, ids_b: Optional[List[int]], off_b, opts: EncodeOptions,
             with_offsets: bool) -> dict:
    """input_ids (+ token types, special-tokens mask, offsets) of one truncated example, specials added."""
    pair = ids_b is not None
    features = {}
    if opts.add_special_tokens:
        features["input_ids"] = layout_with_specials(ids_a, ids_b, opts.cls_id, opts.sep_id)
    else:
        features["input_ids"] = ids_a + ids_b if pair else list(ids_a)
    n = len(features["input_ids"])
    if opts.return_token_type_ids:
        features["token_type_ids"] = [0] * n
    if opts.return_special_tokens_mask:
        if opts.add_special_tokens:
            features["special_tokens_mask"] = layout_with_specials(
                [0] * len(ids_a), [0] * len(ids_b) if pair else None, 1, 1)
        else:
            features["special_tokens_mask"] = [0] * n
    if with_offsets:
        if opts.add_special_tokens:
            features["offset_mapping"] = layout_with_specials(off_a, off_b, (0, 0), (0, 0))
        else:
            features["offset_mapping"] = off_a + off_b if pair else list(off_a)
    return features


def prepare_example(a: Tuple, b: Optional[Tuple], opts: EncodeOptions) -> dict:
    """One example's row before padding (HF `prepare_for_model`, slow tokenizer); truncation may log."""
    ids_a, off_a = a
    ids_b, off_b = b if b is not None else (None, None)
    pair = b is not None
    total = len(ids_a) + (len(ids_b) if pair else 0) + opts.n_special(pair)
    max_length = opts.max_length
    overflow = []
    if opts.truncation != "do_not_truncate" and max_length and total > max_length:
        keep_a, keep_b, over = truncation_plan(len(ids_a), len(ids_b) if pair else None, total - max_length,
                                               opts.truncation, opts.stride, opts.truncation_side)
        if over is not None:
            overflow = (ids_a if over[0] == 0 else ids_b)[over[1]]
        ids_a, off_a = ids_a[keep_a], (off_a[keep_a] if off_a is not None else None)
        if pair:
            ids_b, off_b = ids_b[keep_b], (off_b[keep_b] if off_b is not None else None)
    features = {}
    if opts.return_overflowing_tokens:
        features["overflowing_tokens"] = overflow
        features["num_truncated_tokens"] = total - max_length
    features.update(assemble(ids_a, off_a, ids_b, off_b, opts, opts.return_offsets_mapping))
    return features


def finish_single(row: dict, pad: PadOptions, opts: EncodeOptions, return_tensors, prepend_batch_axis: bool = True
                  ) -> BatchEncoding:
    """The result of a call on one example: padded, then `length` measured (HF `prepare_for_model`)."""
    if not row["input_ids"]:  # HF `pad` returns an empty example untouched (no padding)
        if pad.return_attention_mask:
            row["attention_mask"] = []
    elif pad.padding != "do_not_pad" or pad.return_attention_mask:
        pad_features(row, pad)
    if opts.return_length:
        row["length"] = len(row["input_ids"])
    return batch_encoding(row, return_tensors, prepend_batch_axis=prepend_batch_axis)


def finish_batch(rows: List[dict], pad: PadOptions, opts: EncodeOptions, return_tensors) -> BatchEncoding:
    """The result of a call on a batch: `length` measured before padding, then every row padded together."""
    if opts.return_length:
        for row in rows:
            row["length"] = len(row["input_ids"])
    if return_tensors and not opts.return_overflowing_tokens:
        arrays = pad_batch_to_numpy(rows, pad)  # the same result, without per-row lists
        if arrays is not None:
            return BatchEncoding(arrays)
    rows = _pad_rows(rows, pad)
    features = {key: [row[key] for row in rows] for key in rows[0]}
    return batch_encoding(features, return_tensors)


def _pad_rows(rows: List[dict], pad: PadOptions) -> List[dict]:
    """Every row padded; "longest" means the longest row of the batch."""
    if pad.padding == "longest":
        pad = replace(pad, padding="max_length", max_length=max(len(r["input_ids"]) for r in rows))
    return [pad_features(row, pad) for row in rows]


def windowed_features(encoded: Sequence[Tuple], opts: EncodeOptions, pad: PadOptions, return_tensors
                      ) -> BatchEncoding:
    """Overflow as HF's fast tokenizer returns it: every window a row, plus overflow_to_sample_mapping."""
    rows, sample_of_row = [], []
    for index, (a, b) in enumerate(encoded):
        for first, second in _example_windows(index, a, b, opts):
            rows.append(assemble(first[0], first[1], second[0] if second is not None else None,
                                 second[1] if second is not None else None, opts, True))
            sample_of_row.append(index)
    rows = _pad_rows(rows, pad)
    order = ["input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping"]
    features = {key: [row[key] for row in rows] for key in order if key in rows[0]}
    if opts.return_length:
        features["length"] = [len(row["input_ids"]) for row in rows]
    features["overflow_to_sample_mapping"] = sample_of_row
    return batch_encoding(features, return_tensors)


def _example_windows(index: int, a: Tuple, b: Optional[Tuple], opts: EncodeOptions) -> List[Tuple]:
    """The (first, second) sequences of each window of example `index`: the truncated sequence (the second
    with "only_second", else the first) cut in windows of `stride` overlap; one window if nothing is cut."""
    pair = b is not None
    total = len(a[0]) + (len(b[0]) if pair else 0) + opts.n_special(pair)
    max_length, stride = opts.max_length, opts.stride
    cut_second = opts.truncation == "only_second"
    if cut_second and not pair:
        raise ValueError("truncation='only_second' needs pairs of sequences (text and text_pair)")
    target = b if cut_second else a
    if opts.truncation != "do_not_truncate" and max_length is not None and total > max_length:
        window = len(target[0]) - (total - max_length)
        if window <= stride:
            raise ValueError(
                f"example {index}: the {'second' if cut_second else 'first'} sequence ({len(target[0])} "
                f"tokens) is too short to truncate to max_length={max_length} in windows overlapping by "
                f"stride={stride}; raise max_length or lower stride")
        slices = overflow_windows(len(target[0]), window, stride, opts.truncation_side)
    else:
        slices = [slice(0, len(target[0]))]
    windows = []
    for sl in slices:
        cut = (target[0][sl], target[1][sl])
        windows.append((a, cut) if cut_second else (cut, b))
    return windows
