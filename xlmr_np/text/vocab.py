"""The whole vocabulary (base + added tokens) as HF's slow tokenizer counts it: `get_vocab`, `len`, new ids.

HF's behaviour followed: `models/xlm_roberta/tokenization_xlm_roberta.py`, `XLMRobertaTokenizer.get_vocab`
(`{convert_ids_to_tokens(i): i for i in range(vocab_size)}`, then the added tokens' encoder on top) and
`tokenization_utils.py`, `PreTrainedTokenizer`: `__len__` is `len(get_vocab())` (distinct *tokens*, not ids)
and `_add_tokens` gives a token that is already a key of `get_vocab()` that key's id, any other the next of
`len(get_vocab())`, `len(get_vocab()) + 1`, ...

A token can stand at two ids (fairseq's `<unk>` = 3 and a model's own `<unk>` piece at spm id 3 = 4): the dict
keeps the later id, so `len` is one less than the number of ids, and the special token `<unk>` is registered
at 4.  An added token at an id below `vocab_size` replaces that id's token in the dict comprehension (HF's
`convert_ids_to_tokens` looks at the added tokens first).

`get_vocab` builds the dict (vocab_size entries); `vocab_key_count` and `vocab_id` answer the same questions
from the few ids that can differ, so that loading and adding tokens does not build a 250,002-entry dict.
"""

from __future__ import annotations

from typing import Dict, Optional

from .added_tokens import AddedToken
from .fairseq_ids import FAIRSEQ_SPECIALS, MASK_TOKEN, base_id_to_token, base_ids_of, base_vocab_size
from .special_tokens import SPECIAL_TOKEN_ATTRIBUTES


def added_encoder_of(decoder: Dict[int, object]) -> Dict[str, int]:
    """HF's `added_tokens_encoder` property: content -> id from the decoder in id order (later ids win)."""
    return {t.content: i for i, t in sorted(decoder.items())}


def get_vocab(sp, decoder: Dict[int, object]) -> Dict[str, int]:
    """HF slow `get_vocab()`: every base id's token (an added token's content where one sits at that id),
    the later id kept for a token at two ids, then the added tokens on top."""
    vocab = {}
    for index in range(base_vocab_size(sp.get_piece_size())):
        vocab[decoder[index].content if index in decoder else base_id_to_token(sp, index)] = index
    vocab.update(added_encoder_of(decoder))
    return vocab


def _overridden(sp, decoder) -> set:
    size = base_vocab_size(sp.get_piece_size())
    return {i for i in decoder if 0 <= i < size}


def _left_in_base(sp, token: str, overridden: set) -> list:
    """The ids at which `token` is still a base token of the dict comprehension (not covered by an added one)."""
    return [i for i in base_ids_of(sp, token) if i not in overridden]


def vocab_key_count(sp, decoder: Dict[int, object]) -> int:
    """`len(get_vocab(sp, decoder))`, from the ids the added tokens cover and the tokens at two ids."""
    size = base_vocab_size(sp.get_piece_size())
    overridden = _overridden(sp, decoder)
    twice = sum(1 for t in list(FAIRSEQ_SPECIALS) + [MASK_TOKEN] if len(base_ids_of(sp, t)) == 2)
    lost = {base_id_to_token(sp, i) for i in overridden}  # base tokens whose every id an added token covers
    lost = {t for t in lost if not _left_in_base(sp, t, overridden)}
    extra = {t.content for t in decoder.values()}  # the contents at covered ids and the encoder's keys
    return size - twice - len(lost) + sum(1 for c in extra if not _left_in_base(sp, c, overridden))


def vocab_id(sp, decoder: Dict[int, object], token: str) -> Optional[int]:
    """`get_vocab(sp, decoder).get(token)`: the added token's id, else its last base id not covered."""
    encoder = added_encoder_of(decoder)
    if token in encoder:
        return encoder[token]
    ids = _left_in_base(sp, token, _overridden(sp, decoder))
    return ids[-1] if ids else None


def register_tokens(tok, new_tokens, special_tokens: bool) -> int:
    """HF `PreTrainedTokenizer._add_tokens` on `tok`'s added tokens; returns how many got new ids.

    A str already added is skipped; a new str becomes an AddedToken (special, and then not normalized, if it
    is a special token or `special_tokens`); an AddedToken passed with `special_tokens` is made special.  A
    token that is a key of `get_vocab()` keeps that key's id (`<mask>` at vocab_size - 1, `▁` at 4, ...), the
    others get `len(tok)`, `len(tok) + 1`, ... in order; a new special token that is no special-token
    attribute joins `additional_special_tokens`.  The caller rebuilds its lookups afterwards.
    """
    decoder = tok._added_decoder
    before = dict(decoder)  # HF takes get_vocab() once, before adding
    new_index, count, assigned = vocab_key_count(tok.sp_model, before), 0, {}
    for token in new_tokens:
        if not isinstance(token, (str, AddedToken)):
            raise TypeError(f"Token {token!r} is not a string but a {type(token).__name__}; pass str or AddedToken")
        if str(token) == "":
            continue
        if isinstance(token, str):
            if token in tok._added_encoder or token in assigned:
                continue
            special = token in tok.all_special_tokens or special_tokens
            token = AddedToken(token, rstrip=False, lstrip=False, normalized=not special, special=special)
        elif special_tokens:
            token.special = True
        index = assigned.get(token.content)
        if index is None:
            index = vocab_id(tok.sp_model, before, token.content)
        if index is None:
            index = new_index + count
            count += 1
        assigned[token.content] = index
        if token.special and str(token) not in tok.all_special_tokens:
            tok._additional_special.append(token)
        decoder[index] = token
        tok._added_encoder[token.content] = index
    return count


def add_special_tokens(tok, special_tokens_dict: dict, replace_additional_special_tokens: bool = True) -> int:
    """HF `SpecialTokensMixin.add_special_tokens`: set each attribute (a str becomes a special, not normalized
    AddedToken), `additional_special_tokens` replaced (or extended), then every token added as special."""
    if not special_tokens_dict:
        return 0
    to_add = []
    for key, value in special_tokens_dict.items():
        if key not in SPECIAL_TOKEN_ATTRIBUTES and key != "additional_special_tokens":
            raise ValueError(f"Key {key!r} is not a special token; use one of {list(SPECIAL_TOKEN_ATTRIBUTES)} "
                             "or 'additional_special_tokens'")
        if key == "additional_special_tokens":
            if not isinstance(value, (list, tuple)) or not all(isinstance(t, (str, AddedToken)) for t in value):
                raise ValueError(f"Tokens {value!r} for key {key} should all be str or AddedToken instances")
            extra = [_special_added_token(t) for t in value]
            if not replace_additional_special_tokens:
                extra = [t for t in extra if str(t) not in tok.additional_special_tokens]
            if replace_additional_special_tokens and extra:
                tok.additional_special_tokens = list(extra)
            else:
                tok._additional_special.extend(extra)
            to_add += extra
        else:
            if not isinstance(value, (str, AddedToken)):
                raise ValueError(f"Token {value!r} for key {key} should be a str or an AddedToken instance")
            value = _special_added_token(value)
            setattr(tok, key, value)
            if all(value is not t for t in to_add):
                to_add.append(value)
    return tok.add_tokens(to_add, special_tokens=True)


def _special_added_token(token):
    if isinstance(token, str):
        return AddedToken(token, rstrip=False, lstrip=False, normalized=False, special=True)
    return token
