"""Ids back to text, as HF's slow tokenizer decodes.

HF's behaviour followed: `tokenization_utils.py`, `PreTrainedTokenizer._decode` (special tokens dropped
with `skip_special_tokens`; added tokens that are not special, and additional special tokens outside the
base vocabulary, are decoded apart from the spm pieces and joined to them with a space when
`spaces_between_special_tokens`); `models/xlm_roberta/tokenization_xlm_roberta.py`,
`XLMRobertaTokenizer.convert_tokens_to_string`; `tokenization_utils_base.py`,
`PreTrainedTokenizerBase.clean_up_tokenization`.
"""

from __future__ import annotations

from typing import Iterable, List, Set

from .pieces import SPIECE_UNDERLINE


def tokens_to_string(tokens: Iterable[str]) -> str:
    """spm pieces to text: joined, "▁" -> space, outer spaces stripped.

    >>> tokens_to_string(["▁Hel", "lo", "▁world"])
    'Hello world'
    """
    return "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()


def join_tokens(tokens: List[str], specials: Set[str], legacy: Set[str], skip_special_tokens: bool,
                spaces_between_special_tokens: bool) -> str:
    """The text of `tokens`: runs of spm pieces through `tokens_to_string`, each `legacy` token on its own.

    `specials` are dropped when `skip_special_tokens`; `legacy` are the tokens HF decodes apart (its
    "legacy added tokens").
    """
    parts, current = [], []
    for token in tokens:
        if skip_special_tokens and token in specials:
            continue
        if token in legacy:
            if current:
                text = tokens_to_string(current)
                if text:
                    parts.append(text)
                current = []
            parts.append(token)
        else:
            current.append(token)
    if current:
        parts.append(tokens_to_string(current))
    return (" " if spaces_between_special_tokens else "").join(parts)


def clean_up_tokenization(text: str) -> str:
    """HF's `clean_up_tokenization`: drop the space before English punctuation and contractions."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text
