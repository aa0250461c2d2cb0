"""The tokenizer's files in Hugging Face's layout: reading a model directory, writing one.

A tokenizer directory holds `sentencepiece.bpe.model` (the SentencePiece model), and optionally
`tokenizer_config.json` (constructor arguments and, as HF writes it now, `added_tokens_decoder`),
`special_tokens_map.json` and `added_tokens.json` (the older layout of the special and added tokens).
HF's behaviour followed, in `tokenization_utils_base.py`:

- `read_pretrained` is `PreTrainedTokenizerBase.from_pretrained` / `_from_pretrained` for a local directory
  (or a hub id already in the local Hugging Face cache): config keys become constructor arguments, saved
  `AddedToken`s keep their lstrip/rstrip flags, keyword arguments win over the files;
- `tokenizer_config_json` and `special_tokens_map_json` are what `save_pretrained` writes, so that HF's slow
  and fast XLMRobertaTokenizer load the directory;
- `save_vocabulary` is `models/xlm_roberta/tokenization_xlm_roberta.py`, `XLMRobertaTokenizer.save_vocabulary`.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Dict, Optional, Tuple

import sentencepiece as spm

from ..errors import CheckpointError
from ..weights.hub import resolve_model_dir
from .added_tokens import AddedToken
from .special_tokens import SPECIAL_TOKEN_ATTRIBUTES
from .tokenizer_json import model_proto_from_tokenizer_json

VOCAB_FILE = "sentencepiece.bpe.model"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
TOKENIZER_JSON = "tokenizer.json"  # a fast tokenizer's file: the SentencePiece model is rebuilt from it

# tokenizer_config.json keys that become constructor arguments (the rest of HF's; unknown ones are kept in
# init_kwargs, as HF's `_from_pretrained` passes every key but these on)
CONFIG_INIT_KEYS = set(SPECIAL_TOKEN_ATTRIBUTES) | {
    "additional_special_tokens", "sp_model_kwargs", "model_max_length", "padding_side", "truncation_side",
    "clean_up_tokenization_spaces", "split_special_tokens", "model_input_names",
}
CONFIG_NOT_PASSED = {"tokenizer_class", "tokenizer_file", "init_inputs", "added_tokens_decoder", "vocab_file",
                     "name_or_path"}


# ---------------------------------------------------------------------- the SentencePiece model

def load_sentencepiece(path, sp_model_kwargs: dict) -> spm.SentencePieceProcessor:
    """The SentencePiece model at `path`; a missing or unreadable file raises an error naming the path."""
    path = os.fspath(path)
    if os.path.basename(path) == TOKENIZER_JSON and os.path.isfile(path):  # no .model: rebuilt from it
        return sentencepiece_from_proto(model_proto_from_tokenizer_json(path), sp_model_kwargs)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SentencePiece model not found: {path!r}. Pass the path of the model's "
                                f"{VOCAB_FILE}, or its directory to XLMRobertaTokenizer.from_pretrained().")
    sp = spm.SentencePieceProcessor(**sp_model_kwargs)
    try:
        sp.Load(path)
    except (RuntimeError, OSError) as err:
        raise ValueError(f"{path!r} is not a readable SentencePiece model ({err}); the file is corrupt or of "
                         f"another kind: download {VOCAB_FILE} again.") from err
    return sp


def sentencepiece_from_proto(proto: bytes, sp_model_kwargs: dict) -> spm.SentencePieceProcessor:
    """A SentencePiece model from its serialised bytes (what a pickled tokenizer keeps, as HF's `__getstate__`)."""
    sp = spm.SentencePieceProcessor(**sp_model_kwargs)
    sp.LoadFromSerializedProto(proto)
    return sp


def save_vocabulary(vocab_file: str, sp, save_directory, filename_prefix: Optional[str] = None) -> Tuple[str]:
    """Write sentencepiece.bpe.model into `save_directory`: `vocab_file` copied, or `sp` re-serialised if
    that file is gone."""
    save_directory = os.fspath(save_directory)
    if not os.path.isdir(save_directory):
        raise NotADirectoryError(f"save_vocabulary needs an existing directory, got {save_directory!r}")
    out = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILE)
    if os.path.isfile(vocab_file) and os.path.basename(vocab_file) != TOKENIZER_JSON:
        if os.path.abspath(vocab_file) != os.path.abspath(out):
            shutil.copyfile(vocab_file, out)
    else:
        with open(out, "wb") as f:
            f.write(sp.serialized_model_proto())
    return (out,)


# ---------------------------------------------------------------------- reading a directory

def find_directory(pretrained_path) -> str:
    """The local directory of `pretrained_path`: the path itself, or a hub id found in the local HF cache."""
    directory = os.fspath(pretrained_path)
    if os.path.isdir(directory):
        return directory
    try:  # a hub id such as "FacebookAI/xlm-roberta-base" found in the local Hugging Face cache
        return os.fspath(resolve_model_dir(directory))
    except CheckpointError as err:
        raise FileNotFoundError(f"tokenizer directory not found: {pretrained_path!r} ({err})") from None


def vocab_file_in(directory: str) -> str:
    """Path of sentencepiece.bpe.model in `directory`, or an error that says what to download."""
    vocab_file = os.path.join(directory, VOCAB_FILE)
    if not os.path.isfile(vocab_file):
        if os.path.isfile(os.path.join(directory, TOKENIZER_JSON)):
            return os.path.join(directory, TOKENIZER_JSON)  # the SentencePiece model is rebuilt from it
        raise FileNotFoundError(f"no {VOCAB_FILE} in {directory!r}; it is the SentencePiece model of the tokenizer")
    return vocab_file


def read_json(directory: str, name: str):
    """The parsed JSON file `name` of `directory`, None if there is none; invalid JSON raises ValueError."""
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path!r} is not valid JSON: {err}") from err


def read_pretrained(pretrained_path, kwargs: dict) -> Tuple[str, dict]:
    """(vocab_file, constructor arguments) of a tokenizer directory; `kwargs` (the caller's) win over the files."""
    directory = find_directory(pretrained_path)
    vocab_file = vocab_file_in(directory)
    config = read_json(directory, TOKENIZER_CONFIG_FILE) or {}
    init = {k: v for k, v in config.items() if k not in CONFIG_NOT_PASSED}
    if "model_max_length" not in init and "max_len" in config:
        init["model_max_length"] = config["max_len"]
    for key, value in list(init.items()):  # HF's {"__type": "AddedToken", ...} serialisation
        if isinstance(value, dict) and value.get("__type") == "AddedToken":
            init[key] = AddedToken.from_dict(value)
    if "added_tokens_decoder" in config:
        added = {int(i): AddedToken.from_dict(t) for i, t in config["added_tokens_decoder"].items()}
    else:
        added = _read_legacy_tokens(directory, init, kwargs)
    # special-token attributes take the saved AddedToken objects (their lstrip/rstrip flags)
    by_content = {t.content: t for t in added.values()}
    for key in SPECIAL_TOKEN_ATTRIBUTES:
        if key in init and init[key] is not None and str(init[key]) in by_content:
            init[key] = by_content[str(init[key])]
    init.update(kwargs)
    init["added_tokens_decoder"] = added
    init.setdefault("name_or_path", directory)
    return vocab_file, init


def _read_legacy_tokens(directory: str, init: dict, kwargs: dict) -> Dict[int, AddedToken]:
    """The older layout: special_tokens_map.json (merged into `init`) and added_tokens.json (returned)."""
    for key, value in (read_json(directory, SPECIAL_TOKENS_MAP_FILE) or {}).items():
        if kwargs.get(key):
            continue
        if isinstance(value, dict):
            value = AddedToken.from_dict(value, special=True)
        elif key == "additional_special_tokens" and isinstance(value, list):
            value = [AddedToken.from_dict(v, special=True) if isinstance(v, dict) else v for v in value]
        if key in CONFIG_INIT_KEYS:
            init[key] = value
    added = {}
    legacy_added = read_json(directory, ADDED_TOKENS_FILE)
    if legacy_added:
        specials = {str(init.get(k)) for k in SPECIAL_TOKEN_ATTRIBUTES if init.get(k) is not None}
        specials |= {str(t) for t in init.get("additional_special_tokens") or []}
        for content, index in legacy_added.items():
            special = content in specials
            added[int(index)] = AddedToken(content, normalized=not special, special=special)
    return added


# ---------------------------------------------------------------------- writing a directory

def tokenizer_config_json(init_config: dict, added_tokens_decoder: Dict[int, AddedToken],
                          special_tokens_map: dict) -> dict:
    """The content of tokenizer_config.json, as HF 4.57.6's `save_pretrained` writes it: the constructor's
    keywords at their current values (init_options.saved_init_kwargs), the special tokens, AddedTokens as
    `{"__type": "AddedToken", ...}`, `added_tokens_decoder` and `tokenizer_class`."""
    config = dict(init_config)
    config.update(special_tokens_map)
    config.setdefault("extra_special_tokens", {})
    config = _with_type_field(config)
    config["added_tokens_decoder"] = {str(i): t.to_dict() for i, t in sorted(added_tokens_decoder.items())}
    config["tokenizer_class"] = "XLMRobertaTokenizer"
    return config


def _with_type_field(obj):
    """AddedTokens (at any depth) as HF's `convert_added_tokens(..., add_type_field=True)` writes them."""
    if isinstance(obj, AddedToken):
        return dict(obj.to_dict(), __type="AddedToken")
    if isinstance(obj, dict):
        return {k: _with_type_field(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_with_type_field(v) for v in obj]
    return obj


def special_tokens_map_json(special: dict, additional_special: list) -> dict:
    """The content of special_tokens_map.json: each special token as given (str, or AddedToken flags)."""
    special_map = {}
    for attr, value in special.items():
        if value is not None:
            special_map[attr] = value.to_dict(with_special=False) if isinstance(value, AddedToken) else value
    if additional_special:
        special_map["additional_special_tokens"] = [
            t.to_dict(with_special=False) if isinstance(t, AddedToken) else t for t in additional_special]
    return special_map


def write_json(path: str, obj) -> str:
    """Write `obj` as HF does (indent 2, sorted keys, UTF-8, trailing newline); returns `path`."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path
