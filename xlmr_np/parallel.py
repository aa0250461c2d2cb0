"""The encoder on every core: model.encoder with each layer's heads and FFN columns shared out between threads.

Why: NumPy runs GELU, softmax and LayerNorm on one core; only its BLAS uses the others. Here n threads (the
caller and n - 1 helpers) run the layer stack together, each on its own share, with numpy's OpenBLAS set to
one thread for the duration so that the n streams of GEMMs do not fight over the cores. Per layer, thread i:

  1. computes q, k, v for its heads (its rows of W_q, W_k, W_v) and attention for those heads, with
     model.attention itself; then its part of the output projection, context_i @ W_o[:, cols_i]^T: a [M, D]
     partial sum over its slice of the hidden dimension (M = B * T)
                          -- barrier: all partial sums are ready --
  2. for its rows: sum of the partial sums + b_o + residual, LayerNorm -> h
                          -- barrier: h is complete --
  3. its FFN columns: act(h @ W_in[cols_i]^T + b_in[cols_i]) @ W_out[:, cols_i]^T, again a partial sum
                          -- barrier --
  4. for its rows: sum + b_out + residual h, LayerNorm -> the layer's output
                          -- barrier: the next layer reads all of it --

The arithmetic is model.py's; only the order of two float32 sums changes (the hidden and FFN dimensions are
summed in n pieces), so results equal model.encoder's to rounding (tests/test_parallel.py; goldens).
`applies` decides when this path is taken: NumPy arrays, no past cache and no cross-attention (those take
model.encoder), numpy's BLAS is OpenBLAS (the only one whose thread count we can set), inputs large enough
to pay for the threads, and no other thread using this path at the moment. XLMR_NP_THREADS=1 turns it off;
XLMR_NP_THREADS=n asks for n threads (default: OpenBLAS's own thread count).
Measured gains and their limits: docs/performance.md.
"""
from __future__ import annotations

import ctypes
import dataclasses
import glob
import os
import queue
import threading

import numpy as np

from . import model
from .backend import array_module
from .fast import activation, gelu
from .ops import layer_norm, linear

# Below this many tokens in the batch (B * T) the threads cost more than they save: with xlm-roberta-base's
# shapes 1 x 64 tokens took 169 ms threaded and 143 ms on one thread, 2 x 64 243 ms and 260 ms (each GEMM is
# then small and bound by reading the weights). Tests lower it to run tiny models on this path.
MIN_TOKENS = 128


def applies(x, cross_input=None, past_key_values=None, use_cache=False) -> bool:
    """Whether `encoder` below runs this forward (else model.encoder does).

    A cache may be started (use_cache: a decoder's prompt) but not continued: the steps that follow are one
    token each, far below MIN_TOKENS.
    """
    return (type(x) is np.ndarray and cross_input is None and past_key_values is None
            and x.shape[0] * x.shape[1] >= MIN_TOKENS and thread_count() > 1)


def thread_count() -> int:
    """XLMR_NP_THREADS if set, else OpenBLAS's thread count; 1 when numpy's BLAS is not a known OpenBLAS."""
    if _openblas() is None:
        return 1
    requested = os.environ.get("XLMR_NP_THREADS", "").strip()
    if requested:
        try:
            return max(1, int(requested))
        except ValueError:
            raise ValueError(f"XLMR_NP_THREADS={requested!r}: expected a whole number of threads, e.g. 2") from None
    return _openblas().get()


def encoder(params, cfg, x, mask, head_mask=None, cross_input=None, cross_mask=None, past_key_values=None,
            use_cache=False, output_attentions=False, output_hidden_states=False, trace=None):
    """model.encoder with the same arguments and result, on `thread_count()` threads where `applies` says so.

    Otherwise (a past cache, cross-attention, or another thread already on this path) it is model.encoder itself.
    """
    plain = (params, cfg, x, mask, head_mask, cross_input, cross_mask, past_key_values, use_cache,
             output_attentions, output_hidden_states, trace)
    if not applies(x, cross_input, past_key_values, use_cache):
        return model.encoder(*plain)
    threads = min(thread_count(), cfg.num_attention_heads)
    if not _LOCK.acquire(blocking=False):  # one threaded forward at a time; others run the plain path
        return model.encoder(*plain)
    blas = _openblas()
    blas_threads = blas.get()
    try:
        blas.set(1)
        return _run(_team(threads), params, cfg, x, mask, head_mask, use_cache, output_attentions,
                    output_hidden_states, trace)
    finally:
        blas.set(blas_threads)
        _LOCK.release()


def _run(team, params, cfg, x, mask, head_mask, use_cache, output_attentions, output_hidden_states, trace):
    xp = array_module(x)
    keep_states = output_hidden_states or trace is not None
    batch, length, hidden = x.shape
    rows_total, n, head_dim = batch * length, team.size, cfg.head_dim
    layers = [model.sub(params, f"layers.{i}") for i in range(cfg.num_hidden_layers)]
    heads = _shares(cfg.num_attention_heads, n)  # thread i's heads, FFN columns and rows
    ffn_columns = _shares(cfg.intermediate_size, n)
    rows = _shares(rows_total, n)
    # Hidden states: all kept when returned, else two buffers in turn after x (layer i reads one, writes the other).
    states = [x] + [xp.empty_like(x) for _ in range(cfg.num_hidden_layers if keep_states else 2)]

    def slot(i):  # the index in `states` of layer i's input (i = L: the last output)
        return i if keep_states or i == 0 else 1 + (i - 1) % 2

    partial = xp.empty((n, rows_total, hidden), dtype=x.dtype)  # [n, M, D]: each thread's partial sums
    h = xp.empty((rows_total, hidden), dtype=x.dtype)  # [M, D]: the layer's attention output
    probs = [xp.empty((batch, cfg.num_attention_heads, length, length), dtype=x.dtype) if output_attentions
             else None for _ in layers]  # [B, H, T, S] each
    cache = [tuple(xp.empty((batch, cfg.num_attention_heads, length, head_dim), dtype=x.dtype) for _ in "kv")
             for _ in layers] if use_cache else None  # (k, v) [B, H, S, Dh] per layer
    relative = cfg.position_embedding_type != "absolute"
    act = activation(cfg.hidden_act)

    def share(i):
        own_heads, own_ffn, own_rows = heads[i], ffn_columns[i], rows[i]
        cols = slice(own_heads.start * head_dim, own_heads.stop * head_dim)  # its slice of the hidden dim
        part_cfg = dataclasses.replace(cfg, num_attention_heads=own_heads.stop - own_heads.start,
                                       hidden_size=cols.stop - cols.start)
        for index, p in enumerate(layers):
            x_in, x_out = states[slot(index)], states[slot(index + 1)]  # [B, T, D] each
            attn, ffn = model.sub(p, "attention"), model.sub(p, "ffn")
            own = dict(attn, **{f"{w}.{kind}": attn[f"{w}.{kind}"][cols] for w in ("query", "key", "value")
                                for kind in ("weight", "bias")})  # its rows of W_q, W_k, W_v (views)
            layer_head_mask = None if head_mask is None else head_mask[index][own_heads]
            context, own_probs, own_kv = model.attention(own, part_cfg, x_in, mask, layer_head_mask, cached=use_cache,
                                                         relative=relative, keep_probs=output_attentions,
                                                         block_bytes=model.ATTENTION_BLOCK_BYTES // n)  # [B, T, D/n]
            if output_attentions:
                probs[index][:, own_heads] = own_probs  # [B, H/n, T, S] into [B, H, T, S]
            if use_cache:
                for whole, own_part in zip(cache[index], own_kv):
                    whole[:, own_heads] = own_part  # [B, H/n, S, Dh] into [B, H, S, Dh]
            partial_product(context.reshape(rows_total, -1), attn["out.weight"][:, cols], out=partial[i])  # [M, D]
            team.barrier.wait()
            _sum_norm(partial[:, own_rows], attn, cfg, x_in.reshape(rows_total, hidden)[own_rows], out=h[own_rows])
            team.barrier.wait()
            inner = linear(h, ffn["in.weight"][own_ffn], ffn["in.bias"][own_ffn])  # [M, D] -> [M, F/n]
            inner = activate(act, inner)
            partial_product(inner, ffn["out.weight"][:, own_ffn], out=partial[i])  # [M, F/n] -> [M, D]
            team.barrier.wait()
            _sum_norm(partial[:, own_rows], ffn, cfg, h[own_rows], out=x_out.reshape(rows_total, hidden)[own_rows])
            team.barrier.wait()

    team.run(share)
    last = states[slot(cfg.num_hidden_layers)]
    if trace is not None:
        for index in range(cfg.num_hidden_layers):
            trace[f"layers.{index}"] = states[index + 1]
    return {
        "last_hidden_state": last,
        "hidden_states": tuple(states) if output_hidden_states else None,
        "attentions": tuple(probs) if output_attentions else None,
        "cross_attentions": None,
        "past_key_values": tuple(cache) if use_cache else None,
    }


def partial_product(x, weight_columns, out):
    """x @ weight_columns^T into out: [M, D/n] @ [D/n, D] -> [M, D], one thread's share of a sum over D (or F)."""
    return array_module(x).matmul(x, weight_columns.T, out=out)


def activate(act, inner):
    """act(inner), in place where it can be (fast.gelu): [M, F/n]."""
    return act(inner, out=inner) if act is gelu else act(inner)


def _sum_norm(partials, p, cfg, residual, out):
    """LayerNorm(sum of the partial products + bias + residual) for some rows: model.residual_norm's arithmetic."""
    array_module(out).sum(partials, axis=0, out=out)  # [n, rows, D] -> [rows, D]
    out += p["out.bias"]
    out += residual
    layer_norm(out, p["norm.weight"], p["norm.bias"], cfg.layer_norm_eps, out=out)


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


def _team(size: int) -> _Team:
    """The team of `size` threads, made on first use (and again in a forked child, which has no helpers, or after
    an interrupted run)."""
    team = _TEAMS.get(size)
    if team is None or team.pid != os.getpid() or team.broken:
        team = _TEAMS[size] = _Team(size)
    return team


# --- numpy's OpenBLAS thread count ----------------------------------------------------------------------------
class _OpenBLAS:
    """get() and set(n) of the library's thread count, through its C functions."""

    def __init__(self, get_function, set_function):
        self._get, self._set = get_function, set_function
        self._get.restype, self._set.argtypes = ctypes.c_int, [ctypes.c_int]

    def get(self) -> int:
        return self._get()

    def set(self, threads: int) -> None:
        self._set(threads)


_OPENBLAS_CACHE: list = []


def _openblas():
    """numpy's bundled OpenBLAS (scipy-openblas wheels: 64-bit or 32-bit integers) through ctypes, or None."""
    if not _OPENBLAS_CACHE:
        found = None
        directory = os.path.dirname(np.__file__)
        for path in sorted(glob.glob(directory + ".libs/*openblas*") + glob.glob(directory + "/.dylibs/*openblas*")):
            try:
                library = ctypes.CDLL(path)  # already loaded by numpy: the same library, not a second copy
            except OSError:
                continue
            for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", "")):
                names = (prefix + "get_num_threads" + suffix, prefix + "set_num_threads" + suffix)
                if all(hasattr(library, name) for name in names):
                    found = _OpenBLAS(*(getattr(library, name) for name in names))
                    break
            if found is not None:
                break
        _OPENBLAS_CACHE.append(found)
    return _OPENBLAS_CACHE[0]
