"""A SentencePiece model rebuilt from a `tokenizer.json` (HF fast tokenizer file), for directories without a .model.

What HF's `XLMRobertaTokenizerFast` writes (transformers `convert_slow_tokenizer.py`, `XLMRobertaConverter`):
a Unigram model whose vocabulary is fairseq's layout (`<s>`, `<pad>`, `</s>`, `<unk>`, then spm pieces 3..,
then `<mask>`) with each piece's log-probability score and `unk_id` 3; a normalizer `Sequence` of
`Precompiled` (the model's charsmap; absent for identity models), `Strip` (right) and `Replace(" {2,}", "▁")`
(spm's remove_extra_whitespaces); a `Metaspace` pre-tokenizer (`prepend_scheme` "always": spm's dummy prefix).

Rebuilt: spm pieces 3.. are the vocabulary's entries 4..-2 with their scores; spm pieces 0-2 (shadowed by
fairseq's ids, never reached) are `<unk>` (the unknown piece), `<s>`, `</s>` - or, when one of those is a piece
of its own further on, unused names, the later piece being the unknown one when it is `<unk>` at the model's
`unk_id`, or whenever the model holds `<unk>` as a piece of its own.  Types: the piece at `unk_id` is unknown, `<0xXX>` pieces are byte pieces when `byte_fallback` is on
(normal text otherwise, as the fast tokenizer treats them), special added tokens are control pieces, other
added tokens user-defined, the rest normal.  Mapped normalizers: Precompiled (-> precompiled_charsmap),
Strip right + Replace(" {2,}", "▁") (-> remove_extra_whitespaces), Prepend("▁") (-> add_dummy_prefix), NFKC
(only with a charsmap, which holds it); Metaspace's prepend_scheme "always"/"first" -> add_dummy_prefix,
"never" -> none.  Refused, with the reason: BPE models (sentencepiece's BPE ranks merges by piece score, which
tokenizer.json does not hold - it has a merge list; rebuilding the scores from merge ranks is not done here),
WordPiece/WordLevel, and normalizers or pre-tokenizers with no sentencepiece counterpart.
"""

from __future__ import annotations

import base64
import json
import re
from typing import List, Tuple

from .spm_proto import BYTE, CONTROL, NORMAL, UNKNOWN, USER_DEFINED, write_model_proto

SPACE_RUN = " {2,}"
_BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")


class UnsupportedTokenizerJson(ValueError):
    """A tokenizer.json whose model or normalisation has no sentencepiece counterpart."""


def _refuse(path: str, what: str) -> UnsupportedTokenizerJson:
    return UnsupportedTokenizerJson(
        f"{path!r}: cannot rebuild a SentencePiece model: {what}. Download sentencepiece.bpe.model from the same "
        "model repository into the directory (xlmr_np's tokenizer runs on sentencepiece).")


def normalizer_settings(path: str, normalizer) -> Tuple[bytes, bool, bool]:
    """(precompiled_charsmap, remove_extra_whitespaces, add_dummy_prefix from a Prepend) of a normalizer."""
    parts = [] if normalizer is None else (normalizer["normalizers"] if normalizer["type"] == "Sequence"
                                            else [normalizer])
    charsmap, strip_right, space_runs, prepend = b"", False, False, False
    for part in parts:
        kind = part.get("type")
        if kind == "Precompiled":
            charsmap = base64.b64decode(part.get("precompiled_charsmap") or "")
        elif kind == "Strip" and part.get("strip_right") and not part.get("strip_left"):
            strip_right = True
        elif kind == "Replace" and part.get("pattern") == {"Regex": SPACE_RUN} and part.get("content") == "\u2581":
            space_runs = True
        elif kind == "Prepend" and part.get("prepend") == "\u2581":
            prepend = True
        elif kind == "NFKC" and charsmap:
            continue
        else:
            raise _refuse(path, f"its normalizer {kind} ({json.dumps(part)[:80]}) has no sentencepiece counterpart")
    if strip_right != space_runs:
        raise _refuse(path, "its normalizer strips or squeezes whitespace but not both, as sentencepiece does")
    return charsmap, strip_right, prepend


def dummy_prefix(path: str, pre_tokenizer, prepend: bool) -> bool:
    """Whether sentencepiece should add its dummy "▁" prefix (Metaspace pre-tokenizer or Prepend normalizer)."""
    parts = [] if pre_tokenizer is None else (pre_tokenizer["pretokenizers"] if pre_tokenizer["type"] == "Sequence"
                                              else [pre_tokenizer])
    for part in parts:
        if part.get("type") != "Metaspace" or part.get("replacement") != "\u2581":
            raise _refuse(path, f"its pre-tokenizer {json.dumps(part)[:80]} is not sentencepiece's Metaspace")
        scheme = part.get("prepend_scheme", "always" if part.get("add_prefix_space", True) else "never")
        prepend = prepend or scheme in ("always", "first")
    return prepend


def spm_pieces(vocab: List, unk_id: int, byte_fallback: bool, added: List[dict]) -> Tuple[list, int]:
    """(piece, score, type) of every spm piece, and the spm unknown id, from a fairseq-layout Unigram vocab."""
    body = [(str(p), float(s)) for p, s in vocab[4:-1]]  # spm pieces 3..n-1
    taken = {p for p, _ in body}
    fillers = [name for name in ("<unk>", "<s>", "</s>", "<pad>", "<spm_unused_0>", "<spm_unused_1>",
                                 "<spm_unused_2>", "<spm_unused_3>") if name not in taken][:3]
    specials = {t["content"]: t.get("special", False) for t in added}
    pieces = [(name, 0.0, CONTROL) for name in fillers]
    names = [p for p, _ in body]
    if "<unk>" in names:  # the model's own <unk> piece (spm id >= 3) is its unknown piece, as in the .model
        unk_spm = names.index("<unk>") + 3
    else:
        unk_spm = unk_id - 1 if unk_id >= 4 else 0
    for spm_id, (piece, score) in enumerate(body, start=3):
        if spm_id == unk_spm:
            kind = UNKNOWN
        elif byte_fallback and _BYTE_PIECE.fullmatch(piece):
            kind = BYTE
        elif piece in specials:
            kind = CONTROL if specials[piece] else USER_DEFINED
        else:
            kind = NORMAL
        pieces.append((piece, score, kind))
    if unk_spm == 0:
        pieces[0] = (pieces[0][0], 0.0, UNKNOWN)
    return pieces, unk_spm


def model_proto_from_tokenizer_json(path: str) -> bytes:
    """The serialized sentencepiece ModelProto rebuilt from the tokenizer.json at `path` (see the module doc)."""
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path!r} is not valid JSON: {err}") from err
    model = data.get("model") or {}
    if model.get("type") != "Unigram":
        why = ("it holds a BPE model: sentencepiece's BPE picks merges by piece score, and tokenizer.json keeps a "
               "merge list instead" if model.get("type") == "BPE" else f"its model is {model.get('type')!r}, "
               "not sentencepiece's Unigram")
        raise _refuse(path, why)
    vocab = model.get("vocab") or []
    head = [p for p, _ in vocab[:4]]
    if head != ["<s>", "<pad>", "</s>", "<unk>"] or not vocab or vocab[-1][0] != "<mask>":
        raise _refuse(path, f"its vocabulary does not have XLM-R's layout (<s> <pad> </s> <unk> ... <mask>; "
                            f"it starts {head})")
    charsmap, squeeze, prepend = normalizer_settings(path, data.get("normalizer"))
    add_prefix = dummy_prefix(path, data.get("pre_tokenizer"), prepend)
    byte_fallback = bool(model.get("byte_fallback"))
    pieces, unk_spm = spm_pieces(vocab, int(model.get("unk_id", 3)), byte_fallback, data.get("added_tokens") or [])
    names = [p for p, _, _ in pieces]
    return write_model_proto(
        pieces, model_type=1, unk_id=unk_spm, bos_id=names.index("<s>") if "<s>" in names[:3] else -1,
        eos_id=names.index("</s>") if "</s>" in names[:3] else -1, pad_id=-1, byte_fallback=byte_fallback,
        normalizer_name="user_defined" if charsmap else "identity", precompiled_charsmap=charsmap,
        add_dummy_prefix=add_prefix, remove_extra_whitespaces=squeeze, unk_piece=names[unk_spm])
