"""Find and read the weight files of a model directory, in every format Hugging Face has used.

Reference behaviour: transformers 4.57.6 `modeling_utils.PreTrainedModel.from_pretrained` (which
file wins when several exist), `modeling_tf_pytorch_utils` and `modeling_flax_pytorch_utils`
(how TF and Flax names and layouts map to PyTorch's), and huggingface_hub's cache layout.

`read_state_dict(directory)` returns a flat {name: np.ndarray} under Hugging Face **PyTorch** key
names, as stored: no prefix handling, no gamma/beta renaming, tied keys present or absent as the
file has them (xlmr_np.checkpoint maps these names to the model's parameters). TF (`.h5`) and Flax
(`.msgpack`) checkpoints are translated to the PyTorch names and layouts, so the result equals
the state dict HF's PyTorch class would save for the same weights.

Formats, in HF's order of preference:
    model.safetensors, model.safetensors.index.json (shards)   xlmr_np.safetensors, zero-copy
    pytorch_model.bin, pytorch_model.bin.index.json (shards)    xlmr_np.torch_pickle, zero-copy
    tf_model.h5                                                 needs h5py (pip install h5py)
    flax_model.msgpack                                          needs msgpack (pip install msgpack)
Every file is treated as hostile: headers are checked against file sizes before anything is
allocated, pickles run only an allow-list, index files may not point outside the directory.
"""

import json
import math
import os
import re
from pathlib import Path

import numpy as np
from .errors import CheckpointError

__all__ = ["CheckpointError", "find_weight_files", "read_state_dict", "resolve_model_dir",
           "read_index", "WEIGHT_FORMATS"]


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
MAX_MSGPACK_BYTES = 2**34  # read whole into memory; refuse a file that is absurdly large


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
    if kind == "safetensors":
        from .safetensors import load_file
        return load_file(path)
    from .torch_pickle import load_torch_file
    return load_torch_file(path)


# ---- TensorFlow (.h5, Keras save_weights layout) -------------------------------------------------

def tf_name_to_pt(tf_name):
    """TF2 weight name -> (PyTorch key, transpose?), as HF's convert_tf_weight_name_to_pt_weight_name.

    'tfxlm_roberta_for_masked_lm/roberta/encoder/layer_._0/attention/self/query/kernel:0'
    -> ('roberta.encoder.layer.0.attention.self.query.weight', True): drop ':0' and the model
    name (level zero), '_._' is a list index, kernel -> weight (TF stores [in, out]),
    embeddings/gamma -> weight, beta -> bias.
    """
    name = re.sub(r":\d+$", "", tf_name).replace("_._", "/")
    parts = [p for p in name.split("/") if p]
    if len(parts) > 1:
        parts = parts[1:]
    transpose = parts[-1] == "kernel"
    parts[-1] = {"kernel": "weight", "embeddings": "weight", "gamma": "weight",
                 "beta": "bias"}.get(parts[-1], parts[-1])
    return ".".join(parts), transpose


def _h5_strings(obj, attr):
    """A Keras string-list attribute, which Keras splits into attr0, attr1, ... when large."""
    if attr in obj.attrs:
        values = list(obj.attrs[attr])
    else:
        values, i = [], 0
        while f"{attr}{i}" in obj.attrs:
            values += list(obj.attrs[f"{attr}{i}"])
            i += 1
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _h5_dataset(h5py, group, name, path, file_size):
    """Follow `name` inside `group` through hard links only; check the dataset before reading it."""
    node = group
    for part in name.split("/"):
        link = node.get(part, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise CheckpointError(f"{path}: weight {name!r} is missing or reached through a "
                                  f"{type(link).__name__ if link else 'missing'} link; refusing")
        node = node[part]
    if not isinstance(node, h5py.Dataset):
        raise CheckpointError(f"{path}: weight {name!r} is not a dataset")
    if node.is_virtual or node.external:
        raise CheckpointError(f"{path}: weight {name!r} reads data from other files; refusing")
    if node.dtype.kind not in "fiub" or node.dtype.itemsize > 8:
        raise CheckpointError(f"{path}: weight {name!r} has unsupported dtype {node.dtype}")
    if node.size * node.dtype.itemsize > file_size:
        raise CheckpointError(f"{path}: weight {name!r} claims shape {node.shape} "
                              f"({node.size * node.dtype.itemsize} bytes), more than the file holds")
    return np.asarray(node[()])


def read_tf_h5(path):
    """Read a TF2 `tf_model.h5` (HF TF*.save_pretrained) as a PyTorch-named state dict.

    Kernels are transposed from TF's [in, out] to PyTorch's [out, in]. Keras lists the shared word
    embeddings under every layer that uses them; duplicates must agree. A bare TFXLMRobertaModel
    keeps its weights under 'roberta/', which the PyTorch XLMRobertaModel does not: when every
    key starts with 'roberta.' the prefix is dropped (HF's start_prefix_to_remove does the same).
    """
    try:
        import h5py
    except ImportError:
        raise ImportError(f"reading {path} (a TensorFlow checkpoint) needs h5py: "
                          f"pip install h5py (or convert it to model.safetensors)") from None
    path = os.fspath(path)
    file_size = os.path.getsize(path)
    state = {}
    try:
        with h5py.File(path, "r") as f:
            layers = _h5_strings(f, "layer_names")
            if not layers:
                raise CheckpointError(f"{path}: no 'layer_names' attribute; not a Keras weights file")
            for layer in layers:
                if not isinstance(f.get(layer, getlink=True), h5py.HardLink):
                    raise CheckpointError(f"{path}: layer {layer!r} is missing or a link")
                group = f[layer]
                for weight in _h5_strings(group, "weight_names"):
                    array = _h5_dataset(h5py, group, weight, path, file_size)
                    key, transpose = tf_name_to_pt(weight)
                    if transpose:
                        if array.ndim != 2:
                            raise CheckpointError(f"{path}: kernel {weight!r} has {array.ndim} "
                                                  f"dimensions; only dense kernels are supported")
                        array = np.ascontiguousarray(array.T)  # TF [in, out] -> PyTorch [out, in]
                    if key in state:
                        if state[key].shape != array.shape or not np.array_equal(state[key], array):
                            raise CheckpointError(f"{path}: {weight!r} is stored twice with "
                                                  f"different values")
                        continue
                    state[key] = array
    except OSError as e:  # h5py reports a corrupt or non-HDF5 file as OSError
        raise CheckpointError(f"{path}: not a readable HDF5 file ({e})") from None
    if state and all(k.startswith("roberta.") for k in state):
        state = {k[len("roberta."):]: v for k, v in state.items()}
    return state


# ---- Flax (.msgpack, flax.serialization.to_bytes) -----------------------------------------------

_FLAX_DTYPES = {name: np.dtype(name).newbyteorder("<") for name in (
    "float64", "float32", "float16", "int64", "int32", "int16", "int8",
    "uint64", "uint32", "uint16", "uint8", "bool")}
_FLAX_DTYPES["bfloat16"] = np.dtype("<u2")


def _flax_array(msgpack, payload, path):
    """Decode flax's ndarray ext payload: msgpack (shape, dtype name, C-order bytes)."""
    try:
        shape, dtype_name, raw = msgpack.unpackb(payload, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise CheckpointError(f"{path}: corrupt array record ({e})") from None
    if isinstance(dtype_name, bytes):
        dtype_name = dtype_name.decode("ascii", "replace")
    if (not isinstance(shape, (list, tuple)) or len(shape) > 64
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**62 for d in shape)
            or dtype_name not in _FLAX_DTYPES or not isinstance(raw, bytes)):
        raise CheckpointError(f"{path}: array record has shape {shape!r:.100} and dtype "
                              f"{dtype_name!r:.40}; expected a shape and one of {sorted(_FLAX_DTYPES)}")
    dtype = _FLAX_DTYPES[dtype_name]
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise CheckpointError(f"{path}: array record of shape {list(shape)} {dtype_name} holds "
                              f"{len(raw)} bytes, not {math.prod(shape) * dtype.itemsize}")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)  # [n] -> shape, a view of the bytes
    if dtype_name == "bfloat16":
        array = (array.astype("<u4") << 16).view("<f4")  # HF casts bf16 Flax weights to float32
    return array


def read_flax_msgpack(path):
    """Read a `flax_model.msgpack` (HF Flax*.save_pretrained) as a PyTorch-named state dict.

    Nested dicts are joined with '.'; kernel -> weight transposed ([in, out] -> [out, in]);
    embedding and scale -> weight (4.57.6 load_flax_weights_in_pytorch_model).
    """
    try:
        import msgpack
    except ImportError:
        raise ImportError(f"reading {path} (a Flax checkpoint) needs msgpack: pip install msgpack "
                          f"(or convert it to model.safetensors)") from None
    path = os.fspath(path)
    if os.path.getsize(path) > MAX_MSGPACK_BYTES:
        raise CheckpointError(f"{path}: larger than {MAX_MSGPACK_BYTES} bytes; convert it first")
    with open(path, "rb") as f:
        data = f.read()

    def ext_hook(code, payload):
        if code == 1:  # ndarray
            return _flax_array(msgpack, payload, path)
        if code == 3:  # numpy scalar, same payload as an ndarray
            return _flax_array(msgpack, payload, path)
        raise CheckpointError(f"{path}: unsupported msgpack extension type {code}")

    try:
        tree = msgpack.unpackb(data, ext_hook=ext_hook, raw=False, strict_map_key=False)
    except CheckpointError:
        raise
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as e:
        raise CheckpointError(f"{path}: not a valid msgpack file ({type(e).__name__}: "
                              f"{str(e)[:200]})") from None
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path}: expected a nested map of parameters, got {type(tree).__name__}")

    state = {}

    def walk(node, prefix):
        if isinstance(node, dict) and node.get("__msgpack_chunked_array__") is True:
            node = _flax_unchunk(node, prefix, path)
        if isinstance(node, np.ndarray):
            parts = prefix.split(".")
            if parts[-1] == "kernel":
                if node.ndim != 2:
                    raise CheckpointError(f"{path}: kernel {prefix!r} has {node.ndim} dimensions; "
                                          f"only dense kernels are supported")
                parts[-1], node = "weight", np.ascontiguousarray(node.T)  # [in, out] -> [out, in]
            elif parts[-1] in ("embedding", "scale"):
                parts[-1] = "weight"
            state[".".join(parts)] = node
            return
        if not isinstance(node, dict):
            raise CheckpointError(f"{path}: {prefix or 'the root'} is a {type(node).__name__}, "
                                  f"not an array or a map")
        for k, v in node.items():
            if not isinstance(k, str) or not k or "." in k:
                raise CheckpointError(f"{path}: key {k!r:.80} under {prefix or 'the root'} is not "
                                      f"a parameter name")
            walk(v, f"{prefix}.{k}" if prefix else k)

    walk(tree, "")
    return state


def _flax_unchunk(node, where, path):
    """flax splits arrays over 2**30 bytes into {'shape': {'0': d0, ..}, 'chunks': {'0': a0, ..}}."""
    shape, chunks = node.get("shape"), node.get("chunks")
    if not isinstance(shape, dict) or not isinstance(chunks, dict):
        raise CheckpointError(f"{path}: chunked array {where!r} lacks its shape or chunks")
    try:
        dims = [shape[str(i)] for i in range(len(shape))]
        parts = [chunks[str(i)] for i in range(len(chunks))]
    except KeyError:
        raise CheckpointError(f"{path}: chunked array {where!r} has non-consecutive keys") from None
    if (not all(isinstance(d, int) and 0 <= d < 2**62 for d in dims)
            or not all(isinstance(p, np.ndarray) and p.ndim == 1 for p in parts)
            or len({p.dtype for p in parts}) > 1
            or sum(p.size for p in parts) != math.prod(dims)):
        raise CheckpointError(f"{path}: chunked array {where!r} does not add up to shape {dims}")
    return np.concatenate(parts).reshape(dims)  # chunks of the flat array -> shape


# ---- Locating a model: local directory, Hugging Face cache, download ------------------------------

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")
_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.bin", "*.h5", "*.msgpack", "*.model", "*.txt"]


def hf_cache_dir():
    """The hub cache folder, as huggingface_hub decides it."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def _offline():
    return any(os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _from_cache(repo_id, revision, cache):
    """The snapshot folder of `repo_id` at `revision` (a ref name or a commit hash), or None."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    if not repo.is_dir():
        return None
    commit = revision
    ref = repo / "refs" / revision
    if re.fullmatch(r"[\w.\-]+", revision) and ref.is_file():
        commit = ref.read_text(encoding="utf-8", errors="replace").strip()
    if not re.fullmatch(r"[0-9a-fA-F]{7,64}", commit or ""):
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def resolve_model_dir(name_or_path, revision="main"):
    """A local model directory for `name_or_path`.

    In order: an existing local directory; a hub id (e.g. 'FacebookAI/xlm-roberta-base') already
    in the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub:
    models--org--name/refs/<revision> -> snapshots/<commit>/); a download with
    huggingface_hub.snapshot_download when that package is installed and HF_HUB_OFFLINE is unset.
    """
    path = Path(os.fspath(name_or_path)).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: is a file; pass the model directory that contains it")
    name = os.fspath(name_or_path)
    if not _HUB_ID.match(name) or ".." in name:
        raise CheckpointError(f"{name!r}: no such directory, and not a Hugging Face hub id "
                              f"('org/name')")
    cache = hf_cache_dir()
    snapshot = _from_cache(name, revision, cache)
    if snapshot is not None:
        return snapshot
    looked = (f"{name!r} is not a local directory and is not in the Hugging Face cache "
              f"({cache / ('models--' + name.replace('/', '--'))}, revision {revision!r})")
    if _offline():
        raise CheckpointError(f"{looked}; HF_HUB_OFFLINE is set, so nothing is downloaded. "
                              f"Download it where the network is reachable, or pass a local path.")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(f"{looked}; install huggingface_hub to download it "
                              f"(pip install huggingface_hub), or pass a local path.") from None
    try:
        return Path(snapshot_download(repo_id=name, revision=revision, cache_dir=cache,
                                      allow_patterns=_ALLOW_PATTERNS))
    except Exception as e:  # network, auth, missing repo: huggingface_hub has many error types
        raise CheckpointError(f"{looked}, and downloading it failed: {type(e).__name__}: {e}") from e
