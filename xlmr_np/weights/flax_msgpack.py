"""Read Hugging Face Flax checkpoints (`flax_model.msgpack`) as a PyTorch-named state dict.

Reference behaviour: `flax.serialization.to_bytes` / `msgpack_restore` (a msgpack map of nested
maps; arrays as msgpack extension 1 with payload `(shape, dtype name, C-order bytes)`, 0-d scalars
as extension 3, arrays over 2**30 bytes split into `__msgpack_chunked_array__` chunks) and
transformers 4.57.6 `modeling_flax_pytorch_utils.py` `load_flax_weights_in_pytorch_model` (names
joined with '.', `kernel` -> `weight` transposed, `embedding` and LayerNorm `scale` -> `weight`,
bfloat16 cast to float32). See docs/checkpoint_formats.md ("Flax flax_model.msgpack").

msgpack is optional (the `formats` extra) and imported only when a file is read. The file is data
from a stranger: only extension types 1 and 3, dtypes from a fixed list, byte counts equal to
prod(shape) * itemsize, and keys that are plain names are accepted.
"""

import math
import os

import numpy as np

from ..errors import CheckpointError
from .dtypes import BF16_BITS, widen_bf16

__all__ = ["read_flax_msgpack"]

MAX_MSGPACK_BYTES = 2**34  # read whole into memory; refuse a file that is absurdly large

_FLAX_DTYPES = {name: np.dtype(name).newbyteorder("<") for name in (
    "float64", "float32", "float16", "int64", "int32", "int16", "int8",
    "uint64", "uint32", "uint16", "uint8", "bool")}
_FLAX_DTYPES["bfloat16"] = BF16_BITS  # widened to float32 after reading


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
        array = widen_bf16(array)  # HF casts bf16 Flax weights to float32
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
        if code in (1, 3):  # ndarray, or numpy scalar with the same payload
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
