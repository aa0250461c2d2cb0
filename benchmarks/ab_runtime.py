"""A/B of the threaded encoder's paths in one process: the column split of before vs today's row split.

    python benchmarks/ab_runtime.py                   # 4 shapes x 3 paths, 7 rounds: ~2 min on 2 cores
    python benchmarks/ab_runtime.py --shapes 8x128 --rounds 9 --profile

Paths, each the threaded encoder (runtime/threaded_encoder.py) with 2 threads on the same model:
  before           the column split as it was before issue 17 (copied here for this comparison): heads, then
                   each thread's slice of the out-projection and FFN columns as [n, M, D] partial sums, 4
                   barriers per layer, core.model.ffn_inner
  columns          today's column split (ROW_SPLIT_MIN_ROWS huge): the same, with runtime/bias_gelu.py's
                   bias + GELU in blocks
  rows             today's row split (ROW_SPLIT_MIN_ROWS = 0): heads, then each thread's rows through the
                   out-projection, LayerNorm and the whole FFN (runtime/residual_norm.py, bias_gelu.py), 2
                   barriers per layer
  rows+qkv         rows with XLMR_NP_FUSED_QKV=1 (runtime/fused_qkv.py)
  default          what the encoder picks (rows from ROW_SPLIT_MIN_ROWS rows per thread)
  default+qkv      default with XLMR_NP_FUSED_QKV=1

Rounds alternate the paths in a rotating order, with a 0.2 s pause before each call (idle BLAS threads of the
previous call spin ~0.1 s); the report is the median seconds per forward and each path's ratio over
the first (> 1: faster), with the ratio's spread over the rounds (min-max of per-round ratios). Outputs are
checked against the first path first. The checkpoint: benchmarks/bench_forward.py's random xlm-roberta-base
(written to ~/.cache/xlmr_np_bench on first use). --profile adds the calling thread's self time per phase.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import phase_profile  # noqa: E402
from xlmr_np.backend import array_module  # noqa: E402
from xlmr_np.core import model  # noqa: E402
from xlmr_np.runtime import bias_gelu, gelu, residual_norm  # noqa: E402
from xlmr_np.runtime import threaded_encoder as te  # noqa: E402

PAUSE = 0.2


# --- the column split as it was before the row split (commit 834ecd8), for this comparison only -----------
def partial_product(x, weight_columns, out):
    return np.matmul(x, weight_columns.T, out=out)


def _run_columns(team, params, cfg, x, mask, head_mask, use_cache, output_attentions, output_hidden_states, trace,
                 layer_ids, kernels):
    xp = array_module(x)
    batch, length, hidden = x.shape
    rows_total, n, head_dim = batch * length, team.size, cfg.head_dim
    layers = [model.sub(params, f"layers.{i}") for i in layer_ids]
    heads, ffn_columns, rows = (te._shares(total, n) for total in (cfg.num_attention_heads,
                                                                   cfg.intermediate_size, rows_total))
    states = [x] + [xp.empty_like(x) for _ in range(min(2, len(layers)))]
    partial = xp.empty((n, rows_total, hidden), dtype=x.dtype)
    h = xp.empty((rows_total, hidden), dtype=x.dtype)

    def slot(i):
        return i if i == 0 else 1 + (i - 1) % 2

    def sum_norm(partials, p, residual, out):
        xp.sum(partials, axis=0, out=out)
        out += p["out.bias"]
        model.add_norm(p, cfg, out, residual)

    def share(i):
        own_heads, own_ffn, own_rows = heads[i], ffn_columns[i], rows[i]
        cols = slice(own_heads.start * head_dim, own_heads.stop * head_dim)
        for index, p in enumerate(layers):
            x_in, x_out = states[slot(index)], states[slot(index + 1)]
            attn, ffn = model.sub(p, "attention"), model.sub(p, "ffn")
            own = dict(attn, **{f"{w}.{kind}": attn[f"{w}.{kind}"][cols] for w in ("query", "key", "value")
                                for kind in ("weight", "bias")})
            context, _, _ = model.attention(own, cfg, x_in, mask, own_heads.stop - own_heads.start, None,
                                            keep_probs=False, kernels=kernels)
            partial_product(context.reshape(rows_total, -1), attn["out.weight"][:, cols], out=partial[i])
            team.barrier.wait()
            sum_norm(partial[:, own_rows], attn, x_in.reshape(rows_total, hidden)[own_rows], h[own_rows])
            team.barrier.wait()
            own_in = {"in.weight": ffn["in.weight"][own_ffn], "in.bias": ffn["in.bias"][own_ffn]}
            inner = model.ffn_inner(own_in, cfg, h, kernels)
            partial_product(inner, ffn["out.weight"][:, own_ffn], out=partial[i])
            team.barrier.wait()
            sum_norm(partial[:, own_rows], ffn, h[own_rows], x_out.reshape(rows_total, hidden)[own_rows])
            team.barrier.wait()

    team.run(share)
    return {"last_hidden_state": states[slot(len(layers))], "hidden_states": None, "attentions": None,
            "cross_attentions": None, "past_key_values": None}


TODAY, DEFAULT_MIN_ROWS = te._run, te.ROW_SPLIT_MIN_ROWS
PATHS = {"before": (_run_columns, None, "0"), "columns": (TODAY, 2**62, "0"), "rows": (TODAY, 0, "0"),
         "rows+qkv": (TODAY, 0, "1"), "default": (TODAY, DEFAULT_MIN_ROWS, "0"),
         "default+qkv": (TODAY, DEFAULT_MIN_ROWS, "1")}


def use(path):
    run, min_rows, fuse = PATHS[path]
    te._run = run
    te.ROW_SPLIT_MIN_ROWS = DEFAULT_MIN_ROWS if min_rows is None else min_rows
    os.environ["XLMR_NP_FUSED_QKV"] = fuse


# --- per phase (calling thread's self time) -------------------------------------------------------------
PHASES = {(model, "linear"): "GEMMs", (sys.modules[__name__], "partial_product"): "GEMMs",
          (te, "partial_product"): "GEMMs",
          (residual_norm, "product_without_bias"): "GEMMs", (bias_gelu, "product_without_bias"): "GEMMs",
          (te, "project_qkv"): "GEMMs", (model, "attention"): "attention", (te, "_own_attention"): "attention",
          (model, "softmax"): "softmax", (gelu, "gelu_in_place"): "GELU", (gelu, "gelu_block"): "GELU",
          (bias_gelu, "gelu_block"): "GELU",
          (model, "layer_norm"): "LayerNorm", (residual_norm, "layer_norm"): "LayerNorm"}
PHASE_NAMES = ("GEMMs", "attention", "softmax", "GELU", "LayerNorm", "waiting", "rest")


def profile(call, team, repeats=3):
    """Median self time per phase of call() (_common.phase_profile over PHASES)."""
    return phase_profile(call, team, PHASES, repeats, PAUSE, PHASE_NAMES)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="1x128,8x128,1x512,4x512")
    parser.add_argument("--paths", default="before,columns,rows,rows+qkv")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    from bench_forward import ensure_checkpoint  # the random xlm-roberta-base checkpoint
    import xlmr_np

    os.environ["XLMR_NP_THREADS"] = "2"
    m = xlmr_np.XLMRobertaModel.from_pretrained(ensure_checkpoint())
    paths = args.paths.split(",")
    rng = np.random.default_rng(0)
    team = te._team(2)
    print(f"{'shape':>6} " + " ".join(f"{p:>10}" for p in paths) + "   ratios over " + paths[0]
          + " (median; min-max of per-round ratios)")
    for shape in args.shapes.split(","):
        batch, tokens = map(int, shape.split("x"))
        ids = rng.integers(5, m.config.vocab_size, size=(batch, tokens))
        outputs = {}
        for path in paths:
            use(path)
            outputs[path] = m(input_ids=ids).last_hidden_state
        diffs = {p: float(np.abs(outputs[p] - outputs[paths[0]]).max()) for p in paths[1:]}
        times = {p: [] for p in paths}
        for r in range(args.rounds):
            order = paths[r % len(paths):] + paths[:r % len(paths)]
            for path in order:
                use(path)
                time.sleep(PAUSE)
                start = time.perf_counter()
                m(input_ids=ids)
                times[path].append(time.perf_counter() - start)
        med = {p: statistics.median(t) for p, t in times.items()}
        spread = {p: (min(a / b for a, b in zip(times[paths[0]], times[p])),
                      max(a / b for a, b in zip(times[paths[0]], times[p]))) for p in paths[1:]}
        print(f"{shape:>6} " + " ".join(f"{med[p] * 1e3:8.0f}ms" for p in paths) + "   "
              + "  ".join(f"{p} {med[paths[0]] / med[p]:.3f} ({spread[p][0]:.2f}-{spread[p][1]:.2f})"
                          for p in paths[1:]) + f"   max diff {diffs}")
        if args.profile:
            for path in paths:
                use(path)
                ph = profile(lambda: m(input_ids=ids), team)
                print(f"       {path:>10} total {ph['total'] * 1e3:7.1f} ms: "
                      + ", ".join(f"{k} {ph[k] / ph['total']:.1%}" for k in PHASE_NAMES))
        sys.stdout.flush()
    use("default")
    os.environ.pop("XLMR_NP_FUSED_QKV")


if __name__ == "__main__":
    main()
