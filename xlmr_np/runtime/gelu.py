"""The exact GELU in cache-sized blocks: a stand-in for core.ops.gelu on float32 NumPy arrays.

NumPy evaluates `0.5 * x * (1 + erf(x / sqrt 2))` as some thirty separate passes, each over the whole
[B, T, F] activation (12 MB at batch 8 x 128 tokens, far larger than the caches). `gelu` below runs the same
rational function as ops.erf
- on blocks of 64 K elements, so that the ~thirty passes read and write the caches, not DRAM;
- with `out=` into four float64 buffers allocated once, so no full-size temporaries are made;
- for Phi(x) = (1 + erf(x / sqrt 2)) / 2 directly, with the 1/sqrt 2 and 1/2 folded into the coefficients.
It is ~3x faster than ops.gelu (19 ms instead of 62 ms for [1024, 3072] on one core) and rounds once where
ops.gelu rounds after each float32 step.
float64 arrays, and CuPy (which has its own erf), take the plain core.ops path. tests/test_fast_paths.py checks
both against float64 math.erf.

Not done here: splitting the blocks between threads next to OpenBLAS's own threads gained nothing inside the
forward pass (after each GEMM OpenBLAS's idle workers spin for ~0.1 s on the other cores).
threaded_encoder.py instead runs the whole encoder on several threads, each with a one-threaded BLAS, and
calls gelu on each thread's share.
"""
from __future__ import annotations

import math

from ..backend import array_module, native_erf
from ..core import ops

BLOCK_ELEMENTS = 65536  # per block: 4 float64 buffers of 512 KB; fewer, larger NumPy calls than 32 K measured best


def gelu(x, out=None):
    """ops.gelu (the exact erf GELU) for float32 arrays on the CPU, in cache-sized blocks; `out` may be x itself."""
    xp = array_module(x)
    if not applies_blocked(x):
        result = ops.gelu(x)
        if out is None:
            return result
        out[...] = result
        return out
    out = xp.empty_like(x) if out is None else out
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)  # views: both are C-contiguous
    size = max(1, min(BLOCK_ELEMENTS, flat_x.size))
    scratch = xp.empty((4, size), dtype=xp.float64)  # float64 scratch, reused by every block
    for start in range(0, flat_x.size, size):
        gelu_block(flat_x[start:start + size], flat_out[start:start + size], scratch)
    return out


def gelu_block(x_block, out_block, scratch):
    """gelu of one flat float32 block into out_block (which may be x_block), with float64 `scratch` [4, >= n]."""
    xp = array_module(x_block)
    n = x_block.size  # the last block may be shorter than the scratch
    u, t, num, den = scratch[0, :n], scratch[1, :n], scratch[2, :n], scratch[3, :n]
    xp.clip(x_block, -_PHI_CLIP, _PHI_CLIP, out=u)  # widened to float64
    xp.multiply(u, u, out=t)
    _horner(_PHI_P, t, num)
    _horner(_PHI_Q, t, den)
    num /= den
    num *= u
    num += 0.5  # Phi(x) = 1/2 + x P(x^2) / Q(x^2)
    xp.multiply(x_block, num, out=out_block, casting="same_kind")


def applies_blocked(x) -> bool:
    """Whether `gelu` runs in blocks for x (float32, C-contiguous, a backend without its own erf)."""
    xp = array_module(x)
    return native_erf(xp) is None and x.dtype == xp.float32 and x.flags.c_contiguous


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


def gelu_in_place(x):
    """gelu(x), overwriting x: what the kernel set uses (the core passes only temporaries to activations)."""
    return gelu(x, out=x)


def is_exact_gelu(name: str) -> bool:
    """activation's capability check: `name` means the exact erf GELU ("gelu", "gelu_python")."""
    return ops.activation(name) is ops.gelu


def activation(name: str):
    """Stand-in for core.ops.activation(name) where is_exact_gelu(name): the blocked GELU, in place."""
    return gelu_in_place
