"""The fairseq id mapping: SentencePiece piece ids <-> XLM-R model ids.

XLM-R was trained with fairseq, whose dictionary lists its own four specials first and then the pieces of
the SentencePiece model, and appends `<mask>`.  The model's embedding rows follow that order, so the
tokenizer has to map every spm id to it.  HF does the same in `models/xlm_roberta/tokenization_xlm_roberta.py`
(`XLMRobertaTokenizer.__init__`: `fairseq_tokens_to_ids`, `fairseq_offset = 1`; `vocab_size`,
`_convert_token_to_id`, `_convert_id_to_token`).  The rules:

- `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3 (fairseq's own four);
- spm piece k (k >= 3) -> k + 1: spm's 0, 1, 2 (XLM-R's `<unk>`, `<s>`, `</s>`) are shadowed by fairseq's;
- text -> id goes through the piece's *text*: `PieceToId(text) + 1`, and `unk_token_id` where PieceToId
  gives 0 (XLM-R's unknown piece; what spm returns for text it has no piece for is that text, which
  PieceToId maps to the model's unknown id);
- `<mask>` = len(spm) + 1, after the last piece; the base vocabulary has len(spm) + 2 ids.

Models with other layouts follow the same rules, with HF's consequences (docs/tokenizer.md, "Other
sentencepiece models"): a model with `<pad>`, `<s>`, `</s>`, `<unk>` at spm ids 0-3 has `<unk>` twice in the
base vocabulary (ids 3 and 4: `get_vocab()` keeps the later, so `len` is one less and `unk_token_id` is 4);
a BPE model with control pieces `[PAD]` 0 ... `[UNK]` 3 maps `[PAD]` to `unk_token_id`, `[UNK]` to 4.

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
    """Id of `token` in the base vocabulary, as HF's `_convert_token_to_id`; None where HF falls back to
    `unk_token_id` (`sp.PieceToId` gives 0).  Any piece of the model counts, control and unknown pieces
    included (`[UNK]` at spm id 3 is id 4), and text that is no piece gets `PieceToId`'s answer, the model's
    unknown id, + 1.  With the 8,000-piece model: "<pad>" -> 1, "▁" -> 4, "<mask>" -> 8001, "qqqqzzz" -> None.
    """
    if token in FAIRSEQ_SPECIALS:
        return FAIRSEQ_SPECIALS[token]
    if token == MASK_TOKEN:
        return mask_id(sp.get_piece_size())
    spm_id = sp.piece_to_id(token)
    return spm_id + FAIRSEQ_OFFSET if spm_id else None


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


def base_ids_of(sp, token: str) -> List[int]:
    """Every base-vocabulary id whose token (`base_id_to_token`) is `token`, ascending: one id, or two when
    the model holds a fairseq token as a piece of its own (a model with `<unk>` at spm id 3 has `<unk>` at
    ids 3 and 4), none for text that is no token."""
    ids = [fairseq_token_ids(sp.get_piece_size())[token]] if is_fairseq_token(token) else []
    spm_id = sp.piece_to_id(token)
    if spm_id >= 3 and sp.id_to_piece(spm_id) == token:  # spm ids 0-2 are shadowed by fairseq's ids 1-3
        ids.append(spm_id + FAIRSEQ_OFFSET)
    return sorted(ids)


def spm_to_model_table(sp, token_to_id, added_contents) -> List[int]:
    """`table[spm_id]` = model id of every piece of `sp`, as HF's slow tokenizer gets it: it looks the piece's
    text up with `token_to_id` (HF `_convert_token_to_id_with_added_voc`: added tokens, then the fairseq
    table, then `PieceToId` + 1, `unk_token_id` for 0).  That is spm id + 1 for every piece except spm id 0 and
    pieces whose text is an added or fairseq token, so only those are looked up.  The unknown piece's entry
    is not used: spm returns the text it did not know as that piece's string, and HF looks that text up
    (`pieces.chunk_model_ids`).
    """
    n = sp.get_piece_size()
    table = np.arange(FAIRSEQ_OFFSET, n + FAIRSEQ_OFFSET, dtype=np.int64)  # [n]
    lookups = {0}  # spm ids whose text may map elsewhere than spm id + 1
    for token in list(FAIRSEQ_SPECIALS) + [MASK_TOKEN] + list(added_contents):
        spm_id = sp.piece_to_id(token)
        if sp.id_to_piece(spm_id) == token:
            lookups.add(spm_id)
    for spm_id in lookups:
        index = token_to_id(sp.id_to_piece(spm_id))
        table[spm_id] = -1 if index is None else index
    return table.tolist()
