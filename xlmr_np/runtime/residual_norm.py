"""Output projection + bias + residual + LayerNorm in blocks of rows: a stand-in for core.model.residual_norm.

core.model.residual_norm makes each of its steps one pass over the whole [M, D] array: the GEMM, `+= bias`
(core.ops.linear), `+= residual` (core.model.add_norm), and core.ops.layer_norm's mean, subtraction,
square, variance, division, gain and shift: ~10 passes over 3 MB at 8 x 128 tokens for xlm-roberta-base,
each reading and writing memory beyond the L2 cache. Here the GEMM writes its product without the bias into
`out` (matmul(out=), e.g. straight into the rows of the threaded encoder's layer output), and then every
block of ROW_BLOCK_BYTES of rows gets its bias, its residual and its LayerNorm while it is in the cache.

LayerNorm normalises each row on its own and the other steps are elementwise, so every row sees the same
operations in the same order as in core.model.residual_norm: the results are equal bit for bit
(tests/test_fused_sublayers.py), in float32 and float64. Used by runtime/threaded_encoder.py (each thread's
rows, twice per layer) and runtime/packed_encoder.py, for NumPy arrays (`applies`; else the core function).
Measured on 2 busy cores (docs/performance.md, "Issue 17"): no faster than the whole-array passes at a
thread's sizes (<= 3 MB, which the L3 cache holds anyway), and 42-row blocks were slower (more, shorter
NumPy calls), hence 256 KB; kept because the GEMM can write straight into the layer output's rows.

Shape legend: M rows (tokens), D hidden, K the projection's input width (D or F), r rows in one block.
"""
from __future__ import annotations

import numpy as np

from ..core import model
from ..core.ops import layer_norm

ROW_BLOCK_BYTES = 256 * 1024  # 85 rows of 768 float32; 42-row blocks measured slower (more, shorter calls)


def applies(p, cfg, update, residual) -> bool:
    """Whether `residual_norm_in_blocks` below serves: NumPy arrays (a memory-mapped weight is one too)."""
    return type(update) is np.ndarray and type(residual) is np.ndarray and isinstance(p["out.weight"], np.ndarray)


def residual_norm_in_blocks(p, cfg, update, residual, out=None):
    """LayerNorm(update W_out^T + b_out + residual): core.model.residual_norm's result [..., D] for update
    [..., K] and residual [..., D]; `out`, if given, a C-contiguous [M, D] array (it may not be `residual`)."""
    if not applies(p, cfg, update, residual):
        return model.residual_norm(p, cfg, update, residual)
    weight, bias = p["out.weight"], p["out.bias"]
    rows = update.reshape(-1, update.shape[-1])  # [..., K] -> [M, K]
    residual_rows = residual.reshape(-1, residual.shape[-1])  # [..., D] -> [M, D]
    out = np.empty((rows.shape[0], weight.shape[0]), dtype=np.result_type(rows, weight)) if out is None else out
    product_without_bias(rows, weight, out)  # [M, K] @ [K, D] -> [M, D]
    step = max(1, ROW_BLOCK_BYTES // max(1, out.shape[1] * out.itemsize))  # rows per block
    for start in range(0, out.shape[0], step):
        block = out[start:start + step]  # [r, D]
        block += bias  # core.ops.linear's bias
        block += residual_rows[start:start + step]  # core.model.add_norm's residual
        layer_norm(block, p["norm.weight"], p["norm.bias"], cfg.layer_norm_eps, out=block)
    return out.reshape(residual.shape)  # [M, D] -> [..., D]


def product_without_bias(rows, weight, out):
    """rows @ weight^T into out: [M, K] @ [K, D] -> [M, D], the same GEMM call as core.ops.linear's."""
    return np.matmul(rows, weight.T, out=out)
