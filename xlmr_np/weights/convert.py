"""`python -m xlmr_np convert SRC DST`: any supported checkpoint -> config.json + model.safetensors.

Reads SRC with files.read_state_dict (safetensors, sharded safetensors, pytorch_model.bin and its
shards, tf_model.h5, flax_model.msgpack; a local directory or a hub id, hub.resolve_model_dir) and
writes, in DST, what transformers 4.57.6 `modeling_utils.py` `PreTrainedModel.save_pretrained`
(safe_serialization=True) would write:
    config.json (copied byte for byte), model.safetensors with metadata {"format": "pt"};
    above --max-shard-size: model-0000k-of-0000n.safetensors + model.safetensors.index.json
    ({"metadata": {"total_size": bytes}, "weight_map": {name: shard}}), split the way
    huggingface_hub's `split_state_dict_into_shards_factory` does (tensors in order, a new shard when the
    next one would overflow, an oversized tensor alone);
and copies the tokenizer files beside it. Tensor names are kept as read (HF PyTorch names), so
HF transformers loads the result. BF16 weights become F32 (NumPy has no bfloat16). The files are
written all or nothing (commit.write_model_files), and a destination that holds a model is refused
unless overwrite=True.
See docs/checkpoint_formats.md ("Converting"). The command line is xlmr_np/cli/files.py.
"""

import json
import re
from pathlib import Path

from ..errors import CheckpointError
from .commit import ModelExists, model_files, write_bytes, write_model_files
from .files import read_state_dict
from .hub import resolve_model_dir
from .safetensors_file import save_file

__all__ = ["convert", "parse_size"]

DEFAULT_MAX_SHARD_SIZE = "5GB"
TOKENIZER_FILES = ("sentencepiece.bpe.model", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")
_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(size):
    """'5GB' -> 5_000_000_000 (decimal units, as huggingface_hub), '5GiB' -> 5 * 2**30; ints pass."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]I?B)\s*", str(size), re.IGNORECASE)
        if not m:
            raise ValueError(f"cannot parse size {size!r}; use e.g. 5GB, 500MB or 2GiB")
        value = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()])
    if value <= 0:
        raise ValueError(f"max shard size must be positive, got {size!r}")
    return value


def _split(state, max_bytes):
    """Group tensor names into shards of at most max_bytes (an oversized tensor goes alone)."""
    shards, current, used = [], [], 0
    for name, array in state.items():
        if array.nbytes > max_bytes:
            shards.append([name])
            continue
        if current and used + array.nbytes > max_bytes:
            shards.append(current)
            current, used = [], 0
        current.append(name)
        used += array.nbytes
    if current:
        shards.append(current)
    return shards


def convert(src, dst, max_shard_size=DEFAULT_MAX_SHARD_SIZE, overwrite=False):
    """Convert the checkpoint at `src` into `dst` (created if needed). Returns the files written.

    All or nothing (commit.write_model_files): every file is written under a temporary name and
    renamed into place only when all are complete, so a full disk or a crash leaves `dst` as it
    was. A `dst` that already holds a model (config.json or any weight file) is refused unless
    `overwrite`; then the old safetensors shards or single file the new layout lacks are removed.
    """
    src = resolve_model_dir(src)
    dst = Path(dst)
    max_bytes = parse_size(max_shard_size)
    config_path = src / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{src}: no config.json; a model directory needs one")
    try:
        config = json.loads(config_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{config_path}: not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object, got {type(config).__name__}")
    if dst.exists() and dst.resolve() == src.resolve():
        raise CheckpointError(f"{dst}: the destination is the source directory; choose another")
    present = model_files(dst)
    if present and not overwrite:  # before reading the source: refuse at once
        raise ModelExists(dst, present)

    state = read_state_dict(src)
    writers = _weight_writers(state, _split(state, max_bytes))
    for name in ("config.json",) + TOKENIZER_FILES:
        if (src / name).is_file():
            writers[name] = lambda path, data=(src / name).read_bytes(): write_bytes(path, data)
    return write_model_files(dst, writers, overwrite=overwrite)


def _weight_writers(state, shards):
    """{file name: write(path)} for model.safetensors, or the shards and their index."""
    if len(shards) <= 1:
        return {"model.safetensors": lambda path: save_file(state, path)}
    writers, weight_map = {}, {}
    for i, names in enumerate(shards):
        shard = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        writers[shard] = lambda path, names=names: save_file({n: state[n] for n in names}, path)
        weight_map.update({n: shard for n in names})
    index = {"metadata": {"total_size": sum(a.nbytes for a in state.values())},
             "weight_map": weight_map}
    text = json.dumps(index, indent=2, sort_keys=True) + "\n"
    writers["model.safetensors.index.json"] = lambda path: write_bytes(path, text.encode("utf-8"))
    return writers
