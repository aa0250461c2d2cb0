"""Faster equivalents of ops.py primitives for float32 NumPy arrays: the same formulas, fewer passes over memory.

NumPy evaluates `0.5 * x * (1 + erf(x / sqrt 2))` as some thirty separate passes, each over the whole
[B, T, F] activation (12 MB at batch 8 x 128 tokens, far larger than the caches). `gelu` below runs the same
rational function as ops.erf
- on blocks of 64 K elements, so that the ~thirty passes read and write the caches, not DRAM;
- with `out=` into four float64 buffers allocated once, so no full-size temporaries are made;
- for Phi(x) = (1 + erf(x / sqrt 2)) / 2 directly, with the 1/sqrt 2 and 1/2 folded into the coefficients.
It is ~3x faster than ops.gelu (19 ms instead of 62 ms for [1024, 3072] on one core) and rounds once where
ops.gelu rounds after each float32 step.
float64 arrays, and CuPy (which has its own erf), take the plain ops.py path. tests/test_fast_paths.py checks
both against float64 math.erf.

Not done here: splitting the blocks between threads next to OpenBLAS's own threads gained nothing inside the
forward pass (after each GEMM OpenBLAS's idle workers spin for ~0.1 s on the other cores). parallel.py instead
runs the whole encoder on several threads, each with a one-threaded BLAS, and calls gelu on each thread's share.

Also here: take_rows reads rows of a memory-mapped weight with pread, and linear_from_file maps the weight a
block at a time, so that a 768 MB embedding matrix does not become resident in the process
(docs/performance.md).
"""
from __future__ import annotations

import math
import mmap
import os

import numpy as np

from . import ops
from .backend import array_module, native_erf

BLOCK_ELEMENTS = 65536  # per block: 4 float64 buffers of 512 KB; fewer, larger NumPy calls than 32 K measured best


def gelu(x, out=None):
    """ops.gelu (the exact erf GELU) for float32 arrays on the CPU, in cache-sized blocks; `out` may be x itself."""
    xp = array_module(x)
    if native_erf(xp) is not None or x.dtype != xp.float32 or not x.flags.c_contiguous:
        result = ops.gelu(x)
        if out is None:
            return result
        out[...] = result
        return out
    out = xp.empty_like(x) if out is None else out
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)  # views: both are C-contiguous
    size = max(1, min(BLOCK_ELEMENTS, flat_x.size))
    u, t, num, den = xp.empty((4, size), dtype=xp.float64)  # float64 scratch, reused by every block
    for start in range(0, flat_x.size, size):
        x_block = flat_x[start:start + size]
        n = x_block.size  # the last block may be shorter
        u_, t_, num_, den_ = u[:n], t[:n], num[:n], den[:n]
        xp.clip(x_block, -_PHI_CLIP, _PHI_CLIP, out=u_)  # widened to float64
        xp.multiply(u_, u_, out=t_)
        _horner(_PHI_P, t_, num_)
        _horner(_PHI_Q, t_, den_)
        num_ /= den_
        num_ *= u_
        num_ += 0.5  # Phi(x) = 1/2 + x P(x^2) / Q(x^2)
        xp.multiply(x_block, num_, out=flat_out[start:start + n], casting="same_kind")
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


def take_rows(matrix, ids):
    """matrix[ids] for a [V, D] matrix and integer ids [...]: the rows, as a new [..., D] array.

    When the matrix is a C-contiguous view of a NumPy memory map (a safetensors file), the rows are read from
    the file with pread instead of through the mapping. The result is the same; the difference is memory:
    Linux maps a file's page cache in folios of up to 2 MB, all at once on the first touch, so gathering
    1,024 random rows of xlm-roberta-base's 768 MB embedding through the mapping makes ~360 MB resident
    in this process, while pread copies just the 3 KB rows (docs/performance.md).
    """
    region = _file_region(matrix)
    if region is None:
        return matrix[ids]  # [...] -> [..., D]
    ids = np.asarray(ids)
    if ids.size and (ids.min() < -matrix.shape[0] or ids.max() >= matrix.shape[0]):
        return matrix[ids]  # raises NumPy's IndexError for the out-of-range id
    unique, inverse = np.unique(ids % matrix.shape[0], return_inverse=True)  # each distinct row read once
    rows = np.empty((unique.size, matrix.shape[1]), dtype=matrix.dtype)  # [U, D]
    filename, start = region
    fd = os.open(filename, os.O_RDONLY)
    try:
        for i, row in enumerate(unique.tolist()):
            _read_exactly(fd, rows[i], start + row * matrix.strides[0], filename)
    finally:
        os.close(fd)
    return rows[inverse.reshape(ids.shape)]  # [U, D] -> [..., D]


# linear_from_file maps this many bytes of the weight at a time (5,461 rows of 768 float32), from this many rows
# of x on: for fewer rows the product is bound by reading the weight, and one lasting mapping is faster.
WINDOW_BYTES = 16 * 2**20
WINDOW_MIN_ROWS = 64


def linear_from_file(x, weight, bias=None):
    """ops.linear(x, weight, bias) for a weight memory-mapped from a file: [..., D] -> [..., V].

    Meant for the masked-LM decoder, whose [V, D] weight is the 768 MB word-embedding matrix. Multiplied
    through the model's lasting memory map, all of it becomes resident in this process, on top of the [..., V]
    logits. Here each WINDOW_BYTES block of rows is mapped on its own and unmapped after its product, so the
    matrix stays in the page cache only (peak RSS of an 8 x 128 masked-LM forward 2.0x -> 1.3x the file,
    docs/performance.md). Mapping anew costs page faults: +35 ms for one row, +140 ms (6 %) for 1,024 rows
    on xlm-roberta-base, so fewer than WINDOW_MIN_ROWS rows (a fill-mask call) take ops.linear. Each block
    gives its own columns of the result with the same dot products as one big GEMM.
    """
    region = _file_region(weight)
    rows = x.reshape(-1, x.shape[-1])  # [..., D] -> [N, D]
    if (region is None or array_module(x) is not np or x.dtype != weight.dtype
            or rows.shape[0] < WINDOW_MIN_ROWS):
        return ops.linear(x, weight, bias)
    filename, start = region
    vocab, hidden = weight.shape
    out = np.empty((rows.shape[0], vocab), dtype=x.dtype)  # [N, V]
    block = max(1, WINDOW_BYTES // weight.strides[0])
    with open(filename, "rb") as file:
        for first in range(0, vocab, block):
            count = min(block, vocab - first)
            offset = start + first * weight.strides[0]
            aligned = offset - offset % mmap.ALLOCATIONGRANULARITY  # mappings start on a page boundary
            length = offset - aligned + count * weight.strides[0]
            try:
                window = mmap.mmap(file.fileno(), length, access=mmap.ACCESS_READ, offset=aligned)
            except ValueError as error:  # the file is shorter than when it was loaded
                raise OSError(f"{filename}: cannot map rows {first}-{first + count} ({error}); "
                              "was the file changed while in use?") from None
            try:
                part = np.frombuffer(window, dtype=weight.dtype, count=count * hidden, offset=offset - aligned)
                np.matmul(rows, part.reshape(count, hidden).T, out=out[:, first:first + count])  # -> [N, count]
                del part  # no view may outlive the mapping
            finally:
                window.close()
    if bias is not None:
        out += bias
    return out.reshape(x.shape[:-1] + (vocab,))  # [N, V] -> [..., V]


def _file_region(matrix):
    """(file name, byte offset of row 0) when `matrix` is a C-contiguous 2-D view into a NumPy memory map of a
    file (a safetensors tensor), else None."""
    mapped, base = None, matrix
    while isinstance(base, np.ndarray):  # the root memmap: the one whose .offset is where its data starts
        mapped = base if isinstance(base, np.memmap) else mapped
        base = base.base
    if (mapped is None or not isinstance(matrix, np.ndarray) or matrix.ndim != 2 or not matrix.flags.c_contiguous
            or not matrix.dtype.isnative or getattr(mapped, "filename", None) is None):
        return None
    return mapped.filename, mapped.offset + (matrix.ctypes.data - mapped.ctypes.data)


def _read_exactly(fd, destination, offset, filename):
    """Fill the C-contiguous array `destination` with the file's bytes at `offset` (pread, no mapping)."""
    view, done = memoryview(destination).cast("B"), 0
    while done < len(view):
        count = os.preadv(fd, [view[done:]], offset + done)
        if count <= 0:
            raise OSError(f"{filename}: short read; was the file changed while in use?")
        done += count


def activation(name: str):
    """ops.activation(name), with the exact GELU replaced by the blocked one above."""
    plain = ops.activation(name)
    return gelu if plain is ops.gelu else plain
