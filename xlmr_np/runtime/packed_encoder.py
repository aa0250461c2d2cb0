"""Padding-free encoding: the body run on the real tokens of a batch packed into one [N, D] array.

Where the caller reads the output only at real tokens (pooling, BGE-M3's sparse weights and ColBERT vectors,
a reranker's first token), the padding of a right-padded batch is work thrown away: a batch of lengths
(60, 20, 20, 20) pads to 4 x 60 = 240 rows for 120 real ones. Here:

  1. the embeddings of every real token, with each sequence's own positions (pad+1, pad+2, ... as
     core.model.position_ids_from_input_ids gives them), packed as [N, D] (N = sum of the lengths);
  2. per layer, the Q/K/V projections, the output projection, the FFN and both LayerNorms run on the packed
     rows (position-wise, so packing changes nothing): core.ops.linear (or runtime/fused_qkv.py's one
     product, with XLMR_NP_FUSED_QKV=1), runtime/residual_norm.py and runtime/bias_gelu.py, which equal
     core.model.residual_norm and ffn_inner bit for bit;
  3. attention runs per length bucket: the sequences of one length form a [b, H, T, Dh] batch with no mask
     (kernels.attention = core.model.attend, or the query-blocked stand-in for long sequences).

Against the padded computation (core.model.forward with an attention mask), the masked keys there get
exactly zero probability (exp of the dtype's most negative value), so the two agree to rounding: only
the GEMMs' blocking differs (tests/test_packed_encoder.py). What it does not do: decoders (causal masks),
a cache, cross-attention, head masks, returning attentions or hidden states; embedding models need none.
The threaded encoder (runtime/threaded_encoder.py) is not used on this path; BLAS threads each projection and
FFN GEMM, while a small bucket's attention runs on one BLAS thread (SMALL_SCORES).

Shape legend: N packed real tokens, D hidden, b sequences of one length, T their length, H heads, Dh head dim.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..core import model
from ..core.ops import linear
from .bias_gelu import ffn_inner_in_blocks
from .fused_qkv import fuse_qkv, project_qkv
from .residual_norm import residual_norm_in_blocks
from .openblas import openblas, thread_limit

# Buckets whose scores have fewer elements than this run their attention GEMMs on one BLAS thread: for such small
# products waking OpenBLAS's other threads costs more than it saves (on a busy 2-core machine, 64 sentences of
# 5-100 tokens: attention 1.42 s with 2 BLAS threads, 0.10 s with 1). The projections and the FFN, large GEMMs
# over all packed rows, keep every thread.
SMALL_SCORES = 2**22


def applies(cfg, params) -> bool:
    """Whether `encode` can serve: NumPy parameters and an encoder (no decoder's causal mask)."""
    return isinstance(params["embeddings.word"], np.ndarray) and not cfg.is_decoder


def buckets(lengths):
    """(order, groups): the sequence indices sorted by length, and (first row, count, length) per length, in the
    packed order (rows of the packed array: the sequences in `order`, one after another)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups, row, i = [], 0, 0
    while i < len(order):
        length = lengths[order[i]]
        count = 1
        while i + count < len(order) and lengths[order[i + count]] == length:
            count += 1
        groups.append((row, count, length))
        row += count * length
        i += count
    return order, groups


def embed_packed(params, cfg, sequences, kernels=None):
    """The embedding output [N, D] of the sequences' real tokens, one after another."""
    kernels = kernels or model.REFERENCE
    ids = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])  # [N]
    positions = np.concatenate([model.position_ids_from_input_ids(np.asarray(s, dtype=np.int64)[None],
                                                                  cfg.pad_token_id)[0] for s in sequences])  # [N]
    token_embeds = kernels.gather_rows(params["embeddings.word"], ids[None])  # [1, N, D]
    types = np.zeros((1, ids.size), dtype=np.int64)  # [1, N]
    return model.embeddings(params, cfg, token_embeds, types, positions[None])[0]  # [N, D]


def attention_packed(p, cfg, x, groups, kernels):
    """Self-attention context [N, D] (before the output projection) of packed rows x [N, D], per length bucket."""
    heads, hidden = cfg.num_attention_heads, x.shape[-1]
    relative = cfg.position_embedding_type != "absolute"
    if fuse_qkv():
        q, k, v = (a[0] for a in project_qkv(x[None], p, slice(0, hidden)))  # 3 x [N, D], views of [N, 3D]
    else:
        q = linear(x, p["query.weight"], p["query.bias"])  # [N, D]
        k = linear(x, p["key.weight"], p["key.bias"])  # [N, D]
        v = linear(x, p["value.weight"], p["value.bias"])  # [N, D]
    context = np.empty_like(x)  # [N, D]
    for first, count, length in groups:
        rows = slice(first, first + count * length)
        q_b, k_b, v_b = (model.split_heads(a[rows].reshape(count, length, hidden), heads)
                         for a in (q, k, v))  # [b*T, D] -> [b, H, T, Dh]
        with one_blas_thread(count * heads * length * length < SMALL_SCORES):
            ctx, _ = kernels.attention(p, cfg, q_b, k_b, v_b, None, None, False, relative, False)  # [b, T, D]
        context[rows] = ctx.reshape(count * length, hidden)
    return context


def one_blas_thread(small: bool):
    """OpenBLAS on one thread for the block when `small` and numpy's BLAS is a known OpenBLAS; else nothing."""
    if small and openblas() is not None and openblas().get() > 1:
        return thread_limit(1)
    return contextlib.nullcontext()


def encode(params, cfg, sequences, kernels=None):
    """last_hidden_state of each token-id sequence at its own tokens: a list of [T_i, D] arrays (input order)."""
    kernels = kernels or model.REFERENCE
    if not sequences:
        return []
    lengths = [len(s) for s in sequences]
    if min(lengths) < 1:
        raise ValueError("every sequence needs at least one token")
    order, groups = buckets(lengths)
    x = embed_packed(params, cfg, [sequences[i] for i in order], kernels)  # [N, D]
    for layer in range(cfg.num_hidden_layers):
        p = model.sub(params, f"layers.{layer}")
        attn = model.sub(p, "attention")
        context = attention_packed(attn, cfg, x, groups, kernels)  # [N, D]
        h = residual_norm_in_blocks(attn, cfg, context, x)  # [N, D]
        ffn = model.sub(p, "ffn")
        x = residual_norm_in_blocks(ffn, cfg, ffn_inner_in_blocks(ffn, cfg, h, kernels), h)  # [N, D]
    states = [None] * len(sequences)
    row = 0
    for i in order:
        states[i] = x[row:row + lengths[i]]
        row += lengths[i]
    return states
