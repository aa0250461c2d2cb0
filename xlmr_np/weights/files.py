"""Find and read the weight files of a model directory, in every format Hugging Face has used.

Reference behaviour: transformers 4.57.6 `modeling_utils.py` `PreTrainedModel.from_pretrained` and
`_get_resolved_checkpoint_files` (which file wins when several exist; a `*.index.json` whose
`weight_map` names the shards of a sharded checkpoint) and `load_state_dict` (one shard -> one
state dict). See docs/checkpoint_formats.md ("Which file is used", "Sharded indexes").

`read_state_dict(directory)` returns a flat {name: np.ndarray} under Hugging Face **PyTorch** key
names, as stored: no prefix handling, no gamma/beta renaming, tied keys present or absent as the
file has them (xlmr_np.weights.keys maps these names to the model's parameters). TF (`.h5`) and
Flax (`.msgpack`) checkpoints are translated to the PyTorch names and layouts, so the result equals
the state dict HF's PyTorch class would save for the same weights.

Formats, in HF's order of preference:
    model.safetensors, model.safetensors.index.json (shards)   safetensors_file.py, zero-copy
    pytorch_model.bin, pytorch_model.bin.index.json (shards)    torch_pickle.py, zero-copy
    tf_model.h5                                                 tf_h5.py, needs h5py
    flax_model.msgpack                                          flax_msgpack.py, needs msgpack
Every file is treated as hostile: headers are checked against file sizes before anything is
allocated, pickles run only an allow-list, index files may not point outside the directory.
"""

import json
import os
from pathlib import Path

from ..errors import CheckpointError
from .flax_msgpack import read_flax_msgpack
from .safetensors_file import load_file
from .tf_h5 import read_tf_h5
from .torch_pickle import load_torch_file

__all__ = ["find_weight_files", "read_state_dict", "read_index", "WEIGHT_FORMATS"]


# (format name, file name, is an index of shards), in the order HF's from_pretrained tries them.
WEIGHT_FORMATS = (
    ("safetensors", "model.safetensors", False),
    ("safetensors_sharded", "model.safetensors.index.json", True),
    ("pytorch", "pytorch_model.bin", False),
    ("pytorch_sharded", "pytorch_model.bin.index.json", True),
    ("tf", "tf_model.h5", False),
    ("flax", "flax_model.msgpack", False),
)
_UNSUPPORTED = {
    "model.ckpt.index": "a TensorFlow 1 checkpoint",
    "tf_model.h5.index.json": "a sharded TensorFlow checkpoint",
    "flax_model.msgpack.index.json": "a sharded Flax checkpoint",
}
MAX_INDEX_BYTES = 64 * 2**20


def _json_no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise CheckpointError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def read_index(index_path):
    """Parse and check a `*.index.json` of a sharded checkpoint.

    Returns (weight_map {tensor name: shard Path}, [shard Paths in file order]). Every shard must
    be a relative path that stays inside the directory (after resolving symlinks; a Hugging Face
    cache snapshot may link into its own repository folder) and must exist.
    """
    index_path = Path(index_path)
    directory = index_path.parent
    if index_path.stat().st_size > MAX_INDEX_BYTES:
        raise CheckpointError(f"{index_path}: index file is larger than {MAX_INDEX_BYTES} bytes")
    try:
        index = json.loads(index_path.read_bytes().decode("utf-8"),
                           object_pairs_hook=_json_no_duplicates)
    except CheckpointError as e:
        raise CheckpointError(f"{index_path}: {e}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{index_path}: not a valid JSON index ({e})") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index_path}: expected a JSON object with a non-empty "
                              f"'weight_map' of tensor name -> shard file")
    root = directory.resolve()
    # A hub cache snapshot (…/models--org--name/snapshots/<rev>/) holds symlinks to ../../blobs/.
    allowed = root.parent.parent if root.parent.name == "snapshots" else root
    shards, resolved = [], {}
    for key, shard in weight_map.items():
        if isinstance(shard, str) and shard in resolved:
            continue
        if (not isinstance(shard, str) or not shard or os.path.isabs(shard) or "\\" in shard
                or any(part in ("", ".", "..") for part in shard.split("/"))):
            raise CheckpointError(f"{index_path}: tensor {key!r} is mapped to {shard!r}, which is "
                                  f"not a plain relative file name inside the model directory")
        path = directory / shard
        real = path.resolve()
        if not _inside(real, root) and not _inside(real, allowed):
            raise CheckpointError(f"{index_path}: shard {shard!r} resolves to {real}, outside the "
                                  f"model directory {root}; refusing to read it")
        if not path.is_file():
            raise CheckpointError(f"{index_path}: shard {shard!r} (for tensor {key!r}) does not "
                                  f"exist in {directory}; the download is incomplete")
        resolved[shard] = path
        shards.append(path)
    return {k: resolved[v] for k, v in weight_map.items()}, shards


def find_weight_files(directory):
    """Return (format name, [weight file paths]) for the preferred checkpoint in `directory`.

    Preference follows HF: model.safetensors, its sharded index, pytorch_model.bin, its sharded
    index, then (as a fallback HF's PyTorch classes do not take) tf_model.h5, flax_model.msgpack.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory (expected a model directory with "
                              f"config.json and weights)")
    for fmt, name, is_index in WEIGHT_FORMATS:
        path = directory / name
        if path.is_file():
            return fmt, (read_index(path)[1] if is_index else [path])
    present = sorted(p.name for p in directory.iterdir())
    for name, what in _UNSUPPORTED.items():
        if name in present:
            raise CheckpointError(f"{directory}: only {name} ({what}) was found, which xlmr_np "
                                  f"cannot read; convert it with transformers to model.safetensors")
    raise CheckpointError(
        f"{directory}: no weight file found; looked for "
        f"{', '.join(name for _, name, _ in WEIGHT_FORMATS)}. Files present: "
        f"{', '.join(present[:20]) or '(none)'}")


def read_state_dict(directory):
    """Read the preferred checkpoint in `directory` as {HF PyTorch key: np.ndarray}."""
    fmt, paths = find_weight_files(directory)
    if fmt in ("safetensors", "pytorch"):
        return _read_one(fmt, paths[0])
    if fmt in ("safetensors_sharded", "pytorch_sharded"):
        index = Path(directory) / dict((f, n) for f, n, _ in WEIGHT_FORMATS)[fmt]
        weight_map, shards = read_index(index)
        state, origin = {}, {}
        for shard in shards:
            for key, value in _read_one(fmt.split("_")[0], shard).items():
                if key in state:
                    raise CheckpointError(f"{index}: tensor {key!r} is in both {origin[key].name} "
                                          f"and {shard.name}")
                state[key], origin[key] = value, shard
        for key, shard in weight_map.items():
            if origin.get(key) != shard:
                raise CheckpointError(f"{index}: tensor {key!r} should be in {shard.name} but "
                                      f"{'is in ' + origin[key].name if key in origin else 'is in no shard'}")
        return state
    if fmt == "tf":
        return read_tf_h5(paths[0])
    return read_flax_msgpack(paths[0])


def _read_one(kind, path):
    return load_file(path) if kind == "safetensors" else load_torch_file(path)
