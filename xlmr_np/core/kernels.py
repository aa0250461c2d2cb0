"""Kernel sets: the few operations of the core that a faster implementation may take over.

The core (model.py, heads.py) is written once, as plain array code. Five of its operations are called through
a `Kernels` object instead of directly, so that xlmr_np.runtime can put a tested stand-in in their place, the
way Hugging Face's modeling code calls `ALL_ATTENTION_FUNCTIONS[config._attn_implementation]` instead of its
eager attention (transformers `modeling_utils.py`, `AttentionInterface`). `core.model.REFERENCE` is the set
made of the core's own functions; passing no kernel set to a core function means that one.

Each field holds a function with exactly the signature and result of the core function named beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Kernels:
    """A named set of implementations of the core's swappable operations."""

    name: str
    gather_rows: Callable  # core.ops.gather_rows(matrix [V, D], ids [...]) -> [..., D]: the embedding lookup
    activation: Callable  # core.ops.activation(hidden_act) -> f(x); f may overwrite x (the core passes temporaries)
    attention: Callable  # core.model.attend(p, cfg, q, k, v, mask, ...) -> (context [B, T, D'], probs | None)
    lm_decoder: Callable  # core.ops.linear(x [..., D], weight [V, D], bias [V]) -> [..., V]: the LM head's decoder
    encoder: Callable  # core.model.encoder(params, cfg, x, mask, ...) -> dict: the stack of layers

    OPERATIONS = ("gather_rows", "activation", "attention", "lm_decoder", "encoder")
