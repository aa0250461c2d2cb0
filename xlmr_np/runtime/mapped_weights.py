"""Weights read from the memory-mapped file a piece at a time, so that large matrices do not become resident.

Two stand-ins, both for NumPy memory maps of a file (a safetensors tensor); anything else takes the core code:
- take_rows for core.ops.gather_rows (the embedding lookup): rows read with pread;
- linear_from_file for core.ops.linear as the LM decoder: the [V, D] weight mapped one window at a time.
Why and what it costs: docs/performance.md.
"""
from __future__ import annotations

import mmap
import os

import numpy as np

from ..backend import array_module
from ..core.ops import linear

# The attribute of a np.memmap that holds the open file it was mapped from (xlmr_np.weights sets it).
SOURCE_FILE = "source_file"


def rows_in_file(matrix, ids) -> bool:
    """take_rows' capability check: the table is a view into a memory-mapped file."""
    return _file_region(matrix) is not None


def take_rows(matrix, ids):
    """Stand-in for core.ops.gather_rows: matrix[ids] for a [V, D] matrix and integer ids [...] -> [..., D].

    When the matrix is a C-contiguous view of a NumPy memory map (a safetensors file), the rows are read from
    the file with pread instead of through the mapping. The result is the same; the difference is memory:
    Linux maps a file's page cache in folios of up to 2 MB, all at once on the first touch, so gathering
    1,024 random rows of xlm-roberta-base's 768 MB embedding through the mapping makes ~360 MB resident
    in this process, while pread copies just the 3 KB rows (docs/performance.md).
    """
    ids = np.asarray(ids)
    if ids.size and (ids.min() < -matrix.shape[0] or ids.max() >= matrix.shape[0]):
        return matrix[ids]  # raises NumPy's IndexError for the out-of-range id
    unique, inverse = np.unique(ids % matrix.shape[0], return_inverse=True)  # each distinct row read once
    rows = np.empty((unique.size, matrix.shape[1]), dtype=matrix.dtype)  # [U, D]
    source, start = _file_region(matrix)
    for i, row in enumerate(unique.tolist()):
        _read_exactly(source, rows[i], start + row * matrix.strides[0])
    return rows[inverse.reshape(ids.shape)]  # [U, D] -> [..., D]


# linear_from_file maps this many bytes of the weight at a time (5,461 rows of 768 float32), from this many rows
# of x on: for fewer rows the product is bound by reading the weight, and one lasting mapping is faster.
WINDOW_BYTES = 16 * 2**20
WINDOW_MIN_ROWS = 64


def decoder_in_file(x, weight, bias=None) -> bool:
    """linear_from_file's capability check: a mapped weight, NumPy x of its dtype, at least WINDOW_MIN_ROWS rows."""
    rows = x.size // x.shape[-1] if x.shape[-1] else 0
    return (array_module(x) is np and x.dtype == weight.dtype and rows >= WINDOW_MIN_ROWS
            and _file_region(weight) is not None)


def linear_from_file(x, weight, bias=None):
    """Stand-in for core.ops.linear as the LM decoder, for a weight memory-mapped from a file: [..., D] -> [..., V].

    Meant for the masked-LM decoder, whose [V, D] weight is the 768 MB word-embedding matrix. Multiplied
    through the model's lasting memory map, all of it becomes resident in this process, on top of the [..., V]
    logits. Here each WINDOW_BYTES block of rows is mapped on its own and unmapped after its product, so the
    matrix stays in the page cache only (peak RSS of an 8 x 128 masked-LM forward 2.0x -> 1.3x the file,
    docs/performance.md). Mapping anew costs page faults: +35 ms for one row, +140 ms (6 %) for 1,024 rows
    on xlm-roberta-base, so fewer than WINDOW_MIN_ROWS rows (a fill-mask call) take core.ops.linear. Each block
    gives its own columns of the result with the same dot products as one big GEMM.
    """
    rows = x.reshape(-1, x.shape[-1])  # [..., D] -> [N, D]
    source, start = _file_region(weight)
    vocab, hidden = weight.shape
    out = np.empty((rows.shape[0], vocab), dtype=x.dtype)  # [N, V]
    block = max(1, WINDOW_BYTES // weight.strides[0])
    for first in range(0, vocab, block):
        count = min(block, vocab - first)
        offset = start + first * weight.strides[0]
        aligned = offset - offset % mmap.ALLOCATIONGRANULARITY  # mappings start on a page boundary
        length = offset - aligned + count * weight.strides[0]
        try:
            window = mmap.mmap(source.fileno(), length, access=mmap.ACCESS_READ, offset=aligned)
        except ValueError as error:  # the file is shorter than when it was loaded
            raise OSError(f"{source.name}: cannot map rows {first}-{first + count} ({error}); "
                          "was the file truncated while in use?") from None
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
    """(the open file, byte offset of row 0) when `matrix` is a C-contiguous 2-D view into a NumPy memory map
    that carries the file it was mapped from (SOURCE_FILE, set by the safetensors reader), else None.

    Reading through that open file, never by its name, keeps a loaded model on the bytes it loaded: a
    checkpoint rewritten (a new file under the same name) or deleted meanwhile changes nothing.
    """
    mapped, base = None, matrix
    while isinstance(base, np.ndarray):  # the root memmap: the one whose .offset is where its data starts
        mapped = base if isinstance(base, np.memmap) else mapped
        base = base.base
    if (mapped is None or not isinstance(matrix, np.ndarray) or matrix.ndim != 2 or not matrix.flags.c_contiguous
            or not matrix.dtype.isnative or getattr(mapped, SOURCE_FILE, None) is None):
        return None
    return getattr(mapped, SOURCE_FILE), mapped.offset + (matrix.ctypes.data - mapped.ctypes.data)


def _read_exactly(source, destination, offset):
    """Fill the C-contiguous array `destination` with the file's bytes at `offset` (pread, no mapping)."""
    view, done = memoryview(destination).cast("B"), 0
    while done < len(view):
        count = os.preadv(source.fileno(), [view[done:]], offset + done)
        if count <= 0:
            raise OSError(f"{source.name}: short read; was the file truncated while in use?")
        done += count
