"""Forward-pass speed of xlmr_np against Hugging Face transformers (eager and sdpa attention) on the CPU.

One run does everything, on an xlm-roberta-base-shaped checkpoint with random weights (vocabulary 250,002,
hidden 768, 12 layers, 12 heads, inner 3072, 514 positions; 1.1 GB float32 safetensors, written once to
~/.cache/xlmr_np_bench or $XLMR_NP_BENCH_CACHE):

1. NumPy's own float32 GEMM rate on this machine (median of 5 products of two 3072 x 3072 matrices): the
   roofline the forward pass is measured against.
2. XLMRobertaModel forward at (batch, tokens) = (1, 128), (8, 128), (1, 512), (4, 512): xlmr_np, xlmr_np with
   XLMR_NP_THREADS=1 (core.model.encoder, without the threaded encoder of runtime/threaded_encoder.py), HF eager and HF
   sdpa, timed in alternation (the order rotates every round), torch.inference_mode, torch threads set to
   NumPy's BLAS thread count. Reported: median tokens/s, the ratio xlmr_np / best HF, and xlmr_np's achieved
   GFLOP/s (matrix-product FLOPs: projections, FFN, pooler, q k^T and probs v) as a fraction of the roofline.
3. Where xlmr_np's time goes, per phase, on both paths: GEMMs, attention (q k^T, probs v, scaling, masking,
   head split/merge), softmax, GELU, LayerNorm, waiting at the threads' barriers, and the rest (embedding
   gather, residual adds and partial sums, Python), by wrapping those functions with timers (self time of
   the calling thread: nested calls are not counted twice).

Prints Markdown tables with the machine (CPU, cores, BLAS, versions, date) for docs/performance.md.
Run it on an otherwise idle machine: with other processes on the cores, spinning BLAS threads slow down by
large and varying factors.

Usage: python benchmarks/bench_forward.py [--quick] [--repeats 7] [--json results.json]
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a clone without installing

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


def ensure_checkpoint(directory: Path = CACHE / "xlm-roberta-base-random") -> Path:
    """Create the random xlm-roberta-base-shaped checkpoint once; later runs reuse it."""
    from xlmr_np.weights import save_file

    weights = directory / "model.safetensors"
    if weights.exists() and (directory / "config.json").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"creating the random xlm-roberta-base checkpoint in {directory} (once) ...", flush=True)
    (directory / "config.json").write_text(json.dumps(BASE_CONFIG, indent=2) + "\n")
    save_file(checkpoint_tensors(BASE_CONFIG), weights, metadata={"format": "pt"})  # atomic: complete or absent
    print(f"  {weights.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s", flush=True)
    return directory



# --- the machine ------------------------------------------------------------------------------------------
def blas_threads() -> int:
    """NumPy's BLAS thread count, asked of the loaded OpenBLAS itself (else the environment, else the CPUs)."""
    try:
        libraries = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()}
    except OSError:
        libraries = set()
    for library in sorted(libraries):
        lib = ctypes.CDLL(library)
        for symbol in ("openblas_get_num_threads", "openblas_get_num_threads64_",
                       "scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads"):
            function = getattr(lib, symbol, None)
            if function is not None:
                return int(function())
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine_info(threads: int) -> dict:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
        "numpy": np.__version__, "blas": f"{blas.get('name')} {blas.get('version')}",
        "torch": torch.__version__, "torch_blas": "MKL" if torch.backends.mkl.is_available() else "other",
        "transformers": transformers.__version__,
    }


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


def load_contestants(directory: Path, threads: int) -> dict:
    """name -> (load seconds, call(ids) that runs one forward and returns last_hidden_state as NumPy)."""
    import torch
    import transformers

    import xlmr_np

    torch.set_num_threads(threads)
    contestants = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the masked-LM checkpoint's lm_head weights are unused by the base model
        start = time.perf_counter()
        ours = xlmr_np.XLMRobertaModel.from_pretrained(directory)
        contestants["xlmr_np"] = (time.perf_counter() - start, lambda ids: ours(input_ids=ids).last_hidden_state)
        contestants["xlmr_np one thread"] = (0.0, lambda ids: one_thread(ours, ids))
        transformers.logging.set_verbosity_error()
        for attention in ("eager", "sdpa"):
            start = time.perf_counter()
            hf = transformers.XLMRobertaModel.from_pretrained(directory, attn_implementation=attention,
                                                              dtype=torch.float32).eval()

            def call(ids, hf=hf):
                with torch.inference_mode():
                    return hf(input_ids=torch.from_numpy(ids)).last_hidden_state.numpy()

            contestants[f"HF {attention}"] = (time.perf_counter() - start, call)
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


# Pause before each timed call: after a call, OpenBLAS's idle threads spin for up to ~0.1 s (and OpenMP's for a
# while) before sleeping, which would slow down whichever library runs next on the same cores.
SETTLE_SECONDS = 0.25


def time_alternating(contestants: dict, ids: np.ndarray, repeats: int) -> dict:
    """name -> list of seconds per forward; one warm-up each, then rounds in a rotating order."""
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
# name in xlmr_np.core.model, xlmr_np.runtime.threaded_encoder or xlmr_np.runtime.gelu -> phase. Both paths
# run their q, k, v and FFN-in GEMMs through core.model's `linear`; the threaded path's output projections are
# `partial_product`; the fast kernel set's GELU is `gelu_in_place` (looked up when the activation is chosen).
PHASES = {"model.linear": "GEMMs", "threaded_encoder.partial_product": "GEMMs",
          "model.attention": "attention", "model.softmax": "softmax", "gelu.gelu_in_place": "GELU",
          "model.layer_norm": "LayerNorm"}
PHASE_NAMES = ("GEMMs", "attention", "softmax", "GELU", "LayerNorm", "waiting", "rest")


def phase_times(call, ids, repeats: int) -> dict:
    """Median self time per phase of xlmr_np's forward, by wrapping the functions named in PHASES.

    Only the calling thread is timed: on the threaded path (runtime/threaded_encoder.py) every thread runs the same
    phases on its share at the same time, so the caller's timeline is the forward's. "waiting" is its time at
    the barriers between phases (the other threads finishing their share, and the hand-off).
    """
    import threading

    from xlmr_np.core import model
    from xlmr_np.runtime import gelu, threaded_encoder

    spent, stack = {}, []
    main_thread = threading.main_thread()

    def timed(phase, function):
        def wrapper(*args, **kwargs):
            if threading.current_thread() is not main_thread:
                return function(*args, **kwargs)
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = stack.pop()
                spent[phase] = spent.get(phase, 0.0) + elapsed - nested
                if stack:
                    stack[-1] += elapsed
        return wrapper

    class TimedBarrier:
        def __init__(self, barrier):
            self.barrier, self.wait = barrier, timed("waiting", barrier.wait)

        def __getattr__(self, name):  # abort, reset
            return getattr(self.barrier, name)

    modules = {"model": model, "threaded_encoder": threaded_encoder, "gelu": gelu}
    originals = {name: getattr(modules[name.split(".")[0]], name.split(".")[1]) for name in PHASES}
    patched = {name: timed(phase, originals[name]) for name, phase in PHASES.items()}
    team = threaded_encoder._team(min(threaded_encoder.thread_count(), BASE_CONFIG["num_attention_heads"]))
    barrier = team.barrier
    runs = []
    try:
        for name, function in patched.items():
            setattr(modules[name.split(".")[0]], name.split(".")[1], function)
        team.barrier = TimedBarrier(barrier)
        for _ in range(repeats):
            time.sleep(SETTLE_SECONDS)
            spent.clear()
            start = time.perf_counter()
            call(ids)
            total = time.perf_counter() - start
            runs.append({**spent, "rest": total - sum(spent.values()), "total": total})
    finally:
        for name, function in originals.items():
            setattr(modules[name.split(".")[0]], name.split(".")[1], function)
        team.barrier = barrier
    return {phase: statistics.median(run.get(phase, 0.0) for run in runs) for phase in PHASE_NAMES + ("total",)}


# --- report -----------------------------------------------------------------------------------------------
def report(info, roofline, loads, rows, phases) -> str:
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores; {info['threads']} threads for NumPy's BLAS "
             f"and for torch. NumPy {info['numpy']} ({info['blas']}), torch {info['torch']} "
             f"({info['torch_blas']}), transformers {info['transformers']}, Python {info['python']}; {info['date']}.",
             "",
             f"NumPy float32 GEMM ({info['gemm_size']}^3, median of 5): **{roofline:.1f} GFLOP/s** "
             f"(the roofline below); torch.mm on the same: {info['torch_gemm_gflops']:.1f} GFLOP/s. Loading: "
             + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in loads.items()) + ".",
             "",
             "| batch x tokens | xlmr_np tokens/s | HF eager tokens/s | HF sdpa tokens/s | xlmr_np / best HF "
             "| xlmr_np GFLOP/s | % of GEMM roofline | xlmr_np one thread tokens/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        per_s = row["tokens_per_s"]
        lines.append(f"| {row['batch']} x {row['tokens']} | {per_s['xlmr_np']:,.0f} | {per_s['HF eager']:,.0f} "
                     f"| {per_s['HF sdpa']:,.0f} | **{row['ratio']:.2f}** | {row['gflops']:.1f} "
                     f"| {100 * row['gflops'] / roofline:.0f}% | {per_s['xlmr_np one thread']:,.0f} |")
    lines += ["", "Where xlmr_np's time goes (median self time per forward of the calling thread, % of the total):",
              "", "| batch x tokens | path | total ms | " + " | ".join(PHASE_NAMES) + " | GEMM GFLOP/s |",
              "|---|---|---:|" + "---:|" * (len(PHASE_NAMES) + 1)]
    for (batch, tokens, path), times in phases.items():
        share = {k: 100 * v / times["total"] for k, v in times.items()}
        gemm_flops = forward_flops(BASE_CONFIG, batch, tokens) - 12 * 4 * batch * tokens * tokens * 768
        lines.append(f"| {batch} x {tokens} | {path} | {1e3 * times['total']:.0f} | "
                     + " | ".join(f"{share.get(k, 0):.1f}%" for k in PHASE_NAMES)
                     + f" | {gemm_flops / times['GEMMs'] / 1e9:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 shapes, 2 rounds, small GEMM")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per shape (default 7)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    shapes = [(1, 128), (8, 128)] if args.quick else [(1, 128), (8, 128), (1, 512), (4, 512)]
    repeats = 2 if args.quick else args.repeats

    threads = blas_threads()
    info = machine_info(threads)
    directory = ensure_checkpoint()
    print(f"BLAS threads {threads}; measuring the GEMM roofline ...", flush=True)
    info["gemm_size"] = 1024 if args.quick else 3072
    roofline = sgemm_rate(info["gemm_size"])
    contestants = load_contestants(directory, threads)  # sets torch's threads
    info["torch_gemm_gflops"] = torch_sgemm_rate(info["gemm_size"])
    loads = {name: seconds for name, (seconds, _) in contestants.items() if name != "xlmr_np one thread"}

    check = input_ids(1, 128, BASE_CONFIG["vocab_size"], seed=1)
    reference = contestants["HF eager"][1](check)
    for name in ("xlmr_np", "xlmr_np one thread", "HF sdpa"):
        diff = float(np.max(np.abs(contestants[name][1](check) - reference)))
        print(f"  {name} vs HF eager, last_hidden_state max |diff| at 1 x 128: {diff:.1e}", flush=True)

    rows, phases = [], {}
    for batch, tokens in shapes:
        ids = input_ids(batch, tokens, BASE_CONFIG["vocab_size"])
        times = time_alternating(contestants, ids, repeats)
        per_s = {name: batch * tokens / statistics.median(t) for name, t in times.items()}
        best_hf = max(v for name, v in per_s.items() if name.startswith("HF"))
        gflops = forward_flops(BASE_CONFIG, batch, tokens) / statistics.median(times["xlmr_np"]) / 1e9
        rows.append({"batch": batch, "tokens": tokens, "seconds": times, "tokens_per_s": per_s,
                     "ratio": per_s["xlmr_np"] / best_hf, "gflops": gflops})
        for path, name in (("threaded", "xlmr_np"), ("one thread", "xlmr_np one thread")):
            phases[(batch, tokens, path)] = phase_times(contestants[name][1], ids, 1 if args.quick else 3)
        print(f"  {batch} x {tokens}: " + ", ".join(f"{n} {v:,.0f} tok/s" for n, v in per_s.items())
              + f"; ratio {rows[-1]['ratio']:.2f}", flush=True)

    print()
    print(report(info, roofline, loads, rows, phases))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "roofline_gflops": roofline, "load_seconds": loads,
                                         "rows": rows, "phases": {f"{b}x{t} {p}": v for (b, t, p), v in phases.items()}},
                                        indent=1))


if __name__ == "__main__":
    main()
