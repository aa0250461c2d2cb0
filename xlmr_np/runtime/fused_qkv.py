"""Q, K and V as one product: the [3D', D] concatenation of a share of W_q, W_k, W_v, built once and kept.

core.model.attention makes three [M, D] @ [D, D'] products (D' = the heads a caller computes: all of them,
or a thread's share in runtime/threaded_encoder.py), each followed by its own bias pass. `project_qkv` below
makes one [M, D] @ [D, 3D'] product and one bias pass, and q, k, v are views into it: the same sums in the
same order per element (each column of the product is one row of one of the three weights), so the same
numbers as the three products to the GEMM's rounding (OpenBLAS may block a wider product differently).

The cost is memory: the concatenated weight is a copy, 3 * D * D * itemsize bytes per layer for all shares
together (xlm-roberta-base in float32: 7.1 MB per layer, 85 MB for 12 layers, 8 % of the 1.1 GB file, and
resident, where the memory-mapped weights themselves may stay in the page cache). It is built on first use
for each (layer, share) and kept while the model's weight arrays live (a weak reference to each source
array: a model that is freed takes its copies with it). A weight changed IN PLACE after a forward is not
seen by the copy; assign a new array instead (what load_state_dict-like code here does).

Whether it is used: `fuse_qkv()`, from XLMR_NP_FUSED_QKV (1 on, 0 off); off by default: on 2 busy cores the
product alone was 0.88-1.08x as fast as the three, the forward 0.96-1.02x in the quieter runs
(docs/performance.md, "Issue 17"), not worth 85 MB.

Shape legend: M rows, D hidden, D' the share's width (its heads x head dim).
"""
from __future__ import annotations

import os
import threading
import weakref

import numpy as np

DEFAULT = False  # measured: no gain beyond the noise on 2 cores, for 85 MB (docs/performance.md)
_SOURCES = tuple(f"{w}.{kind}" for w in ("query", "key", "value") for kind in ("weight", "bias"))
_CACHE: dict = {}  # (ids of the source arrays, share) -> (weak references to them, weight [3D', D], bias [3D'])
_BUILDING = threading.Lock()


def fuse_qkv() -> bool:
    """XLMR_NP_FUSED_QKV=1 or 0 if set, else DEFAULT."""
    value = os.environ.get("XLMR_NP_FUSED_QKV", "").strip()
    if not value:
        return DEFAULT
    if value not in ("0", "1"):
        raise ValueError(f"XLMR_NP_FUSED_QKV={value!r}: expected 1 (fuse Q, K, V) or 0 (three products)")
    return value == "1"


def weights(p, share: slice):
    """(weight [3D', D], bias [3D']): rows `share` of W_q, W_k, W_v (and their biases) one after another."""
    sources = tuple(p[name] for name in _SOURCES)
    key = (tuple(id(a) for a in sources), share.start, share.stop)
    hit = _CACHE.get(key)
    if hit is not None and all(ref() is a for ref, a in zip(hit[0], sources)):
        return hit[1], hit[2]
    with _BUILDING:
        weight = np.concatenate([p[f"{w}.weight"][share] for w in ("query", "key", "value")])  # [3D', D]
        bias = np.concatenate([p[f"{w}.bias"][share] for w in ("query", "key", "value")])  # [3D']
        _CACHE[key] = (tuple(weakref.ref(a) for a in sources), weight, bias)
        weakref.finalize(sources[0], _CACHE.pop, key, None)  # freed with the model's W_q
    return weight, bias


def project_qkv(x, p, share: slice):
    """(q, k, v), each [B, T, D'] (views of one [M, 3D'] product), for x [B, T, D] and the rows `share`."""
    weight, bias = weights(p, share)
    batch, length, hidden = x.shape
    qkv = np.matmul(x.reshape(-1, hidden), weight.T)  # [M, D] @ [D, 3D'] -> [M, 3D']
    qkv += bias
    width = weight.shape[0] // 3
    qkv = qkv.reshape(batch, length, 3 * width)  # [M, 3D'] -> [B, T, 3D']
    return qkv[..., :width], qkv[..., width:2 * width], qkv[..., 2 * width:]  # 3 x [B, T, D']


def memory_bytes() -> int:
    """The bytes held by the concatenated weights now."""
    return sum(entry[1].nbytes + entry[2].nbytes for entry in list(_CACHE.values()))
