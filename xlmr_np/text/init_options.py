"""The tokenizer's keyword arguments, as HF's `PreTrainedTokenizerBase.__init__` takes them.

HF's behaviour followed (`tokenization_utils_base.py`, `PreTrainedTokenizerBase.__init__` and
`save_pretrained`): every keyword the constructor gets is kept, deep-copied, in `init_kwargs`, known or not
(`keep_accents`, which HF's XLM-R test passes and the tokenizer ignores, or a key of some other library's
tokenizer_config.json); the known ones set attributes (`model_max_length` - or the old `max_len` -,
`padding_side`, `truncation_side`, `model_input_names`, `clean_up_tokenization_spaces`,
`split_special_tokens`, `name_or_path`, `verbose`); a keyword named like a method raises AttributeError.
`saved_init_kwargs` is what `save_pretrained` writes back: `init_kwargs` with each key the tokenizer has as
an attribute (and `model_max_length`, `clean_up_tokenization_spaces`) at its current value.  So
`split_special_tokens=True` given to the constructor is saved and restored; set on the attribute later, it is
not saved, as with HF.
"""

from __future__ import annotations

import copy

from .batching import VERY_LARGE_INTEGER

# keys HF pops before writing tokenizer_config.json (the vocabulary file is written on its own)
NOT_SAVED = ("name_or_path", "special_tokens_map_file", "tokenizer_file", "vocab_file", "device_map")


def apply_init_kwargs(tok, kwargs: dict) -> dict:
    """Set `tok`'s settings from the constructor's keywords; returns the `init_kwargs` to keep."""
    for key in kwargs:
        if callable(getattr(type(tok), key, None)):
            raise AttributeError(f"{key} conflicts with the method {key} in {type(tok).__name__}")
    init_kwargs = copy.deepcopy(kwargs)
    tok.name_or_path = kwargs.get("name_or_path", "")
    max_length = kwargs.get("model_max_length", kwargs.get("max_len"))
    tok.model_max_length = VERY_LARGE_INTEGER if max_length is None else int(max_length)
    tok.padding_side = kwargs.get("padding_side", "right")
    tok.truncation_side = kwargs.get("truncation_side", "right")
    for side in ("padding_side", "truncation_side"):
        if getattr(tok, side) not in ("right", "left"):
            raise ValueError(f"{side} must be 'right' or 'left', got {getattr(tok, side)!r}")
    if kwargs.get("model_input_names") is not None:
        tok.model_input_names = list(kwargs["model_input_names"])
    tok.clean_up_tokenization_spaces = kwargs.get("clean_up_tokenization_spaces", False)
    tok.split_special_tokens = kwargs.get("split_special_tokens", False)
    tok.verbose = kwargs.get("verbose", False)
    tok.extra_special_tokens = dict(kwargs.get("extra_special_tokens") or {})
    return init_kwargs


def saved_init_kwargs(tok) -> dict:
    """`init_kwargs` at the tokenizer's current values, as HF's `save_pretrained` starts tokenizer_config.json."""
    config = copy.deepcopy(tok.init_kwargs)
    for key in set(tok.init_kwargs) | {"model_max_length", "clean_up_tokenization_spaces"}:
        if key in NOT_SAVED:
            continue
        if hasattr(tok, key):
            config[key] = copy.deepcopy(getattr(tok, key))
    for key in NOT_SAVED:
        config.pop(key, None)
    return config
