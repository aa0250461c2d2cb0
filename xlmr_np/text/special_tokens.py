"""The special-token attributes of HF's tokenizers, readable and settable (HF `SpecialTokensMixin`).

HF's behaviour followed: `tokenization_utils_base.py`, `SpecialTokensMixin`: `bos_token` ... `mask_token`
read as str (None when unset); setting one stores the str or `AddedToken` as given (it does not add it to
the vocabulary: `add_special_tokens` does), and anything else raises ValueError; `*_token_id` is the token's
id *now* (`convert_tokens_to_ids`), and setting it (`tok.bos_token_id = None`, `tok.pad_token_id = 5`) sets
the token through `convert_ids_to_tokens`; `additional_special_tokens` (and `_ids`) likewise, as lists;
`special_tokens_map` holds the attributes that are set, `all_special_tokens` every special token once.

The host class keeps `_special` (attribute -> str | AddedToken | None, in SPECIAL_TOKEN_ATTRIBUTES order)
and `_additional_special` (list), and provides `_token_to_id`, `convert_ids_to_tokens` and
`_special_tokens_changed` (called after every change: the unknown token's id enters the id table).
"""

from __future__ import annotations

from typing import Dict, List, Union

from .added_tokens import AddedToken

SPECIAL_TOKEN_ATTRIBUTES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _token_property(attr: str) -> property:
    def get(self):
        value = self._special.get(attr)
        return None if value is None else str(value)

    def set(self, value):
        if value is not None and not isinstance(value, (str, AddedToken)):
            raise ValueError(f"Cannot set a non-string value as the {attr}: got {type(value).__name__}; pass a str, "
                             "an AddedToken or None")
        self._special[attr] = value
        self._special_tokens_changed()

    return property(get, set, doc=f"The {attr} (str, None when unset); settable as HF's.")


def _id_property(attr: str) -> property:
    def get(self):
        token = getattr(self, attr)
        return None if token is None else self._token_to_id(token)

    def set(self, value):
        setattr(self, attr, None if value is None else self.convert_ids_to_tokens(value))

    return property(get, set, doc=f"Id of the {attr} (None when unset); setting it sets the token of that id.")


class SpecialTokensMixin:
    """bos_token ... mask_token, their ids, the additional special tokens, and the maps of them (HF's)."""

    pad_token_type_id = 0

    bos_token, bos_token_id = _token_property("bos_token"), _id_property("bos_token")
    eos_token, eos_token_id = _token_property("eos_token"), _id_property("eos_token")
    unk_token, unk_token_id = _token_property("unk_token"), _id_property("unk_token")
    sep_token, sep_token_id = _token_property("sep_token"), _id_property("sep_token")
    pad_token, pad_token_id = _token_property("pad_token"), _id_property("pad_token")
    cls_token, cls_token_id = _token_property("cls_token"), _id_property("cls_token")
    mask_token, mask_token_id = _token_property("mask_token"), _id_property("mask_token")

    @property
    def additional_special_tokens(self) -> List[str]:
        return [str(t) for t in self._additional_special]

    @additional_special_tokens.setter
    def additional_special_tokens(self, value):
        if value is None:
            value = []
        if not isinstance(value, (list, tuple)) or not all(isinstance(t, (str, AddedToken)) for t in value):
            raise ValueError("additional_special_tokens must be a list of str or AddedToken")
        self._additional_special = list(value)
        self._special_tokens_changed()

    @property
    def additional_special_tokens_ids(self) -> List[int]:
        return [self._token_to_id(t) for t in self.additional_special_tokens]

    @additional_special_tokens_ids.setter
    def additional_special_tokens_ids(self, value):
        self.additional_special_tokens = [self.convert_ids_to_tokens(i) for i in (value or [])]

    @property
    def special_tokens_map(self) -> Dict[str, Union[str, List[str]]]:
        out = {attr: str(v) for attr, v in self._special.items() if v is not None and str(v)}
        if self._additional_special:
            out["additional_special_tokens"] = self.additional_special_tokens
        return out

    @property
    def special_tokens_map_extended(self) -> dict:
        """As `special_tokens_map`, with the AddedTokens as given."""
        out = {attr: v for attr, v in self._special.items() if v is not None and str(v)}
        if self._additional_special:
            out["additional_special_tokens"] = list(self._additional_special)
        return out

    @property
    def all_special_tokens_extended(self) -> list:
        """Every special token once (str or AddedToken as given), the attributes first, then the additional ones."""
        tokens, seen = [], set()
        for value in list(self.special_tokens_map_extended.values()):
            for token in value if isinstance(value, list) else [value]:
                if str(token) not in seen:
                    seen.add(str(token))
                    tokens.append(token)
        return tokens

    _all_special_tokens_extended = all_special_tokens_extended.fget

    @property
    def all_special_tokens(self) -> List[str]:
        return [str(t) for t in self.all_special_tokens_extended]

    @property
    def all_special_ids(self) -> List[int]:
        return [self._token_to_id(t) for t in self.all_special_tokens]
