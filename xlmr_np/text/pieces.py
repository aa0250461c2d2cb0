"""Text to SentencePiece pieces and model ids, many texts per sentencepiece call.

HF's behaviour followed: `tokenization_utils.py`, `PreTrainedTokenizer.tokenize` (every stretch of text
between added tokens is tokenized on its own, so each gets its own dummy-prefix "▁") and
`_batch_encode_plus` (`get_input_ids`: a str, or a list of pre-split words each tokenized alone);
`models/xlm_roberta/tokenization_xlm_roberta.py`, `XLMRobertaTokenizer._tokenize` (`sp_model.encode(text,
out_type=str)`) and `_convert_token_to_id`.  HF encodes piece strings one text at a time and looks each up;
here all chunks of a batch go to sentencepiece in one call and spm ids are mapped through a table
(`fairseq_ids.spm_to_model_table`), the unknown piece through its text (`chunk_model_ids`) - the same ids.

A "plan" is a text's list of `added_tokens.TextPiece`s; "chunks" are the stretches of text that go to
SentencePiece.  Offsets are computed in `offsets.py`.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from .offsets import Span, spm_encode_with_spans, text_offsets

SPIECE_UNDERLINE = "\u2581"  # "▁", SentencePiece's visible space

Encoded = Tuple[List[int], Optional[List[Span]]]  # ids of one sequence, and its offsets when asked for


def text_chunks(text: str, plan: Sequence) -> List[str]:
    """The stretches of `text` that go to SentencePiece (the pieces that are not added tokens)."""
    return [text[p.start:p.end] for p in plan if p.added_id is None]


def spm_pieces(sp, text: str, plan: Sequence, added_decoder: Dict[int, object]) -> List[str]:
    """Tokens of one text: spm pieces, added tokens kept whole (HF's slow `tokenize`)."""
    chunks = text_chunks(text, plan)
    pieces = iter(sp.encode(chunks, out_type=str) if chunks else [])
    tokens = []
    for p in plan:
        if p.added_id is None:
            tokens.extend(next(pieces))
        else:
            tokens.append(added_decoder[p.added_id].content)
    return tokens


def model_ids(plan: Sequence, chunk_ids: Sequence[List[int]]) -> List[int]:
    """Model ids of one text: added tokens' ids, and each chunk's model ids (`chunk_model_ids`)."""
    ids, chunks = [], iter(chunk_ids)
    for piece in plan:
        if piece.added_id is not None:
            ids.append(piece.added_id)
        else:
            ids.extend(next(chunks))
    return ids


def unknown_piece_texts(sp, chunks: List[str], chunk_ids: List[List[int]]) -> Dict[int, List[str]]:
    """For each chunk holding spm's unknown piece, its pieces as HF's `_tokenize` gets them (`out_type=str`):
    the unknown piece comes back as the text it stands for, which is what HF looks up."""
    unk = sp.unk_id()
    with_unk = [j for j, ids in enumerate(chunk_ids) if unk in ids]
    if not with_unk:
        return {}
    return dict(zip(with_unk, sp.encode([chunks[j] for j in with_unk], out_type=str)))


def chunk_model_ids(sp, chunks: List[str], chunk_ids: List[List[int]], table: List[int], token_to_id
                    ) -> List[List[int]]:
    """Model ids of each chunk's spm ids, as HF's slow tokenizer maps its piece strings: `table` for every
    piece but the unknown one, whose text goes through `token_to_id` (HF `_convert_token_to_id_with_added_voc`:
    `PieceToId(text)` + 1, `unk_token_id` where that is 0, an added token's id if the text is one)."""
    unk = sp.unk_id()
    out = [[table[i] for i in ids] for ids in chunk_ids]
    for j, pieces in unknown_piece_texts(sp, chunks, chunk_ids).items():
        out[j] = [token_to_id(p) if i == unk else m for i, m, p in zip(chunk_ids[j], out[j], pieces)]
    return out


def encode_texts(sp, table: List[int], token_to_id, texts: List[str], plans: List[Sequence], with_offsets: bool,
                 normalizer=None) -> List[Encoded]:
    """(ids, offsets or None) of every text, with one sentencepiece call for all their chunks.

    `table` and `token_to_id` map spm ids to model ids (`chunk_model_ids`); `normalizer` (a
    `fast_offsets.FastNormalizer` of the model) makes the offsets the fast tokenizer's.
    """
    chunks = [chunk for text, plan in zip(texts, plans) for chunk in text_chunks(text, plan)]
    if not chunks:
        encoded = []
    elif with_offsets:
        encoded = spm_encode_with_spans(sp, chunks)
    else:
        encoded = [(ids, None, None) for ids in sp.encode(chunks, out_type=int)]
    mapped = iter(chunk_model_ids(sp, chunks, [e[0] for e in encoded], table, token_to_id))
    encoded = iter(encoded)
    results = []
    for text, plan in zip(texts, plans):
        per_chunk = [next(encoded) for piece in plan if piece.added_id is None]
        ids = model_ids(plan, [next(mapped) for piece in plan if piece.added_id is None])
        offsets = text_offsets(sp, normalizer, text, plan, per_chunk) if with_offsets else None
        results.append((ids, offsets))
    return results


def flatten_examples(examples) -> Tuple[List[str], list]:
    """All texts of (first, second) examples in one list, and where each sequence's texts are in it.

    A sequence is a str (one text) or a list of pre-split words (one text each); its slot is
    (index of its first text, number of texts), None for a missing second sequence.
    """
    texts, layout = [], []
    for first, second in examples:
        slots = []
        for seq in (first, second):
            if seq is None:
                slots.append(None)
            elif isinstance(seq, str):
                slots.append((len(texts), 1))
                texts.append(seq)
            else:  # pre-split words: each is tokenized alone; offsets are relative to each word
                slots.append((len(texts), len(seq)))
                texts.extend(seq)
        layout.append(slots)
    return texts, layout


def regroup_examples(results: List[Encoded], layout: list, with_offsets: bool) -> List[Tuple[Encoded, ...]]:
    """Per example, the (ids, offsets) of each sequence: `results` (one per text) regrouped by `layout`."""
    encoded = []
    for slots in layout:
        pair = []
        for slot in slots:
            if slot is None:
                pair.append(None)
                continue
            if slot[1] == 1:  # one text: its result as is (later steps copy, never mutate)
                pair.append(results[slot[0]])
                continue
            ids, offsets = [], [] if with_offsets else None
            for r_ids, r_offsets in results[slot[0]:slot[0] + slot[1]]:
                ids.extend(r_ids)
                if with_offsets:
                    offsets.extend(r_offsets)
            pair.append((ids, offsets))
        encoded.append(tuple(pair))
    return encoded
