"""Added tokens: AddedToken, the special-token attributes, and cutting text on added tokens.

Added tokens (the special tokens `<s>`, `</s>`, `<pad>`, `<unk>`, `<mask>` and any extra ones) are matched in
the raw text before SentencePiece sees it.  HF's behaviour followed here:

- `AddedToken` is the `tokenizers` library's class as HF re-exports it in `tokenization_utils_base.py`
  (content, single_word, lstrip, rstrip, normalized, special); `to_dict`/`from_dict` are its form in
  tokenizer_config.json's `added_tokens_decoder` (older files wrap it as `{"__type": "AddedToken", ...}`);
- `split_on_added_tokens` is the first half of `tokenization_utils.py`, `PreTrainedTokenizer.tokenize`:
  `Trie.split` cuts the text leftmost-longest on the added tokens, then a token with `rstrip`/`lstrip`
  swallows the whitespace on that side and a `single_word` token that is not a whole word is given back to
  the text;
- the special-token attributes (`bos_token` ... and their ids) are special_tokens.py's.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Union

from .fast_offsets import RUST_WHITESPACE

class AddedToken:
    """A token matched in the raw text before SentencePiece runs (HF/tokenizers `AddedToken`).

    lstrip/rstrip: swallow the whitespace on that side; single_word: only match as a whole word;
    special: skipped by `decode(skip_special_tokens=True)`; normalized: kept for saving only.
    """

    __slots__ = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")

    def __init__(self, content: str, single_word=False, lstrip=False, rstrip=False, normalized=None, special=False):
        if not isinstance(content, str):
            raise TypeError(f"AddedToken content must be a str, got {type(content).__name__}")
        self.content, self.single_word, self.lstrip, self.rstrip = content, single_word, lstrip, rstrip
        self.special = special
        self.normalized = (not special) if normalized is None else normalized

    def __str__(self):
        return self.content

    def __repr__(self):
        return (f"AddedToken({self.content!r}, rstrip={self.rstrip}, lstrip={self.lstrip}, "
                f"single_word={self.single_word}, normalized={self.normalized}, special={self.special})")

    def to_dict(self, with_special=True) -> dict:
        d = {"content": self.content, "lstrip": self.lstrip, "normalized": self.normalized, "rstrip": self.rstrip,
             "single_word": self.single_word}
        if with_special:
            d["special"] = self.special
        return d

    @classmethod
    def from_dict(cls, d: dict, special=None) -> "AddedToken":
        d = {k: v for k, v in d.items() if k != "__type"}
        if special is not None:
            d["special"] = special
        return cls(**d)


def added_token_pattern(contents) -> Optional["re.Pattern"]:
    """A regex matching any of `contents`, longest first (so `<s>` never cuts `<s>x` if that is a token);
    None when there is nothing to match."""
    contents = sorted((c for c in contents if c), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, contents))) if contents else None


class TextPiece:
    """One piece of a text cut on added tokens.

    `text[start:end]` goes to SentencePiece when `added_id` is None; otherwise the piece is the added token
    `added_id`, and `span_start:span_end` is the character span it covers in the text: its match plus the
    whitespace it swallowed (what the fast tokenizer reports as its offsets).  The span is kept up to date
    for added tokens only.  A text piece's `fast_start:fast_end` is its extent in the fast tokenizer's split,
    wider than `start:end` by the U+001C-U+001F next to an lstrip/rstrip token, which only the slow tokenizer
    strips; its tokens' offsets are computed on that text (offsets.text_offsets).
    """

    __slots__ = ("start", "end", "added_id", "span_start", "span_end", "fast_start", "fast_end")

    def __init__(self, start: int, end: int, added_id: Optional[int] = None):
        self.start, self.end, self.added_id = start, end, added_id
        self.span_start, self.span_end = start, end
        self.fast_start, self.fast_end = start, end  # a text piece's extent in the fast tokenizer's split


    def __repr__(self):
        if self.added_id is None:
            return f"TextPiece({self.start}, {self.end})"
        return (f"TextPiece({self.start}, {self.end}, added_id={self.added_id}, "
                f"span=({self.span_start}, {self.span_end}))")


def split_on_added_tokens(text: str, pattern, encoder: Dict[str, int], decoder: Dict[int, AddedToken]
                          ) -> List[TextPiece]:
    """Cut `text` into TextPieces on the added tokens (HF `PreTrainedTokenizer.tokenize`, first half).

    `pattern` is `added_token_pattern(encoder)` (None: no added tokens), `encoder` maps contents to ids and
    `decoder` ids to AddedTokens.  Empty pieces are dropped, so "" gives [].
    """
    if pattern is None:
        return [TextPiece(0, len(text))] if text else []
    pieces, pos = [], 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            pieces.append(TextPiece(pos, m.start()))
        pieces.append(TextPiece(m.start(), m.end(), encoder[m.group()]))
        pos = m.end()
    if not pieces:
        return [TextPiece(0, len(text))] if text else []
    if pos < len(text):
        pieces.append(TextPiece(pos, len(text)))
    for i, piece in enumerate(pieces):
        if piece.added_id is not None:
            left = pieces[i - 1] if i > 0 else None
            right = pieces[i + 1] if i + 1 < len(pieces) else None
            _strip_and_check_word(text, piece, decoder[piece.added_id], left, right)
    return [p for p in pieces if p.start < p.end]


def _strip_and_check_word(text: str, piece: TextPiece, token: AddedToken, left: Optional[TextPiece],
                          right: Optional[TextPiece]) -> None:
    """Apply `token`'s rstrip, lstrip and single_word to its piece and its neighbours, in place."""
    # single_word looks at the neighbours as they were before the stripping (HF's `left` / `right`)
    left_glued = left is not None and left.start < left.end and text[left.end - 1] != " "
    right_glued = right is not None and right.start < right.end and text[right.start] != " "
    # The slow tokenizer strips Python's whitespace (str.strip); the fast one, whose offsets we give, swallows
    # only Unicode White_Space (Rust's char::is_whitespace): not U+001C-U+001F, which the span leaves out.
    if token.rstrip and right is not None and right.added_id is None and right.start < right.end:
        chunk = text[right.start:right.end]
        swallowed = len(chunk) - len(chunk.lstrip())
        piece.span_end = right.fast_start = right.start + _white_space_run(chunk[:swallowed])
        right.start += swallowed  # swallow whitespace on the right
    if token.lstrip and left is not None and left.added_id is None and left.start < left.end:
        chunk = text[left.start:left.end]
        kept = len(chunk.rstrip())
        left.end = left.start + kept  # swallow whitespace on the left
        piece.span_start = left.fast_end = piece.start - _white_space_run(chunk[kept:][::-1])
    if token.single_word:  # not a whole word: the token is plain text, merged into its neighbour
        if left_glued:
            left.end, left.added_id, piece.start = piece.end, None, piece.end
            left.fast_end = left.end
        elif right_glued:
            right.start, right.added_id, piece.end = piece.start, None, piece.start
            right.fast_start = right.start


def _white_space_run(chars: str) -> int:
    """How many of `chars`, from the first, are Unicode White_Space."""
    n = 0
    while n < len(chars) and chars[n] in RUST_WHITESPACE:
        n += 1
    return n
