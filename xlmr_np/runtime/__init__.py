"""Fast paths beside the reference, and the registry of kernel sets that chooses between them.

Each fast path is a stand-in for one named operation of the core (core/kernels.py): it takes the same
arguments and gives the same result to rounding, and a capability check says when it can serve; otherwise
the core function runs. That is how Hugging Face chooses an attention implementation (`eager`, `sdpa`, ...)
and falls back to eager where the faster one cannot serve.

    stand-in                                   for the core operation     serves when
    mapped_weights.take_rows                   gather_rows (word[ids])     the table is a memory-mapped file
    gelu.activation                            activation                  the exact GELU (float32 NumPy:
                                                                           blocked; else core.ops.gelu)
    blocked_attention.attend_in_blocks         attention (model.attend)    the scores exceed 16 MB
    mapped_weights.linear_from_file            lm_decoder (ops.linear)     a memory-mapped weight, >= 64 rows
    threaded_encoder.encoder                   encoder (model.encoder)     >= 128 tokens, no cache to continue

Inside the threaded and packed encoders (not kernel-set operations: those encoders call them directly, and each
falls back to the core function for arrays other than NumPy's):

    stand-in                                   for the core function       serves when
    bias_gelu.ffn_inner_in_blocks              model.ffn_inner             NumPy arrays (bias + activation
                                                                           per cache-sized block of rows)
    residual_norm.residual_norm_in_blocks      model.residual_norm         NumPy arrays (bias + residual +
                                                                           LayerNorm per 256 KB of rows)
    fused_qkv.project_qkv                      the three linear()s of      XLMR_NP_FUSED_QKV=1 (opt-in: a
                                               model.attention             3 D^2 copy per layer, 85 MB for
                                                                           xlm-roberta-base)

Kernel sets: "reference" (the core alone) and "fast" (every stand-in above, the default). A model picks one
with from_pretrained(..., kernels="reference"), a process with XLMR_NP_KERNELS=reference. A new backend is
one more `register` call plus a green run of tests/test_kernel_conformance.py, which runs every golden case
on every registered set.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from ..core.kernels import Kernels
from ..core.model import REFERENCE
from . import blocked_attention, gelu, mapped_weights, threaded_encoder

ENVIRONMENT_VARIABLE = "XLMR_NP_KERNELS"
DEFAULT = "fast"


@dataclass(frozen=True)
class StandIn:
    """A faster implementation of one core operation, used wherever `applies(*arguments)` is true."""

    reference: Callable  # the core function it stands in for, and falls back to
    fast: Callable  # the same arguments and result
    applies: Callable  # the capability check, given the same arguments

    def __call__(self, *args, **kwargs):
        if self.applies(*args, **kwargs):
            return self.fast(*args, **kwargs)
        return self.reference(*args, **kwargs)


FAST = Kernels(
    name="fast",
    gather_rows=StandIn(REFERENCE.gather_rows, mapped_weights.take_rows, mapped_weights.rows_in_file),
    activation=StandIn(REFERENCE.activation, gelu.activation, gelu.is_exact_gelu),
    attention=StandIn(REFERENCE.attention, blocked_attention.attend_in_blocks, blocked_attention.applies),
    lm_decoder=StandIn(REFERENCE.lm_decoder, mapped_weights.linear_from_file, mapped_weights.decoder_in_file),
    encoder=StandIn(REFERENCE.encoder, threaded_encoder.encoder, threaded_encoder.applies),
)

KERNEL_SETS: dict = {}


def register(kernels: Kernels) -> None:
    """Make a kernel set selectable by its name (kernels="name" or XLMR_NP_KERNELS=name)."""
    missing = [name for name in Kernels.OPERATIONS if not callable(getattr(kernels, name, None))]
    if missing:
        raise ValueError(f"kernel set {kernels.name!r} lacks the operation(s) {missing}")
    KERNEL_SETS[kernels.name] = kernels


register(REFERENCE)
register(FAST)


def kernel_set(choice=None) -> Kernels:
    """The kernel set named `choice` (or given as a Kernels object); None: $XLMR_NP_KERNELS, else "fast"."""
    if isinstance(choice, Kernels):
        return choice
    where = "kernels="
    if choice is None:
        choice, where = os.environ.get(ENVIRONMENT_VARIABLE, "").strip() or DEFAULT, f"{ENVIRONMENT_VARIABLE}="
    if choice not in KERNEL_SETS:
        raise ValueError(f"{where}{choice!r} is not a kernel set; choose one of {sorted(KERNEL_SETS)}")
    return KERNEL_SETS[choice]
