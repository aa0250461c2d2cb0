"""Character offsets: for every token, the span of the original text it comes from.

HF's slow tokenizer cannot return offsets (`return_offsets_mapping=True` raises there); ours aim at the
fast tokenizer's (`tokenization_utils_fast.py`, `PreTrainedTokenizerFast._convert_encoding`, the
`offset_mapping` of the Rust `tokenizers` Encoding).  docs/tokenizer.md lists where they still differ.

The whole path, step by step, and where each step lives:

1. added tokens: the match plus the whitespace the token swallowed (lstrip/rstrip), recorded while
   cutting the text - `added_tokens.split_on_added_tokens` (`TextPiece.span_start`/`span_end`);
2. SentencePiece pieces: sentencepiece's own span of each piece within its chunk of text ("surface"
   offsets) - `spm_encode_with_spans`.  With the shipped model, "Hello world" gives "▁He" (0, 2), "l" (2, 3),
   "lo" (3, 5), "▁" (5, 6), "wo" (6, 8), ...; " a  b" gives "▁a" (1, 2), "▁b" (2, 5);
3. into the text's coordinates: each chunk's spans shifted by where the chunk starts - `text_offsets`;
4. pre-split words (`is_split_into_words=True`): each word's offsets stay relative to that word -
   `pieces.regroup_examples`;
5. special tokens get (0, 0) (`prepare.assemble`, through `batching.layout_with_specials`), and so do
   padding tokens (`batching.pad_features`, `batching.pad_batch_to_numpy`);
6. overflow windows are slices of the same offsets (`prepare.windowed_features`).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

Span = Tuple[int, int]

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


def spm_encode_with_spans(sp, chunks: List[str]) -> List[Tuple[List[int], List[Span]]]:
    """(spm ids, character span of each piece within its chunk) of every chunk, in one sentencepiece call."""
    if spm_offsets_api(sp) == "offset_mapping":
        return [(r["ids"], r["offsets"]) for r in sp.encode(chunks, out_type="offset_mapping")]
    # older sentencepiece: the Python wrapper already turns the spans of str input into character offsets
    protos = sp.encode(chunks, out_type="immutable_proto")
    return [([p.id for p in proto.pieces], [(p.begin, p.end) for p in proto.pieces]) for proto in protos]


def text_offsets(plan: Sequence, chunk_spans: Sequence[List[Span]]) -> List[Span]:
    """Offsets into the text of every token of one text.

    `plan` is the text's TextPieces (added_tokens.split_on_added_tokens); `chunk_spans` holds, for each
    piece that went to SentencePiece (in order), the spans of its pieces within that chunk.
    """
    offsets, spans = [], iter(chunk_spans)
    for piece in plan:
        if piece.added_id is not None:
            offsets.append((piece.span_start, piece.span_end))
        else:
            start = piece.start
            offsets.extend([(start + a, start + b) for a, b in next(spans)])
    return offsets
