"""Attention in blocks of query rows: a stand-in for core.model.attend whose memory grows linearly in T.

core.model.attend holds the whole [B, H, T, S] scores array: at 8,194 positions that is 3 GB per layer at
batch 1. Here, when the scores would exceed BLOCK_BYTES, they are computed one block of query rows at a time
with the core's own attention_probs; each block gives exactly the rows the whole array would have (softmax
runs along the key axis only). 16 MB blocks also keep softmax's passes in the L3 cache.
Only keep_probs=True (output_attentions) still holds all the probabilities, because they are returned.

Shape legend: B batch, H heads, T queries, S keys, Dh head dim, t rows in one block.
"""
from __future__ import annotations

from ..backend import array_module
from ..core.model import attention_probs

BLOCK_BYTES = 16 * 2**20


def block_rows(cfg, q, k, relative: bool, budget: int = None) -> int:
    """How many query rows keep one block of scores (and its relative-position table) within the budget.

    The budget is for all of the model's heads: a call on a share of them (the threaded encoder's) gets the
    same row count as a call on all, so the threads together stay within the budget.
    """
    batch, _, length, _ = q.shape
    keys = k.shape[2]
    per_row = q.itemsize * keys * (batch * cfg.num_attention_heads + (cfg.head_dim if relative else 0))
    budget = BLOCK_BYTES if budget is None else budget
    blocks = -(-length // max(1, budget // per_row))  # ceil(T / the most rows the budget allows)
    return -(-length // blocks)  # that many blocks of equal size (no small last block)


def applies(p, cfg, q, k, v, mask, head_mask=None, cached=False, relative=False, keep_probs=True) -> bool:
    """Whether the scores are too large for one block."""
    return block_rows(cfg, q, k, relative) < q.shape[2]


def attend_in_blocks(p, cfg, q, k, v, mask, head_mask=None, cached=False, relative=False, keep_probs=True):
    """core.model.attend, block by block of query rows: the same (context [B, T, H*Dh], probs or None)."""
    xp = array_module(q)
    batch, heads, length, head_dim = q.shape
    rows = block_rows(cfg, q, k, relative)
    context = xp.empty((batch, length, heads, head_dim), dtype=q.dtype)  # [B, T, H, Dh]
    all_probs = xp.empty(q.shape[:3] + k.shape[2:3], dtype=q.dtype) if keep_probs else None  # [B, H, T, S]
    for start in range(0, length, rows):
        stop = min(start + rows, length)
        block_mask = mask if mask is None or mask.shape[2] == 1 else mask[:, :, start:stop]  # [B, 1, t|1, S]
        probs = attention_probs(p, cfg, q[:, :, start:stop], k, block_mask, head_mask, cached, relative, start)
        context[:, start:stop] = (probs @ v).transpose(0, 2, 1, 3)  # [B, H, t, S] @ [B, H, S, Dh] -> [B, t, H, Dh]
        if keep_probs:
            all_probs[:, :, start:stop] = probs
    return context.reshape(batch, length, heads * head_dim), all_probs  # [B, T, H, Dh] -> [B, T, H*Dh]
