"""The fairseq id mapping: SentencePiece piece ids <-> XLM-R model ids.

XLM-R was trained with fairseq, whose dictionary lists its own four specials first and then the pieces of
the SentencePiece model, and appends `<mask>`.  The model's embedding rows follow that order, so the
tokenizer has to map every spm id to it.  HF does the same in `models/xlm_roberta/tokenization_xlm_roberta.py`
(`XLMRobertaTokenizer.__init__`: `fairseq_tokens_to_ids`, `fairseq_offset = 1`; `vocab_size`,
`_convert_token_to_id`, `_convert_id_to_token`).  The rules:

- `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3 (fairseq's own four);
- spm piece k (k >= 3) -> k + 1: spm's 0, 1, 2 are its own `<unk>`, `<s>`, `</s>`, shadowed by fairseq's;
- spm's unknown (id 0, what spm returns for text it has no piece for) -> 3, the id of `<unk>`;
- `<mask>` = len(spm) + 1, after the last piece; the base vocabulary has len(spm) + 2 ids.

Worked example, the 8,000-piece model of reference_outputs/tokenizer/: spm's pieces 0-4 are `<unk>`, `<s>`,
`</s>`, "▁", "s", so "▁" is model id 4 and "s" 5; `<mask>` is 8001 and `len(tok)` 8002.  xlm-roberta-base
(250,000 pieces): `<mask>` is 250001 and the embedding has 250002 rows.  The functions below take the spm
piece count, or a `sentencepiece.SentencePieceProcessor` as `sp`.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

FAIRSEQ_SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}  # fairseq's dictionary puts these first
FAIRSEQ_OFFSET = 1  # spm id k (k >= 3) is fairseq id k + 1
MASK_TOKEN = "<mask>"  # appended after the last piece
UNK_ID = FAIRSEQ_SPECIALS["<unk>"]
_FAIRSEQ_TOKENS = {i: t for t, i in FAIRSEQ_SPECIALS.items()}


def mask_id(spm_size: int) -> int:
    """Id of `<mask>`: one past the last piece.

    >>> mask_id(250000)  # xlm-roberta-base
    250001
    """
    return spm_size + FAIRSEQ_OFFSET


def base_vocab_size(spm_size: int) -> int:
    """Ids of the base vocabulary (HF `vocab_size`): the spm pieces + `<pad>` + `<mask>`.

    >>> base_vocab_size(250000)
    250002
    """
    return spm_size + FAIRSEQ_OFFSET + 1


def fairseq_token_ids(spm_size: int) -> Dict[str, int]:
    """The five tokens that do not take their id from the spm model.

    >>> fairseq_token_ids(8000)
    {'<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3, '<mask>': 8001}
    """
    return dict(FAIRSEQ_SPECIALS, **{MASK_TOKEN: mask_id(spm_size)})


def is_fairseq_token(token: str) -> bool:
    """Whether `token` is one of the five of `fairseq_token_ids`.

    >>> is_fairseq_token("<pad>"), is_fairseq_token("<mask>"), is_fairseq_token("▁")
    (True, True, False)
    """
    return token in FAIRSEQ_SPECIALS or token == MASK_TOKEN


def spm_id_to_model_id(spm_id: int, unk_id: int = UNK_ID) -> int:
    """Model id of an spm id from `sp.encode`: +1, except spm's unknown (0), which becomes `unk_id`.

    >>> spm_id_to_model_id(3), spm_id_to_model_id(4), spm_id_to_model_id(0)  # "▁", "s", spm's unknown
    (4, 5, 3)
    """
    return unk_id if spm_id == 0 else spm_id + FAIRSEQ_OFFSET


def model_id_to_spm_id(model_id: int, spm_size: int) -> Optional[int]:
    """The spm piece behind a model id; None for the five fairseq tokens and for ids out of range.

    >>> model_id_to_spm_id(4, 8000), model_id_to_spm_id(3, 8000), model_id_to_spm_id(8001, 8000)
    (3, None, None)
    """
    if model_id in _FAIRSEQ_TOKENS or model_id == mask_id(spm_size):
        return None
    spm_id = model_id - FAIRSEQ_OFFSET
    return spm_id if 0 <= spm_id < spm_size else None


def base_token_to_id(sp, token: str) -> Optional[int]:
    """Id of `token` in the base vocabulary, None if it has none (HF `_convert_token_to_id` without the
    `<unk>` fallback).  spm's own `<unk>`, `<s>`, `</s>` (control pieces) have no id of their own: the
    fairseq ids stand for them.  With the 8,000-piece model: "<pad>" -> 1, "▁" -> 4, "<mask>" -> 8001,
    "qqqqzzz" -> None.
    """
    if token in FAIRSEQ_SPECIALS:
        return FAIRSEQ_SPECIALS[token]
    if token == MASK_TOKEN:
        return mask_id(sp.get_piece_size())
    spm_id = sp.piece_to_id(token)
    if spm_id == 0 or sp.is_control(spm_id) or sp.is_unknown(spm_id):
        return None
    return spm_id + FAIRSEQ_OFFSET


def base_id_to_token(sp, model_id: int) -> Optional[str]:
    """Token of a base-vocabulary id (HF `_convert_id_to_token`); None when the id is out of range.
    With the 8,000-piece model: 0 -> "<s>", 3 -> "<unk>", 4 -> "▁", 8001 -> "<mask>", 8002 -> None.
    """
    if model_id in _FAIRSEQ_TOKENS:
        return _FAIRSEQ_TOKENS[model_id]
    spm_size = sp.get_piece_size()
    if model_id == mask_id(spm_size):
        return MASK_TOKEN
    spm_id = model_id_to_spm_id(model_id, spm_size)
    return None if spm_id is None else sp.id_to_piece(spm_id)


def spm_to_model_table(sp, unk_id: Optional[int], added_encoder: Dict[str, int]) -> List[int]:
    """`table[spm_id]` = model id, for every piece of `sp`: the ids of `spm_id_to_model_id`, computed once.

    Two departures from the plain rule, both HF's: spm's unknown (0) maps to the tokenizer's `unk_id`
    (0 when it has none), and a piece whose text is an added token (other than the five fairseq tokens) maps
    to that token's id, as HF looks tokens up in its added-token table before the vocabulary
    (`tokenization_utils.py`, `PreTrainedTokenizer._convert_token_to_id_with_added_voc`).
    """
    n = sp.get_piece_size()
    table = np.arange(FAIRSEQ_OFFSET, n + FAIRSEQ_OFFSET, dtype=np.int64)  # [n]
    table[0] = unk_id if unk_id is not None else 0
    for content, index in added_encoder.items():
        spm_id = sp.piece_to_id(content)
        if spm_id != 0 and not sp.is_control(spm_id) and not is_fairseq_token(content):
            table[spm_id] = index
    return table.tolist()
