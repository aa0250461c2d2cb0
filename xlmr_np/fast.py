"""Faster equivalents of ops.py primitives for float32 NumPy arrays: the same formulas, fewer passes over memory.

NumPy evaluates `0.5 * x * (1 + erf(x / sqrt 2))` as some thirty separate passes, each over the whole
[B, T, F] activation (12 MB at batch 8 x 128 tokens, far larger than the caches), on one core, while the
GEMMs around it use every core. Here the same arithmetic runs
- on blocks of 64 K elements, so that the ~thirty passes read and write the caches, not DRAM;
- with `out=` into the block's own buffers, so no full-size temporaries are allocated;
- on several threads, one contiguous share of the rows each (NumPy releases the GIL inside ufunc loops).
Softmax and LayerNorm work row by row, so they are only shared between threads, each row computed as before.
float64 arrays, and CuPy (which has its own erf and parallel kernels), take the plain ops.py path. The numbers agree
with ops.gelu to float32 rounding (it rounds once where ops.gelu rounds after each step); tests/test_fast_paths.py
checks both against float64.

Threads: XLMR_NP_NUM_THREADS, else OMP_NUM_THREADS / OPENBLAS_NUM_THREADS (the BLAS's own setting), else the
number of CPUs this process may run on.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import ops
from .backend import array_module, native_erf

# Elements per block. Each NumPy call costs ~1 us of interpreter time, held under the GIL, so threads contend
# for the GIL when blocks are small; 64 K (512 KB per float64 buffer, L2/L3-resident) measured best on 2 cores.
BLOCK_ELEMENTS = 65536
_pool: ThreadPoolExecutor | None = None


def num_threads() -> int:
    for name in ("XLMR_NP_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parallel_rows(fn, rows: int, threads: int | None = None):
    """Call fn(start, stop) on `threads` contiguous shares of range(rows), concurrently; return when all are done."""
    global _pool
    threads = min(threads or num_threads(), rows)
    if threads <= 1:
        fn(0, rows)
        return
    if _pool is None or _pool._max_workers < threads - 1:
        _pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="xlmr_np")
    bounds = [rows * i // threads for i in range(threads + 1)]
    futures = [_pool.submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
    fn(bounds[0], bounds[1])  # this thread takes the first share
    for future in futures:
        future.result()  # re-raises a worker's exception here


def gelu(x, out=None):
    """ops.gelu (the exact erf GELU) for float32 arrays on the CPU, blocked and threaded; `out` may be x itself."""
    xp = array_module(x)
    if native_erf(xp) is not None or x.dtype != xp.float32 or not x.flags.c_contiguous:
        result = ops.gelu(x)
        if out is None:
            return result
        out[...] = result
        return out
    out = xp.empty_like(x) if out is None else out
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)  # views: both are C-contiguous
    blocks = -(-flat_x.size // BLOCK_ELEMENTS)

    def run(first, last):
        u, t, num, den = xp.empty((4, BLOCK_ELEMENTS), dtype=xp.float64)  # this thread's float64 scratch
        for start in range(first * BLOCK_ELEMENTS, min(last * BLOCK_ELEMENTS, flat_x.size), BLOCK_ELEMENTS):
            x_block = flat_x[start:start + BLOCK_ELEMENTS]
            n = x_block.size
            u_, t_, num_, den_ = u[:n], t[:n], num[:n], den[:n]
            xp.clip(x_block, -_PHI_CLIP, _PHI_CLIP, out=u_)  # widened to float64
            xp.multiply(u_, u_, out=t_)
            _horner(_PHI_P, t_, num_)
            _horner(_PHI_Q, t_, den_)
            num_ /= den_
            num_ *= u_
            num_ += 0.5  # Phi(x) = 1/2 + x P(x^2) / Q(x^2)
            xp.multiply(x_block, num_, out=flat_out[start:start + n], casting="same_kind")

    parallel_rows(run, blocks)
    return out


# Phi(x) = (1 + erf(x / sqrt 2)) / 2 = 1/2 + x P(x^2) / Q(x^2): ops.erf's rational function with x / sqrt 2
# substituted and the 1/2 folded in (P_k / (2 sqrt 2 2^k), Q_k / 2^k). The same function, so the same error.
_PHI_P = tuple(c / (2 * math.sqrt(2.0) * 2.0 ** k) for k, c in enumerate(ops._ERF_P))
_PHI_Q = tuple(c / 2.0 ** k for k, c in enumerate(ops._ERF_Q))
_PHI_CLIP = ops._ERF_CLIP * math.sqrt(2.0)


def _horner(coefficients, t, out):
    """out = c0 + c1 t + c2 t^2 + ..., evaluated from the highest power down, in place in `out`."""
    array_module(t).multiply(t, coefficients[-1], out=out)
    for c in coefficients[-2:0:-1]:
        out += c
        out *= t
    out += coefficients[0]


def _rowwise(plain, x, out, *args):
    """plain(rows, *args, out=rows_out) on threads' shares of x's rows (last axis = one row); returns out.

    Each row is computed exactly as in one call of `plain` on the whole array, so the bits are the same.
    """
    xp = array_module(x)
    out = xp.empty_like(x) if out is None else out
    if xp is not np or not (x.flags.c_contiguous and out.flags.c_contiguous) or x.size < 4 * BLOCK_ELEMENTS:
        return plain(x, *args, out=out)
    rows, rows_out = x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])  # [..., D] -> [N, D], views
    parallel_rows(lambda first, last: plain(rows[first:last], *args, out=rows_out[first:last]), rows.shape[0])
    return out


def softmax(x, out=None):
    """ops.softmax over the last axis, with the rows shared between threads; `out` may be x itself."""
    return _rowwise(lambda rows, out: ops.softmax(rows, axis=-1, out=out), x, out)


def layer_norm(x, weight, bias, eps, out=None):
    """ops.layer_norm, with the rows shared between threads; `out` may be x itself."""
    return _rowwise(ops.layer_norm, x, out, weight, bias, eps)


def take_rows(matrix, ids):
    """matrix[ids] for a [V, D] matrix and integer ids [...]: the rows, as a new [..., D] array.

    When the matrix is a C-contiguous view of a NumPy memory map (a safetensors file), the rows are read from
    the file with pread instead of through the mapping. The result is the same; the difference is memory:
    Linux maps a file's page cache in folios of up to 2 MB, all at once on the first touch, so gathering
    1,024 random rows of xlm-roberta-base's 768 MB embedding through the mapping makes ~360 MB resident
    in this process, while pread copies just the 3 KB rows (docs/performance.md).
    """
    mapped, base = None, matrix
    while isinstance(base, np.ndarray):  # the root memmap: the one whose .offset is where its data starts
        mapped = base if isinstance(base, np.memmap) else mapped
        base = base.base
    if (mapped is None or not isinstance(matrix, np.ndarray) or matrix.ndim != 2 or not matrix.flags.c_contiguous
            or not matrix.dtype.isnative or getattr(mapped, "filename", None) is None):
        return matrix[ids]  # [...] -> [..., D]
    ids = np.asarray(ids)
    if ids.size and (ids.min() < -matrix.shape[0] or ids.max() >= matrix.shape[0]):
        return matrix[ids]  # raises NumPy's IndexError for the out-of-range id
    unique, inverse = np.unique(ids % matrix.shape[0], return_inverse=True)  # each distinct row read once
    rows = np.empty((unique.size, matrix.shape[1]), dtype=matrix.dtype)  # [U, D]
    start = mapped.offset + (matrix.ctypes.data - mapped.ctypes.data)  # file offset of row 0
    fd = os.open(mapped.filename, os.O_RDONLY)
    try:
        for i, row in enumerate(unique.tolist()):
            if os.preadv(fd, [rows[i]], start + row * matrix.strides[0]) != matrix.strides[0]:
                raise OSError(f"{mapped.filename}: short read; was the file changed while in use?")
    finally:
        os.close(fd)
    return rows[inverse.reshape(ids.shape)]  # [U, D] -> [..., D]


def activation(name: str):
    """ops.activation(name), with the exact GELU replaced by the blocked one above."""
    plain = ops.activation(name)
    return gelu if plain is ops.gelu else plain
