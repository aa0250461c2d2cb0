"""Character offsets: for every token, the span of the original text it comes from, as HF's fast tokenizer gives it.

HF's slow tokenizer cannot return offsets (`return_offsets_mapping=True` raises there), so ours are the fast
tokenizer's (`tokenization_utils_fast.py`, `PreTrainedTokenizerFast._convert_encoding`, the `offset_mapping` of
the Rust `tokenizers` Encoding of `XLMRobertaTokenizerFast` converted from the same .model).  The ids stay the
slow tokenizer's; only how each token is mapped back to the text follows the fast one.

The whole path, step by step, and where each step lives:

1. added tokens: the match plus the whitespace the token swallowed (lstrip/rstrip), recorded while
   cutting the text - `added_tokens.split_on_added_tokens` (`TextPiece.span_start`/`span_end`);
2. SentencePiece pieces of each chunk of text between added tokens, with their ids and sentencepiece's own
   spans - `spm_encode_with_spans`;
3. each chunk normalized as the fast tokenizer does, keeping every character's span in the chunk, and the
   pieces laid over that text: a piece covers the spans of its characters - `fast_offsets.FastNormalizer`.
   With the shipped model "Hello world" gives "▁He" (0, 2), "l" (2, 3), "lo" (3, 5), "▁" (5, 6), "wo" (6, 8),
   ...; "Hello</s>world" gives the dummy "▁" after "</s>" (9, 10), the span of the "w" that "wo" (9, 11)
   covers too; "a  b" gives "▁a" (0, 1), "▁b" (2, 4) (a run of spaces is its last space).
   Where the pieces do not spell that text (the fast tokenizer's normalizer differs from SentencePiece's
   there, and its ids mostly differ too: docs/tokenizer.md), sentencepiece's own spans are used;
4. into the text's coordinates: each chunk's spans shifted by where the chunk starts - `text_offsets`;
5. pre-split words (`is_split_into_words=True`): each word's offsets stay relative to that word -
   `pieces.regroup_examples`;
6. special tokens get (0, 0) (`prepare.assemble`, through `batching.layout_with_specials`), and so do
   padding tokens (`batching.pad_features`, `batching.pad_batch_to_numpy`);
7. overflow windows are slices of the same offsets (`prepare.windowed_features`).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

Span = Tuple[int, int]
Chunk = Tuple[List[int], List[str], List[Span]]  # spm ids, pieces, sentencepiece's spans

_OFFSETS_API: Optional[str] = None  # a property of the installed sentencepiece, found once per process


def spm_offsets_api(sp) -> str:
    """The `out_type` under which this sentencepiece version returns piece spans."""
    global _OFFSETS_API
    if _OFFSETS_API is None:
        try:
            sp.encode("a", out_type="offset_mapping")  # sentencepiece >= 0.2.2: character offsets directly
            _OFFSETS_API = "offset_mapping"
        except (ValueError, TypeError, RuntimeError):
            _OFFSETS_API = "immutable_proto"  # 0.1.99 - 0.2.1: ImmutableSentencePieceText pieces with begin/end
    return _OFFSETS_API


def spm_encode_with_spans(sp, chunks: List[str]) -> List[Chunk]:
    """(spm ids, pieces, character span of each piece within its chunk) of every chunk, in one call."""
    if spm_offsets_api(sp) == "offset_mapping":
        return [(r["ids"], r["pieces"], r["offsets"]) for r in sp.encode(chunks, out_type="offset_mapping")]
    # older sentencepiece: the Python wrapper already turns the spans of str input into character offsets
    protos = sp.encode(chunks, out_type="immutable_proto")
    return [([p.id for p in proto.pieces], [p.piece for p in proto.pieces],
             [(p.begin, p.end) for p in proto.pieces]) for proto in protos]


def chunk_offsets(sp, normalizer, chunk: str, encoded: Chunk) -> Optional[List[Span]]:
    """The fast tokenizer's spans of one chunk's pieces within `chunk` (the chunk as the fast tokenizer's
    split has it); None where they cannot be had (see the module docstring)."""
    ids, pieces, _ = encoded
    if normalizer is None:
        return None
    if not ids:
        return []
    return normalizer.piece_offsets(chunk, pieces, [sp.is_byte(i) for i in ids], [sp.is_unknown(i) for i in ids])


def text_offsets(sp, normalizer, text: str, plan: Sequence, encoded: Sequence[Chunk]) -> List[Span]:
    """Offsets into `text` of every token of one text.

    `plan` is the text's TextPieces (added_tokens.split_on_added_tokens); `encoded` holds, for each piece that
    went to SentencePiece (in order), its ids, pieces and sentencepiece's spans within that chunk.  A chunk's
    fast offsets are measured on its extent in the fast tokenizer's split (`fast_start:fast_end`), its
    sentencepiece spans on the chunk itself.
    """
    offsets, chunks = [], iter(encoded)
    for piece in plan:
        if piece.added_id is not None:
            offsets.append((piece.span_start, piece.span_end))
            continue
        result = next(chunks)
        fast = chunk_offsets(sp, normalizer, text[piece.fast_start:piece.fast_end], result)
        if fast is not None:
            offsets.extend([(piece.fast_start + a, piece.fast_start + b) for a, b in fast])
        else:
            offsets.extend([(piece.start + a, piece.start + b) for a, b in result[2]])
    return offsets
