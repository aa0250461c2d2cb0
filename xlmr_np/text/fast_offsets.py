"""Offsets as HF's fast tokenizer computes them, rebuilt from the SentencePiece model's own data.

HF's `XLMRobertaTokenizerFast` is the slow tokenizer's .model converted to a `tokenizers` pipeline
(`convert_slow_tokenizer.py`, `SpmConverter.normalizer` / `pre_tokenizer`): the normalizer is
`Precompiled(charsmap) -> Strip(right) -> Replace(" {2,}", "▁")`, the pre-tokenizer `Metaspace("▁",
prepend_scheme="always", split=True)`.  Every step keeps, for each character of the normalized text, the span
of the original text it stands for (an "alignment"), and a token's offsets are the smallest span covering the
alignments of its characters.  How each step sets them (behaviour measured against tokenizers 0.22 and
described in its docs; the code here is written from that description):

- a character that replaces one (or, when the step drops characters after it, several) keeps the alignment
  of the first character it replaces; an inserted character (one more than was replaced) takes the
  alignment of the character before it;
- Precompiled works per extended grapheme cluster: a cluster shorter than 6 bytes is looked up whole in the
  charsmap (its shortest matching prefix wins, and the whole cluster is replaced); otherwise, and when
  nothing matched, each character is looked up alone.  A character mapped to nothing is charged to the
  character written before it, so at the very start of a text its removal is not counted and the following
  characters take the alignments of the ones before them (the fast tokenizer's shifted spans after a leading
  control character, tokenizers issue #663);
- Strip(right) drops trailing whitespace;
- Replace(" {2,}", "▁"): a run of spaces becomes one "▁" aligned with the run's last space;
- Metaspace: each " " becomes "▁" (same alignment); a "▁" is put in front of the text unless it starts
  with one, aligned with the first character (so a lone "▁" token covers the first character of its word).

The charsmap is SentencePiece's `normalizer_spec.precompiled_charsmap`: a little-endian uint32 byte length of a
darts-clone double-array trie, the trie's uint32 units, then the replacement strings, NUL-terminated, that
the trie's values point at.  The slow tokenizer (SentencePiece itself) gives the same ids whenever its
normalized text equals this one; `piece_offsets` returns None when it does not (the rare texts where HF's
fast and slow tokenizers disagree on ids, docs/tokenizer.md), and the caller falls back on SentencePiece's
own spans.
"""

from __future__ import annotations

import struct
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

from .spm_proto import read_model_info

SPIECE_UNDERLINE = "\u2581"

# Rust's char::is_whitespace (Unicode White_Space), which tokenizers' Strip uses
RUST_WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                            "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


class Charsmap:
    """SentencePiece's precompiled normalization rules: a darts-clone trie from strings to replacements."""

    def __init__(self, blob: bytes):
        (trie_bytes,) = struct.unpack_from("<I", blob, 0)
        self.units = list(struct.unpack_from(f"<{trie_bytes // 4}I", blob, 4))
        self.strings = blob[4 + trie_bytes:]
        self._cache: Dict[str, Optional[str]] = {}

    def _replacement(self, index: int) -> str:
        end = self.strings.index(b"\0", index)
        return self.strings[index:end].decode("utf-8")

    def shortest_prefix(self, text: str) -> Optional[str]:
        """The replacement of the shortest prefix of `text` that the trie holds, None when none does."""
        if text in self._cache:
            return self._cache[text]
        units, pos, found = self.units, 0, None
        unit = units[0]
        pos ^= (unit >> 10) << ((unit & (1 << 9)) >> 6)
        for byte in text.encode("utf-8"):
            if byte == 0:
                break
            pos ^= byte
            unit = units[pos]
            if unit & ((1 << 31) | 0xFF) != byte:
                break
            pos ^= (unit >> 10) << ((unit & (1 << 9)) >> 6)
            if (unit >> 8) & 1:
                found = self._replacement(units[pos] & ((1 << 31) - 1))
                break
        self._cache[text] = found
        return found


# ---------------------------------------------------------------------------------------------- graphemes
# Extended grapheme clusters (UAX #29) as far as they matter here: Precompiled looks a cluster up whole only
# when it is shorter than 6 bytes, so only clusters of a 1-3 byte character followed by marks, CR LF, and
# prepended concatenation marks need to come out right; longer ones (Hangul jamo sequences, emoji sequences,
# Indic conjuncts, regional-indicator pairs) are looked up character by character either way.

_OTHER_GRAPHEME_EXTEND = frozenset(map(chr, (
    0x09BE, 0x09D7, 0x0B3E, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC2, 0x0CD5, 0x0CD6, 0x0D3E, 0x0D57, 0x0DCF, 0x0DDF,
    0x1B35, 0x200C, 0x302E, 0x302F, 0xFF9E, 0xFF9F)))
_PREPEND = frozenset(map(chr, (0x0600, 0x0601, 0x0602, 0x0603, 0x0604, 0x0605, 0x06DD, 0x070F, 0x0890, 0x0891,
                               0x08E2, 0x0D4E)))
_SPACING_MARK_EXTRA = frozenset("\u0e33\u0eb3")
_NOT_SPACING_MARK = frozenset(map(chr, (0x102B, 0x102C, 0x1038, 0x1062, 0x1063, 0x1064, 0x1067, 0x1068, 0x1069,
                                        0x106A, 0x106B, 0x106C, 0x106D, 0x1083, 0x1087, 0x1088, 0x1089, 0x108A,
                                        0x108B, 0x108C, 0x108F, 0x109A, 0x109B, 0x109C, 0x1A61, 0x1A63, 0x1A64,
                                        0xAA7B, 0xAA7D)))


def _joins_previous(c: str) -> bool:
    """Extend, ZWJ or SpacingMark: never a cluster break before it (GB9, GB9a)."""
    if c == "\u200d" or c in _OTHER_GRAPHEME_EXTEND or c in _SPACING_MARK_EXTRA:
        return True
    if "\U0001f3fb" <= c <= "\U0001f3ff" or "\U000e0020" <= c <= "\U000e007f":  # emoji modifiers, tags
        return True
    cat = unicodedata.category(c)
    if cat in ("Mn", "Me"):
        return True
    return cat == "Mc" and c not in _NOT_SPACING_MARK


def _is_control(c: str) -> bool:
    if c in "\r\n" or c in _PREPEND or c in "\u200c\u200d" or "\U000e0020" <= c <= "\U000e007f":
        return c in "\r\n"
    return unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cf")


def graphemes(text: str) -> List[str]:
    """`text` cut into extended grapheme clusters (see above for how far the rules go)."""
    clusters: List[str] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i < len(text):
            prev, c = text[i - 1], text[i]
            if prev == "\r" and c == "\n":
                continue
            if not _is_control(prev) and not _is_control(c):
                if _joins_previous(c) or prev in _PREPEND:
                    continue
        clusters.append(text[start:i])
        start = i
    return clusters


# ---------------------------------------------------------------------------------------------- alignments

Align = Tuple[int, int]


def _transform(aligns: List[Align], changes: Sequence[Tuple[str, int]]) -> Tuple[List[str], List[Align]]:
    """Apply (char, change) transformations to a text whose characters have `aligns`.

    change 0: the char replaces the next character; 1: it is inserted after the previous one; -n: it replaces
    the next character and n more are dropped after it.  Characters left over at the end are dropped.
    """
    chars, out, index = [], [], 0
    for c, change in changes:
        if change > 0:
            out.append(aligns[index - 1] if index >= 1 else (0, 0))
        else:
            out.append(aligns[index])
            index += 1 - change
        chars.append(c)
    return chars, out


def _replace_changes(changes: List[Tuple[str, int]], old: str, new: str) -> None:
    """Record `old` -> `new` (tokenizers' Precompiled `replace`): extra characters are insertions, missing
    ones are charged to the last character recorded so far."""
    diff = len(new) - len(old)
    changes.extend((c, 0) for c in new)
    if diff > 0:
        for k in range(len(changes) - diff, len(changes)):
            changes[k] = (changes[k][0], 1)
    elif diff < 0 and changes:
        c, change = changes[-1]
        changes[-1] = (c, change + diff)


class FastNormalizer:
    """The fast tokenizer's normalizer and Metaspace pre-tokenizer for one SentencePiece model, with alignments."""

    def __init__(self, charsmap: bytes):
        self.charsmap = Charsmap(charsmap) if charsmap else None

    @classmethod
    def from_proto(cls, proto: bytes) -> "FastNormalizer":
        return cls(read_model_info(proto).precompiled_charsmap)

    def _precompiled(self, text: str, aligns: List[Align]) -> Tuple[List[str], List[Align]]:
        cmap = self.charsmap
        changes: List[Tuple[str, int]] = []
        modified = False
        for cluster in graphemes(text):
            if len(cluster) > 1 and len(cluster.encode("utf-8")) < 6:
                norm = cmap.shortest_prefix(cluster)
                if norm is not None:
                    _replace_changes(changes, cluster, norm)
                    modified = True
                    continue
            for c in cluster:
                norm = cmap.shortest_prefix(c)
                if norm is None:
                    changes.append((c, 0))
                else:
                    _replace_changes(changes, c, norm)
                    modified = True
        if not modified:
            return list(text), aligns
        return _transform(aligns, changes)

    def normalize(self, text: str) -> Tuple[str, List[Align]]:
        """The normalized, pre-tokenized text ("▁" for spaces, the leading "▁") and each character's span
        in `text`."""
        aligns = [(i, i + 1) for i in range(len(text))]
        if self.charsmap is not None and text:
            chars, aligns = self._precompiled(text, aligns)
        else:
            chars = list(text)
        n = len(chars)
        while n and chars[n - 1] in RUST_WHITESPACE:  # Strip(right)
            n -= 1
        out_chars, out_aligns, i = [], [], 0
        while i < n:  # Replace(" {2,}", "▁") and Metaspace's " " -> "▁"
            if chars[i] == " ":
                j = i
                while j < n and chars[j] == " ":
                    j += 1
                out_chars.append(SPIECE_UNDERLINE)
                out_aligns.append(aligns[j - 1])
                i = j
            else:
                out_chars.append(chars[i])
                out_aligns.append(aligns[i])
                i += 1
        if out_chars and out_chars[0] != SPIECE_UNDERLINE:  # Metaspace prepend_scheme="always"
            out_chars.insert(0, SPIECE_UNDERLINE)
            out_aligns.insert(0, out_aligns[0])
        return "".join(out_chars), out_aligns

    def piece_offsets(self, text: str, pieces: Sequence[str], byte_pieces: Sequence[bool],
                      unknown_pieces: Optional[Sequence[bool]] = None) -> Optional[List[Align]]:
        """Offsets into `text` of SentencePiece's `pieces` of it, as the fast tokenizer gives them.

        `byte_pieces[k]` says whether piece k is a byte-fallback piece (`<0xE3>`: one byte of the normalized
        text), `unknown_pieces[k]` whether it is an unknown piece: one whose text may differ from the fast
        normalizer's (both tokenizers give `<unk>` there), so it covers whatever lies before the next piece.
        None when the pieces do not spell the fast tokenizer's normalized text.
        """
        normalized, aligns = self.normalize(text)
        data = normalized.encode("utf-8")
        char_of_byte = []
        for k, c in enumerate(normalized):
            char_of_byte.extend([k] * len(c.encode("utf-8")))
        raws = [bytes([int(p[3:5], 16)]) if b else p.encode("utf-8") for p, b in zip(pieces, byte_pieces)]
        unknown = unknown_pieces or [False] * len(raws)
        offsets, pos = [], 0
        for k, raw in enumerate(raws):
            end = pos + len(raw)
            if data[pos:end] != raw or not raw:
                if not unknown[k]:
                    return None
                end = _unknown_end(data, pos, raws[k + 1] if k + 1 < len(raws) else None)
                if end is None:
                    return None
            first, last = char_of_byte[pos], char_of_byte[end - 1]
            span = aligns[first:last + 1]
            offsets.append((min(a for a, _ in span), max(b for _, b in span)))
            pos = end
        return offsets if pos == len(data) else None


def _unknown_end(data: bytes, pos: int, following: Optional[bytes]) -> Optional[int]:
    """Where an unknown piece starting at `pos` ends: before the next piece's text, or at the end of `data`."""
    if following is None:
        return len(data) if len(data) > pos else None
    end = data.find(following, pos + 1)
    return end if end > pos else None
