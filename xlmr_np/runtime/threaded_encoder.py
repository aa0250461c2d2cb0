"""The encoder on every core: a stand-in for core.model.encoder that shares each layer out between threads.

Why: NumPy runs GELU, softmax and LayerNorm on one core; only its BLAS uses the others. Here n threads (the
caller and n - 1 helpers) run the layer stack together, each on its own share, with numpy's OpenBLAS set to
one thread for the duration so that the n streams of GEMMs do not fight over the cores. Per layer, thread i,
split by rows (from ROW_SPLIT_MIN_ROWS rows per thread):

  1. runs core.model.attention on its heads (its rows of W_q, W_k, W_v, and the head count passed
     explicitly; with XLMR_NP_FUSED_QKV=1 the three as one product, runtime/fused_qkv.py) and writes its
     heads' context into its columns of one shared [M, D] context (M = B * T)
                          -- barrier: every head's context is in place --
  2. for its rows of the batch: the output projection (all of W_o) + b_o + the residual, LayerNorm
     (runtime/residual_norm.py) -> h; the FFN's inside (all of W_in, + b_in, GELU: runtime/bias_gelu.py);
     its output projection + b_out + h, LayerNorm, written into its rows of the layer's output
                          -- barrier: the next layer's attention reads all of it --

Two barriers per layer, and no partial sums. Each thread reads all of W_o, W_in and W_out, though, and
multiplies only its rows: with few rows per thread (1 x 128 tokens: 64) the GEMMs are small and bound by
reading the weights, and the column split below was faster in every measured run (by 3-8 %). Below ROW_SPLIT_MIN_ROWS
rows per thread the layer is split by columns, with 4 barriers:

  1. attention on its heads as above; then its part of the output projection, context_i @ W_o[:, cols_i]^T:
     a [M, D] partial sum over its slice of the hidden dimension
                          -- barrier: all partial sums are ready --
  2. for its rows: sum of the partial sums + b_o, then core.model.add_norm with the residual -> h
                          -- barrier: h is complete --
  3. its FFN columns: bias_gelu on its rows of W_in, then @ W_out[:, cols_i]^T, again a partial sum
                          -- barrier --
  4. for its rows: sum + b_out, add_norm with the residual h -> the layer's output
                          -- barrier: the next layer reads all of it --

(measured: docs/performance.md, "Issue 17").

The arithmetic is the core's, row by row: the output projections, the FFN and the LayerNorms of a row are the
same operations in the same order as in core.model.encoder (runtime/residual_norm.py and bias_gelu.py equal
core.model.residual_norm and ffn_inner bit for bit); only the GEMMs' blocking differs with the number of
rows a thread multiplies (and with fused QKV the width of that product); the column split changes the order
of two float32 sums (the hidden and FFN dimensions summed in n pieces). Results equal core.model.encoder's to
rounding (tests/test_threaded_encoder.py, both splits).
`applies` decides when this path is taken: NumPy arrays, no past cache and no cross-attention, numpy's BLAS
is OpenBLAS (the only one whose thread count we can set), and inputs large enough to pay for the threads.
Only one threaded forward runs at a time: a concurrent caller takes core.model.encoder.
XLMR_NP_THREADS=1 turns it off; XLMR_NP_THREADS=n asks for n threads (default: OpenBLAS's own thread count).

Effect on the rest of the process, bounded by the forward: OpenBLAS's thread count is process-wide, so while
a threaded forward runs, matrix products in the process's other threads run on one BLAS thread (slower, and
in float32 rounded a little differently: differences of ~1e-6 were measured). It is restored as soon as the
forward ends, and in a child forked meanwhile (os.register_at_fork), which also gets a fresh lock and team.
Measured gains and their limits: docs/performance.md.

Shape legend: B batch, T tokens, M = B * T rows, D hidden, F intermediate, H heads, n threads.
"""
from __future__ import annotations

import os
import queue
import threading

import numpy as np

from ..backend import array_module
from ..core import model
from .bias_gelu import ffn_inner_in_blocks
from .fused_qkv import fuse_qkv, project_qkv
from .residual_norm import residual_norm_in_blocks
from .openblas import openblas, thread_limit

# Below this many tokens in the batch (B * T) the threads cost more than they save: with xlm-roberta-base's
# shapes 1 x 64 tokens took 169 ms threaded and 143 ms on one thread, 2 x 64 243 ms and 260 ms (each GEMM is
# then small and bound by reading the weights). Tests lower it to run tiny models on this path.
MIN_TOKENS = 128

# From this many rows (tokens) per thread the layer is split by rows, below it by columns. Measured on 2 busy
# cores (docs/performance.md, "Issue 17"): at 1 x 128 (64 rows per thread) the row split gave 0.92-0.97x the
# column split's tokens/s in four runs; from 256 rows per thread (8 x 128, 1 x 512, 4 x 512) 0.96-1.05x, even
# within the noise, with half the barriers and no partial sums. Tests set it to 0 or 2**62 to force a split.
ROW_SPLIT_MIN_ROWS = 128


def applies(params, cfg, x, mask, head_mask=None, cross_input=None, cross_mask=None, past_key_values=None,
            *rest, **options) -> bool:
    """Whether `encoder` below can run this forward (else core.model.encoder does).

    A cache may be started (use_cache: a decoder's prompt) but not continued: the steps that follow are one
    token each, far below MIN_TOKENS.
    """
    return (type(x) is np.ndarray and cross_input is None and past_key_values is None
            and x.shape[0] * x.shape[1] >= MIN_TOKENS and min(thread_count(), cfg.num_attention_heads) > 1)


def thread_count() -> int:
    """XLMR_NP_THREADS if set, else OpenBLAS's thread count; 1 when numpy's BLAS is not a known OpenBLAS."""
    if openblas() is None:
        return 1
    requested = os.environ.get("XLMR_NP_THREADS", "").strip()
    if requested:
        try:
            return max(1, int(requested))
        except ValueError:
            raise ValueError(f"XLMR_NP_THREADS={requested!r}: expected a whole number of threads, e.g. 2") from None
    return openblas().get()


def encoder(params, cfg, x, mask, head_mask=None, cross_input=None, cross_mask=None, past_key_values=None,
            use_cache=False, output_attentions=False, output_hidden_states=False, trace=None, layers=None,
            kernels=None):
    """core.model.encoder's arguments and result, computed on `thread_count()` threads (see `applies`).

    While another thread is on this path, this call runs core.model.encoder instead.
    """
    if not _LOCK.acquire(blocking=False):  # one threaded forward at a time; others run the plain path
        return model.encoder(params, cfg, x, mask, head_mask, cross_input, cross_mask, past_key_values, use_cache,
                             output_attentions, output_hidden_states, trace, layers, kernels)
    try:
        team = _team(min(thread_count(), cfg.num_attention_heads))  # counted before BLAS goes down to one thread
        with thread_limit(1):
            return _run(team, params, cfg, x, mask, head_mask, use_cache, output_attentions, output_hidden_states,
                        trace, list(range(cfg.num_hidden_layers) if layers is None else layers), kernels)
    finally:
        _LOCK.release()


def _run(team, params, cfg, x, mask, head_mask, use_cache, output_attentions, output_hidden_states, trace,
         layer_ids, kernels):
    """The layers on the team: split by rows (2 barriers per layer) from ROW_SPLIT_MIN_ROWS rows per thread, else
    by columns (4 barriers); see the module's docstring."""
    xp = array_module(x)
    keep_states = output_hidden_states or trace is not None
    batch, length, hidden = x.shape
    rows_total, n, head_dim = batch * length, team.size, cfg.head_dim
    layers = [model.sub(params, f"layers.{i}") for i in layer_ids]
    heads = _shares(cfg.num_attention_heads, n)  # thread i's heads, rows and (column split) FFN columns
    rows = _shares(rows_total, n)
    ffn_columns = _shares(cfg.intermediate_size, n)
    by_rows = rows_total >= ROW_SPLIT_MIN_ROWS * n
    fused = fuse_qkv()
    # Hidden states: all kept when returned, else two buffers in turn after x (layer i reads one, writes the other).
    states = [x] + [xp.empty_like(x) for _ in range(len(layers) if keep_states else min(2, len(layers)))]

    def slot(i):  # the index in `states` of the i-th layer's input (i = len(layers): the last output)
        return i if keep_states or i == 0 else 1 + (i - 1) % 2

    if by_rows:
        context = xp.empty((rows_total, hidden), dtype=x.dtype)  # [M, D]: every thread's heads side by side
    else:
        partial = xp.empty((n, rows_total, hidden), dtype=x.dtype)  # [n, M, D]: each thread's partial sums
        h_all = xp.empty((rows_total, hidden), dtype=x.dtype)  # [M, D]: the layer's attention output
    probs = [xp.empty((batch, cfg.num_attention_heads, length, length), dtype=x.dtype) if output_attentions
             else None for _ in layers]  # [B, H, T, S] each
    cache = [tuple(xp.empty((batch, cfg.num_attention_heads, length, head_dim), dtype=x.dtype) for _ in "kv")
             for _ in layers] if use_cache else None  # (k, v) [B, H, S, Dh] per layer

    def share(i):
        own_heads, own_rows = heads[i], rows[i]
        cols = slice(own_heads.start * head_dim, own_heads.stop * head_dim)  # its heads' slice of the hidden dim
        m, f = own_rows.stop - own_rows.start, ffn_columns[i].stop - ffn_columns[i].start
        if by_rows:
            h = xp.empty((m, hidden), dtype=x.dtype)  # [m, D]: its rows of the attention sub-layer's output
            inner = xp.empty((m, cfg.intermediate_size), dtype=x.dtype)  # [m, F]: its rows of the FFN's inside
        else:
            inner = xp.empty((rows_total, f), dtype=x.dtype)  # [M, F/n]: its columns of the FFN's inside
        for index, p in enumerate(layers):
            x_in, x_out = states[slot(index)], states[slot(index + 1)]  # [B, T, D] each
            attn, ffn = model.sub(p, "attention"), model.sub(p, "ffn")
            layer_head_mask = None if head_mask is None else head_mask[layer_ids[index]][own_heads]
            own_context, own_probs, own_kv = _own_attention(attn, cfg, x_in, mask, own_heads, cols, layer_head_mask,
                                                            use_cache, output_attentions, fused, kernels)
            if output_attentions:
                probs[index][:, own_heads] = own_probs  # [B, H/n, T, S] into [B, H, T, S]
            if use_cache:
                for whole, own_part in zip(cache[index], own_kv):
                    whole[:, own_heads] = own_part  # [B, H/n, S, Dh] into [B, H, S, Dh]
            x_rows = x_in.reshape(rows_total, hidden)[own_rows]  # [m, D]
            out_rows = x_out.reshape(rows_total, hidden)[own_rows]  # [m, D]
            if by_rows:
                context[:, cols] = own_context.reshape(rows_total, -1)  # [B, T, D/n] into [M, D]
                team.barrier.wait()  # the context of every head is in place
                residual_norm_in_blocks(attn, cfg, context[own_rows], x_rows, out=h)  # [m, D]
                ffn_inner_in_blocks(ffn, cfg, h, kernels, out=inner)  # [m, D] -> [m, F]
                residual_norm_in_blocks(ffn, cfg, inner, h, out=out_rows)  # [m, F] -> [m, D]
                team.barrier.wait()  # the layer's output is complete: the next layer's attention reads all of it
            else:
                partial_product(own_context.reshape(rows_total, -1), attn["out.weight"][:, cols],
                                out=partial[i])  # [M, D/n] -> [M, D]
                team.barrier.wait()  # all partial sums are ready
                _sum_norm(partial[:, own_rows], attn, cfg, x_rows, out=h_all[own_rows])
                team.barrier.wait()  # h is complete
                own_in = {"in.weight": ffn["in.weight"][ffn_columns[i]], "in.bias": ffn["in.bias"][ffn_columns[i]]}
                ffn_inner_in_blocks(own_in, cfg, h_all, kernels, out=inner)  # [M, D] -> [M, F/n]
                partial_product(inner, ffn["out.weight"][:, ffn_columns[i]], out=partial[i])  # [M, F/n] -> [M, D]
                team.barrier.wait()
                _sum_norm(partial[:, own_rows], ffn, cfg, h_all[own_rows], out=out_rows)
                team.barrier.wait()  # the next layer reads all of it

    team.run(share)
    if trace is not None:
        for index, layer_id in enumerate(layer_ids):
            trace[f"layers.{layer_id}"] = states[index + 1]
    return {
        "last_hidden_state": states[slot(len(layers))],
        "hidden_states": tuple(states) if output_hidden_states else None,
        "attentions": tuple(probs) if output_attentions else None,
        "cross_attentions": None,
        "past_key_values": tuple(cache) if use_cache else None,
    }


def _own_attention(attn, cfg, x, mask, own_heads, cols, head_mask, use_cache, output_attentions, fused, kernels):
    """core.model.attention for one thread's heads: (context [B, T, D/n], probs [B, H/n, T, S] | None, (k, v))."""
    heads = own_heads.stop - own_heads.start
    if not fused:
        own = dict(attn, **{f"{w}.{kind}": attn[f"{w}.{kind}"][cols] for w in ("query", "key", "value")
                            for kind in ("weight", "bias")})  # its rows of W_q, W_k, W_v (views)
        return model.attention(own, cfg, x, mask, heads, head_mask, cached=use_cache, keep_probs=output_attentions,
                               kernels=kernels)
    q, k, v = (model.split_heads(a, heads) for a in project_qkv(x, attn, cols))  # [B, H/n, T, Dh] each
    relative = cfg.position_embedding_type != "absolute"  # as core.model.attention decides for self-attention
    context, probs = (kernels or model.REFERENCE).attention(attn, cfg, q, k, v, mask, head_mask, use_cache, relative,
                                                            output_attentions)
    return context, probs, (k, v)


def partial_product(x, weight_columns, out):
    """x @ weight_columns^T into out: [M, D/n] @ [D/n, D] -> [M, D], one thread's share of a sum over D (or F)."""
    return array_module(x).matmul(x, weight_columns.T, out=out)


def _sum_norm(partials, p, cfg, residual, out):
    """LayerNorm(sum of the partial products + bias + residual) for some rows: core.model.residual_norm's arithmetic
    with its dense layer summed in pieces."""
    array_module(out).sum(partials, axis=0, out=out)  # [n, rows, D] -> [rows, D]
    out += p["out.bias"]
    model.add_norm(p, cfg, out, residual)


def _shares(total: int, parts: int):
    """range(total) cut into `parts` contiguous slices whose sizes differ by at most one."""
    bounds = [total * i // parts for i in range(parts + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(parts)]


# --- threads --------------------------------------------------------------------------------------------------
class _Team:
    """The calling thread (index 0) and size - 1 helper threads that run one function together, each with its
    own index, meeting at `barrier`. An exception in any of them breaks the barrier, so none waits forever,
    and is raised in the caller."""

    def __init__(self, size: int):
        self.size, self.pid, self.broken = size, os.getpid(), False
        self.barrier = threading.Barrier(size)
        self._tasks = [queue.SimpleQueue() for _ in range(size - 1)]
        self._done = queue.SimpleQueue()
        for index in range(1, size):
            threading.Thread(target=self._serve, args=(index,), name=f"xlmr_np-{index}", daemon=True).start()

    def _serve(self, index):
        while True:
            task = self._tasks[index - 1].get()
            try:
                task(index)
                self._done.put(None)
            except BaseException as error:  # handed to the caller, which raises it
                self.barrier.abort()
                self._done.put(error)

    def run(self, task):
        for tasks in self._tasks:
            tasks.put(task)
        errors = []
        try:
            task(0)
        except BaseException as error:
            self.barrier.abort()
            errors.append(error)
        try:
            errors += [error for error in (self._done.get() for _ in self._tasks) if error is not None]
        except BaseException:  # interrupted (Ctrl-C) while helpers may still run: this team is never used again
            self.broken = True
            self.barrier.abort()
            raise
        if errors:
            self.barrier.reset()
            # the first real error, not a helper's BrokenBarrierError caused by it
            raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])


_LOCK = threading.Lock()
_TEAMS: dict = {}


def _reset_in_child():
    """A forked child has only the forking thread: no helpers, and a lock that nobody will release."""
    global _LOCK
    _LOCK = threading.Lock()
    _TEAMS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def _team(size: int) -> _Team:
    """The team of `size` threads, made on first use (and again in a forked child, which has no helpers, or after
    an interrupted run)."""
    team = _TEAMS.get(size)
    if team is None or team.pid != os.getpid() or team.broken:
        team = _TEAMS[size] = _Team(size)
    return team
