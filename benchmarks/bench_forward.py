"""Forward-pass speed of xlmr_np against Hugging Face transformers (eager and sdpa attention) on the CPU.

One run does everything, on an xlm-roberta-base-shaped checkpoint with random weights (vocabulary 250,002,
hidden 768, 12 layers, 12 heads, inner 3072, 514 positions; 1.1 GB float32 safetensors, written once to
~/.cache/xlmr_np_bench or $XLMR_NP_BENCH_CACHE):

1. NumPy's own float32 GEMM rate on this machine (median of 5 products of two 3072 x 3072 matrices): the
   roofline the forward pass is measured against.
2. XLMRobertaModel forward at (batch, tokens) = (1, 128), (8, 128), (1, 512), (4, 512), every contestant timed
   in alternation (the order rotates every round, each call after a 0.25 s pause so that the previous
   library's spinning threads sleep first), all with NumPy's BLAS thread count:
   - xlmr_np, and xlmr_np with XLMR_NP_THREADS=1 (core.model.encoder, without runtime/threaded_encoder.py);
   - HF eager and HF sdpa (torch.inference_mode, torch.set_num_threads);
   - ONNX Runtime, if installed: HF's model exported with torch.onnx (TorchScript exporter, dynamic batch and
     sequence axes) and optimised by onnxruntime.transformers.optimizer (model_type="bert": Attention,
     SkipLayerNormalization and BiasGelu fusions; their counts are printed), CPU provider, intra-op threads =
     BLAS threads, every graph optimisation (_common.onnx_model, cached under the bench cache);
   - CTranslate2, if installed: ctranslate2.converters.TransformersConverter of the checkpoint (Q, K, V fused
     into one product at conversion), ctranslate2.Encoder with intra_threads = BLAS threads, float32, and int8
     as a separate contestant labelled approximate (reported apart, not in the ratio).
   Every answer is checked against HF eager (last_hidden_state max |diff| at 1 x 128). Reported: median
   tokens/s and each float32 contestant's matrix-product FLOP rate (projections, FFN, pooler, q k^T and
   probs v) as a share of the roofline, and xlmr_np / the best float32 peer (HF eager, HF sdpa, ONNX Runtime,
   CTranslate2 float32).
3. Where xlmr_np's time goes, per phase, on both paths: GEMMs, attention (q k^T, probs v, scaling, masking,
   head split/merge), softmax, GELU, LayerNorm, waiting at the threads' barriers, and the rest (embedding
   gather, residual adds and partial sums, Python), by wrapping those functions with timers (self time of
   the calling thread: nested calls are not counted twice).

Prints Markdown tables with the machine (CPU, cores, BLAS, versions, date) for docs/performance.md.
Run it on an otherwise idle machine: with other processes on the cores, spinning BLAS threads slow down by
large and varying factors.

--quick: a small random checkpoint instead (xlm-roberta-base's vocabulary, hidden 256, 2 layers, 4 heads;
0.26 GB, cached as xlmr-quick-random), shapes 1 x 128 and 8 x 128, 2 rounds: every contestant in ~40 s, of
which ~15 s exporting and converting the first time. The base checkpoint's ONNX export and CTranslate2
conversion are made once by the first full run (about a minute) and cached next to it.

Usage: python benchmarks/bench_forward.py [--quick] [--repeats 5] [--json results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a clone without installing
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import (SETTLE_SECONDS, blas_threads, check_fusions, ct2_hidden, ct2_model, machine_info,  # noqa: E402
                     machine_line, onnx_model, optional, ort_hidden, ort_session, phase_profile)

# xlm-roberta-base's config.json (transformers 4.57.6 field names); only the weights are random.
BASE_CONFIG = {
    "architectures": ["XLMRobertaForMaskedLM"], "model_type": "xlm-roberta", "vocab_size": 250002,
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 514, "type_vocab_size": 1, "initializer_range": 0.02, "layer_norm_eps": 1e-05,
    "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "position_embedding_type": "absolute",
    "use_cache": True, "classifier_dropout": None, "output_past": True, "torch_dtype": "float32",
}
CACHE = Path(os.environ.get("XLMR_NP_BENCH_CACHE", Path.home() / ".cache" / "xlmr_np_bench"))


def checkpoint_tensors(cfg: dict, seed: int = 0) -> dict:
    """Every tensor of an xlm-roberta-base masked-LM checkpoint (HF key -> float32 array), all random.

    Uniform values with the spread of HF's init (std 0.02) are used because drawing them is twice as fast
    as normal ones; LayerNorm weights are 1 + noise. The layout is the hub file's: "roberta." backbone with
    pooler, lm_head without a decoder matrix (tied to the word embeddings).
    """
    rng = np.random.default_rng(seed)
    d, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    half_width = 0.02 * 3 ** 0.5  # uniform(-a, a) has std a / sqrt(3)

    def weight(*shape):
        return (rng.random(shape, dtype=np.float32) - 0.5) * (2 * half_width)

    def norm(prefix):
        return {prefix + ".weight": 1.0 + weight(d), prefix + ".bias": weight(d)}

    tensors = {
        "roberta.embeddings.word_embeddings.weight": weight(v, d),
        "roberta.embeddings.position_embeddings.weight": weight(cfg["max_position_embeddings"], d),
        "roberta.embeddings.token_type_embeddings.weight": weight(cfg["type_vocab_size"], d),
        **norm("roberta.embeddings.LayerNorm"),
        "roberta.pooler.dense.weight": weight(d, d), "roberta.pooler.dense.bias": weight(d),
        "lm_head.dense.weight": weight(d, d), "lm_head.dense.bias": weight(d), **norm("lm_head.layer_norm"),
        "lm_head.bias": weight(v),
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"roberta.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            tensors[p + f"attention.self.{name}.weight"] = weight(d, d)
            tensors[p + f"attention.self.{name}.bias"] = weight(d)
        tensors[p + "attention.output.dense.weight"] = weight(d, d)
        tensors[p + "attention.output.dense.bias"] = weight(d)
        tensors.update(norm(p + "attention.output.LayerNorm"))
        tensors[p + "intermediate.dense.weight"] = weight(f, d)
        tensors[p + "intermediate.dense.bias"] = weight(f)
        tensors[p + "output.dense.weight"] = weight(d, f)
        tensors[p + "output.dense.bias"] = weight(d)
        tensors.update(norm(p + "output.LayerNorm"))
    return tensors


# --quick's checkpoint: xlm-roberta-base's vocabulary and positions, a narrow 2-layer body (0.26 GB), so that a
# smoke run exports and converts it for ONNX Runtime and CTranslate2 in seconds (the base one takes minutes once).
QUICK_CONFIG = dict(BASE_CONFIG, hidden_size=256, num_hidden_layers=2, num_attention_heads=4, intermediate_size=1024)


def ensure_checkpoint(directory: Path = CACHE / "xlm-roberta-base-random", cfg: dict = BASE_CONFIG) -> Path:
    """Create the random checkpoint of config `cfg` (xlm-roberta-base's by default) once; later runs reuse it."""
    from xlmr_np.weights import save_file

    weights = directory / "model.safetensors"
    if weights.exists() and (directory / "config.json").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"creating the random checkpoint {directory.name} in {directory.parent} (once) ...", flush=True)
    (directory / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    save_file(checkpoint_tensors(cfg), weights, metadata={"format": "pt"})  # atomic: complete or absent
    print(f"  {weights.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s", flush=True)
    return directory



# --- the machine (blas_threads, machine_info: _common.py) ---------------------------------------------
def sgemm_rate(size: int, repeats: int = 5) -> float:
    """NumPy float32 matrix-product rate in GFLOP/s: median of `repeats` [size, size] @ [size, size]."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    a @ b  # warm-up: thread start, page faults
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def torch_sgemm_rate(size: int, repeats: int = 5) -> float:
    """The same product with torch.mm (MKL), for comparison: is NumPy's BLAS the faster one here?"""
    import torch

    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def forward_flops(cfg: dict, batch: int, tokens: int) -> float:
    """Matrix-product FLOPs of one XLMRobertaModel forward (2 per multiply-add; elementwise work not counted)."""
    d, f, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    rows = batch * tokens
    per_layer = 2 * rows * (4 * d * d + 2 * d * f) + 2 * 2 * batch * tokens * tokens * d  # linears; qk^T, pv
    return layers * per_layer + 2 * batch * d * d  # + pooler


# --- the contestants --------------------------------------------------------------------------------------
def input_ids(batch: int, tokens: int, vocab: int, seed: int = 0) -> np.ndarray:
    """<s> random tokens </s>, no padding (every row full length, as a fixed-length batch)."""
    ids = np.random.default_rng(seed).integers(3, vocab, size=(batch, tokens))
    ids[:, 0], ids[:, -1] = 0, 2
    return ids


# Roles: "ours"; "peer" (float32: the ratio is taken against the best of them); "approximate" (int8: reported
# apart, never a target). The float32 peers' answers are checked against HF eager before timing.
def load_contestants(directory: Path, threads: int, cache: Path) -> dict:
    """name -> (load seconds, call(ids) -> last_hidden_state as NumPy, role) for every contestant installed.

    ONNX Runtime and CTranslate2 are optional (skipped with a printed line when absent); their exported and
    converted models are made once under `cache` (see _common.onnx_model and _common.ct2_model) and their
    load times are those of the session / encoder from those files.
    """
    import torch
    import transformers

    import xlmr_np

    torch.set_num_threads(threads)
    contestants = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the masked-LM checkpoint's lm_head weights are unused by the base model
        start = time.perf_counter()
        ours = xlmr_np.XLMRobertaModel.from_pretrained(directory)
        contestants["xlmr_np"] = (time.perf_counter() - start, lambda ids: ours(input_ids=ids).last_hidden_state,
                                  "ours")
        contestants["xlmr_np one thread"] = (0.0, lambda ids: one_thread(ours, ids), "ours")
        transformers.logging.set_verbosity_error()
        for attention in ("eager", "sdpa"):
            start = time.perf_counter()
            hf = transformers.XLMRobertaModel.from_pretrained(directory, attn_implementation=attention,
                                                              dtype=torch.float32).eval()

            def call(ids, hf=hf):
                with torch.inference_mode():
                    return hf(input_ids=torch.from_numpy(ids)).last_hidden_state.numpy()

            contestants[f"HF {attention}"] = (time.perf_counter() - start, call, "peer")
    layers = json.loads((directory / "config.json").read_text())["num_hidden_layers"]
    if optional("onnxruntime") is not None and optional("onnx") is not None:
        path, stats = onnx_model(directory, cache / (directory.name + "-onnx"))
        print("  " + check_fusions(stats, layers), flush=True)
        start = time.perf_counter()
        session = ort_session(path, threads)
        contestants["ONNX Runtime (optimized)"] = (time.perf_counter() - start,
                                                   lambda ids: ort_hidden(session, ids, np.ones_like(ids)), "peer")
    ctranslate2 = optional("ctranslate2")
    if ctranslate2 is not None:
        path = ct2_model(directory, cache / (directory.name + "-ct2"))
        for compute_type, name, role in (("float32", "CTranslate2 float32", "peer"),
                                         ("int8", "CTranslate2 int8 (approximate)", "approximate")):
            start = time.perf_counter()
            encoder = ctranslate2.Encoder(str(path), device="cpu", compute_type=compute_type, intra_threads=threads)

            def call(ids, encoder=encoder):
                return ct2_hidden(encoder, ids, [ids.shape[1]] * ids.shape[0])

            contestants[name] = (time.perf_counter() - start, call, role)
    return contestants


def one_thread(ours, ids):
    """xlmr_np without its threaded encoder (XLMR_NP_THREADS=1): core.model.encoder, whose GEMMs use all of BLAS's
    threads and everything else one core."""
    previous = os.environ.get("XLMR_NP_THREADS")
    os.environ["XLMR_NP_THREADS"] = "1"
    try:
        return ours(input_ids=ids).last_hidden_state
    finally:
        if previous is None:
            del os.environ["XLMR_NP_THREADS"]
        else:
            os.environ["XLMR_NP_THREADS"] = previous


def time_alternating(contestants: dict, ids: np.ndarray, repeats: int) -> dict:
    """name -> list of seconds per forward; one warm-up each, then rounds in a rotating order, each call after
    a pause of SETTLE_SECONDS (_common.py: the previous library's spinning threads go to sleep first)."""
    names = list(contestants)
    for name in names:
        contestants[name][1](ids)
    times = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            time.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            contestants[name][1](ids)
            times[name].append(time.perf_counter() - start)
    return times


# --- where xlmr_np's time goes ----------------------------------------------------------------------------
# name in xlmr_np.core.model or a xlmr_np.runtime module -> phase. The one-thread path runs its GEMMs through
# core.model's `linear`; the threaded path's q, k, v through `project_qkv`, its column-split output projections
# through `partial_product`, and its fused sub-layers' products through `product_without_bias` (then
# `gelu_block`, `layer_norm` per block of rows); the fast kernel set's GELU is `gelu_in_place`.
PHASES = {"model.linear": "GEMMs", "threaded_encoder.partial_product": "GEMMs",
          "threaded_encoder.project_qkv": "GEMMs", "residual_norm.product_without_bias": "GEMMs",
          "bias_gelu.product_without_bias": "GEMMs",
          "model.attention": "attention", "threaded_encoder._own_attention": "attention",
          "model.softmax": "softmax", "gelu.gelu_in_place": "GELU", "bias_gelu.gelu_block": "GELU",
          "model.layer_norm": "LayerNorm", "residual_norm.layer_norm": "LayerNorm"}
PHASE_NAMES = ("GEMMs", "attention", "softmax", "GELU", "LayerNorm", "waiting", "rest")


def phase_times(call, ids, repeats: int, heads: int) -> dict:
    """Median self time per phase of xlmr_np's forward (_common.phase_profile over the functions in PHASES).
    "waiting" is the calling thread's time at the threaded path's barriers (the other threads finishing their
    share, and the hand-off)."""
    from xlmr_np.core import model
    from xlmr_np.runtime import bias_gelu, gelu, residual_norm, threaded_encoder

    modules = {"model": model, "threaded_encoder": threaded_encoder, "gelu": gelu, "bias_gelu": bias_gelu,
               "residual_norm": residual_norm}
    phases = {(modules[name.split(".")[0]], name.split(".")[1]): phase for name, phase in PHASES.items()}
    team = threaded_encoder._team(min(threaded_encoder.thread_count(), heads))
    return phase_profile(lambda: call(ids), team, phases, repeats, SETTLE_SECONDS, PHASE_NAMES)


# --- report -----------------------------------------------------------------------------------------------
def report(info, cfg, roofline, loads, diffs, rows, phases) -> str:
    """The Markdown report: machine, roofline, loading, contestants x shapes, ratio, per-phase profile."""
    shapes = [f"{row['batch']}x{row['tokens']}" for row in rows]
    names = list(rows[0]["tokens_per_s"])
    roles = rows[0]["roles"]
    lines = [machine_line(info), "",
             f"NumPy float32 GEMM ({info['gemm_size']}^3, median of 5): **{roofline:.1f} GFLOP/s** "
             f"(the roofline below); torch.mm on the same: {info['torch_gemm_gflops']:.1f} GFLOP/s. Loading: "
             + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in loads.items()) + ".", "",
             "last_hidden_state max |diff| against HF eager (1x128): "
             + ", ".join(f"{name} {diff:.1e}" for name, diff in diffs.items()) + ".", "",
             "| tokens/s (share of NumPy's GEMM rate) | " + " | ".join(shapes) + " |",
             "|---|" + "---:|" * len(shapes)]
    for name in names:
        label = f"{name}, max diff {diffs[name]:.1g}" if roles[name] == "approximate" else name
        cells = []
        for row in rows:
            share = "" if roles[name] == "approximate" else f" ({100 * row['gflops'][name] / roofline:.0f}%)"
            cells.append(f"{row['tokens_per_s'][name]:,.0f}{share}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| **xlmr_np / best float32 peer** | " + " | ".join(f"**{row['ratio']:.2f}** ({row['best_peer']})"
                                                                    for row in rows) + " |")
    lines += ["", "Where xlmr_np's time goes (median self time per forward of the calling thread, % of the total):",
              "", "| batch x tokens | path | total ms | " + " | ".join(PHASE_NAMES) + " | GEMM GFLOP/s |",
              "|---|---|---:|" + "---:|" * (len(PHASE_NAMES) + 1)]
    for (batch, tokens, path), times in phases.items():
        share = {k: 100 * v / times["total"] for k, v in times.items()}
        attention_flops = cfg["num_hidden_layers"] * 4 * batch * tokens * tokens * cfg["hidden_size"]
        gemm_flops = forward_flops(cfg, batch, tokens) - attention_flops
        lines.append(f"| {batch} x {tokens} | {path} | {1e3 * times['total']:.0f} | "
                     + " | ".join(f"{share.get(k, 0):.1f}%" for k in PHASE_NAMES)
                     + f" | {gemm_flops / times['GEMMs'] / 1e9:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: a small random checkpoint (hidden 256, 2 layers), 2 shapes, 2 rounds")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per shape (default 5)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    shapes = [(1, 128), (8, 128)] if args.quick else [(1, 128), (8, 128), (1, 512), (4, 512)]
    repeats = 2 if args.quick else args.repeats
    cfg = QUICK_CONFIG if args.quick else BASE_CONFIG

    threads = blas_threads()
    info = machine_info(threads)
    directory = ensure_checkpoint(CACHE / "xlmr-quick-random", cfg) if args.quick else ensure_checkpoint()
    print(f"BLAS threads {threads}; measuring the GEMM roofline ...", flush=True)
    info["gemm_size"] = 1024 if args.quick else 3072
    roofline = sgemm_rate(info["gemm_size"])
    contestants = load_contestants(directory, threads, CACHE)  # sets torch's threads
    info["torch_gemm_gflops"] = torch_sgemm_rate(info["gemm_size"])
    loads = {name: seconds for name, (seconds, _, _) in contestants.items() if name != "xlmr_np one thread"}
    roles = {name: role for name, (_, _, role) in contestants.items()}

    check = input_ids(1, 128, cfg["vocab_size"], seed=1)
    reference = contestants["HF eager"][1](check)
    diffs = {}
    for name in contestants:
        if name != "HF eager":
            diffs[name] = float(np.max(np.abs(contestants[name][1](check) - reference)))
            print(f"  {name} vs HF eager, last_hidden_state max |diff| at 1 x 128: {diffs[name]:.1e}", flush=True)

    rows, phases = [], {}
    for batch, tokens in shapes:
        ids = input_ids(batch, tokens, cfg["vocab_size"])
        times = time_alternating(contestants, ids, repeats)
        per_s = {name: batch * tokens / statistics.median(t) for name, t in times.items()}
        peers = {name: v for name, v in per_s.items() if roles[name] == "peer"}
        best_peer = max(peers, key=peers.get)
        gflops = {name: forward_flops(cfg, batch, tokens) / statistics.median(t) / 1e9 for name, t in times.items()}
        rows.append({"batch": batch, "tokens": tokens, "seconds": times, "tokens_per_s": per_s, "roles": roles,
                     "gflops": gflops, "best_peer": best_peer, "ratio": per_s["xlmr_np"] / peers[best_peer]})
        for path, name in (("threaded", "xlmr_np"), ("one thread", "xlmr_np one thread")):
            phases[(batch, tokens, path)] = phase_times(contestants[name][1], ids, 1 if args.quick else 3,
                                                        cfg["num_attention_heads"])
        print(f"  {batch} x {tokens}: " + ", ".join(f"{n} {v:,.0f} tok/s" for n, v in per_s.items())
              + f"; xlmr_np / {best_peer} {rows[-1]['ratio']:.2f}", flush=True)

    print()
    if args.quick:
        print(f"(--quick: the small random checkpoint {directory.name}, hidden {cfg['hidden_size']}, "
              f"{cfg['num_hidden_layers']} layers; not xlm-roberta-base's shapes)\n")
    print(report(info, cfg, roofline, loads, diffs, rows, phases))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "quick": args.quick, "config": cfg,
                                         "roofline_gflops": roofline, "load_seconds": loads, "max_diff": diffs,
                                         "rows": rows, "phases": {f"{b}x{t} {p}": v for (b, t, p), v in phases.items()}},
                                        indent=1))


if __name__ == "__main__":
    main()
