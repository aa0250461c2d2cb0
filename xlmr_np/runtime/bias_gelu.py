"""The FFN's first half with its bias added inside the activation's block loop: a stand-in for core.model.ffn_inner.

core.model.ffn_inner runs `linear` (the GEMM, then `y += bias`: one more pass over the whole [M, F] product,
12 MB at 8 x 128 tokens for xlm-roberta-base) and then the activation (for the exact GELU, runtime/gelu.py's
blocked GELU: ~28 passes over each 64 K-element block). Here the GEMM writes its product without the bias
(matmul(out=) into a buffer the caller may reuse), and then, for each block of rows that fits the caches
(BLOCK_ELEMENTS elements, as runtime/gelu.py's blocks), the bias is added and the activation runs on that
block while it is in the cache: one pass over memory fewer, no temporary.

The same operations in the same order on every element (the GEMM, + bias, the activation, which is
elementwise), so the result equals core.model.ffn_inner with the same kernel set bit for bit
(tests/test_fused_sublayers.py). With the blocked GELU (float32, the fast kernel set) the float64 scratch of
gelu.gelu_block is allocated once per call; any other activation (float64's Cody erf, "relu", ...) is called
on each row block.

Used by runtime/threaded_encoder.py (each thread's rows of the FFN) and runtime/packed_encoder.py, for NumPy
arrays; other arrays (CuPy) take core.model.ffn_inner (`applies`).
Measured on 2 busy cores (docs/performance.md, "Issue 17"): the same time as the bias pass followed by the
blocked GELU, within the noise (the saved pass is ~1/29 of the work); kept because it costs nothing and
needs no [M, F] temporary.

Shape legend: M rows (tokens), D hidden, F intermediate, r rows in one block.
"""
from __future__ import annotations

import numpy as np

from ..core import model
from .gelu import BLOCK_ELEMENTS, applies_blocked, gelu_block, gelu_in_place
from .residual_norm import product_without_bias  # the one GEMM without bias of both fused sub-layers


def applies(p, cfg, h, kernels=None) -> bool:
    """Whether `ffn_inner_in_blocks` below serves: NumPy arrays (a memory-mapped weight is one too)."""
    return type(h) is np.ndarray and isinstance(p["in.weight"], np.ndarray)


def ffn_inner_in_blocks(p, cfg, h, kernels=None, out=None):
    """act(h W_in^T + b_in): core.model.ffn_inner's result [..., F] for h [..., D]; `out` an [M, F] buffer or None."""
    if not applies(p, cfg, h, kernels):
        return model.ffn_inner(p, cfg, h, kernels)
    weight, bias = p["in.weight"], p["in.bias"]
    rows = h.reshape(-1, h.shape[-1])  # [..., D] -> [M, D]
    out = np.empty((rows.shape[0], weight.shape[0]), dtype=np.result_type(rows, weight)) if out is None else out
    product_without_bias(rows, weight, out)  # [M, D] @ [D, F] -> [M, F]
    act = (kernels or model.REFERENCE).activation(cfg.hidden_act)
    step = max(1, BLOCK_ELEMENTS // max(1, out.shape[1]))  # rows per block
    blocked = act is gelu_in_place and applies_blocked(out)
    scratch = np.empty((4, min(step, out.shape[0]) * out.shape[1]), dtype=np.float64) if blocked else None
    for start in range(0, out.shape[0], step):
        block = out[start:start + step]  # [r, F], C-contiguous
        block += bias  # as core.ops.linear adds it: after the GEMM, in the product's dtype
        if blocked:
            flat = block.reshape(-1)
            gelu_block(flat, flat, scratch)
        else:
            result = act(block)
            if result is not block:
                block[...] = result
    return out.reshape(h.shape[:-1] + (weight.shape[0],))  # [M, F] -> [..., F]
