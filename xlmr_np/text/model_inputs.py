"""Inputs that are not plain text, for `encode_plus` / `batch_encode_plus` / `truncate_sequences`.

HF's behaviour followed, in `tokenization_utils.py` (`PreTrainedTokenizer._encode_plus`, `get_input_ids`;
`_batch_encode_plus`) and `tokenization_utils_base.py` (`truncate_sequences`):

- `input_ids_of`: a str is tokenized and its tokens looked up; a list of str is a list of *tokens*, looked
  up as they are; a list of int is ids already; anything else is refused;
- `split_batch_items`: a batch item is a text, or a (text, text_pair) pair; with `is_split_into_words` a list
  of words is one text and a pair is two such lists;
- `truncate_sequences` returns (ids, pair_ids, overflowing_tokens), the slow tokenizer's one overflow window.
"""

from __future__ import annotations

from typing import List, Optional

from .batching import TRUNCATION_STRATEGIES, truncation_plan
from .inputs import to_python


def input_ids_of(tok, value, where: str) -> List[int]:
    """Ids of one sequence given as a str, a list of tokens (str) or a list of ids (HF `get_input_ids`)."""
    value = to_python(value)
    if isinstance(value, str):
        return tok.convert_tokens_to_ids(tok.tokenize(value))
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value) and value:
        return tok.convert_tokens_to_ids(list(value))
    if isinstance(value, (list, tuple)) and all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        return list(value)
    raise ValueError(f"Input {value!r:.60} ({where}) is not valid. Should be a string, a list/tuple of strings or "
                     "a list/tuple of integers.")


def split_batch_items(batch, is_split_into_words: bool):
    """(texts, text_pairs or None) of a `batch_encode_plus` batch, as HF's `_batch_encode_plus` unpacks it."""
    if not isinstance(batch, (list, tuple)):
        raise TypeError(f"batch_encode_plus takes a list of texts or (text, text_pair) pairs, got "
                        f"{type(batch).__name__}")
    firsts, seconds = [], []
    for i, item in enumerate(batch):
        if not isinstance(item, (list, tuple)) or (is_split_into_words and item and
                                                    not isinstance(item[0], (list, tuple))):
            firsts.append(item)
            seconds.append(None)
        elif len(item) == 2:
            firsts.append(item[0])
            seconds.append(item[1])
        else:
            raise ValueError(f"batch item {i} is a {type(item).__name__} of {len(item)}; pass a text or a "
                             "(text, text_pair) pair")
    if all(s is None for s in seconds):
        return firsts, None
    if any(s is None for s in seconds):
        if is_split_into_words:
            raise ValueError("mix of single word lists and pairs in one batch: pass all items as pairs or none")
        return [f if s is None else (f, s) for f, s in zip(firsts, seconds)], None
    return firsts, seconds


def truncate_sequences(ids: List[int], pair_ids: Optional[List[int]], num_tokens_to_remove: int,
                       truncation_strategy, stride: int, side: str):
    """HF `truncate_sequences`: (ids, pair_ids, overflowing_tokens) after removing `num_tokens_to_remove`."""
    if num_tokens_to_remove <= 0:
        return ids, pair_ids, []
    strategy = getattr(truncation_strategy, "value", truncation_strategy)
    if strategy not in TRUNCATION_STRATEGIES:
        raise ValueError(f"{truncation_strategy!r} is not a valid TruncationStrategy; use one of "
                         f"{list(TRUNCATION_STRATEGIES)}")
    keep_a, keep_b, over = truncation_plan(len(ids), None if pair_ids is None else len(pair_ids),
                                           num_tokens_to_remove, strategy, stride, side)
    overflow = [] if over is None else list((ids if over[0] == 0 else pair_ids)[over[1]])
    return list(ids[keep_a]), None if pair_ids is None else list(pair_ids[keep_b]), overflow
