"""bge-m3-length inputs: one 8,192-token sequence, time and peak memory of xlmr_np against HF sdpa and eager.

The checkpoint: bench_forward.py's random xlm-roberta-base shapes with bge-m3's position table
(max_position_embeddings 8194: 8,192 tokens after the two rows before HF's first position), 1.13 GB, cached
as ~/.cache/xlmr_np_bench/xlm-roberta-base-random-8194. Input: batch 1, `--tokens` random ids (<s> ... </s>),
no padding.

Each contestant runs in its own fresh process (so one library's memory never counts for another's):
load, forward `--repeats` times (the first one included: at these lengths one-time costs are small against a
forward of tens of seconds), then report
- seconds per forward (median) and tokens/s;
- peak RSS of the process (VmHWM: loading and forwards), RSS after loading, and the peak during the forwards
  alone (VmHWM reset after loading through /proc/self/clear_refs);
- its last_hidden_state, compared with HF sdpa's (max |diff|).
Contestants: xlmr_np (its attention in blocks of query rows: memory linear in the length), HF sdpa
(torch's scaled_dot_product_attention), HF eager (the [1, 12, T, T] scores in full: ~3.2 GB per array at
8,192 tokens). Eager is skipped, with a printed line, when its estimated peak (three score-sized arrays plus
the weights) exceeds 80 % of the machine's available memory, or with --no-eager.

--quick: 1,024 tokens on a small body with the same 8,194 positions (vocabulary 8,002, 2 layers; 0.1 GB),
one forward each after a warm-up, every contestant in well under a minute.

Usage: python benchmarks/bench_long.py [--quick] [--tokens 8192] [--repeats 2] [--no-eager] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a clone without installing
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import available_memory_bytes, blas_threads, load_script, machine_info, machine_line, status_kb  # noqa: E402

FORWARD = load_script("bench_forward")
LONG_CONFIG = dict(FORWARD.BASE_CONFIG, max_position_embeddings=8194)
QUICK_CONFIG = dict(LONG_CONFIG, vocab_size=8002, num_hidden_layers=2)
CONTESTANTS = ("xlmr_np", "HF sdpa", "HF eager")


def child(name: str, directory: str, tokens: int, repeats: int, warmup: bool, output: str, threads: int) -> dict:
    """Runs in a fresh process: load one contestant, run its forwards, measure; saves last_hidden_state."""
    config = json.loads((Path(directory) / "config.json").read_text())
    ids = FORWARD.input_ids(1, tokens, config["vocab_size"])
    warnings.simplefilter("ignore")  # the masked-LM checkpoint's lm_head weights are unused
    if name == "xlmr_np":
        import xlmr_np

        model = xlmr_np.XLMRobertaModel.from_pretrained(directory)

        def forward():
            return model(input_ids=ids).last_hidden_state
    else:
        import torch
        import transformers

        torch.set_num_threads(threads)
        transformers.logging.set_verbosity_error()
        model = transformers.XLMRobertaModel.from_pretrained(directory, attn_implementation=name.split()[1],
                                                             dtype=torch.float32).eval()
        tensor = torch.from_numpy(ids)

        def forward():
            with torch.inference_mode():
                return model(input_ids=tensor).last_hidden_state.numpy()
    after_load = status_kb("VmRSS")
    load_peak = status_kb("VmHWM")
    with open("/proc/self/clear_refs", "w") as clear:  # VmHWM := current RSS (Linux >= 4.0)
        clear.write("5")
    if warmup:
        forward()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        hidden = forward()
        times.append(time.perf_counter() - start)
    forward_peak = status_kb("VmHWM")
    np.save(output, np.asarray(hidden, dtype=np.float32))
    return {"seconds": statistics.median(times), "all_seconds": times, "rss_after_load_mb": after_load / 1024,
            "peak_forward_mb": forward_peak / 1024, "peak_process_mb": max(load_peak, forward_peak) / 1024}


def run_child(name, directory, tokens, repeats, warmup, output, threads) -> dict:
    """One contestant in a fresh interpreter; its numbers as a dict."""
    command = [sys.executable, __file__, "--child", name, str(directory), str(tokens), str(repeats),
               str(int(warmup)), str(output), str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def eager_estimate_bytes(cfg: dict, tokens: int, weights_bytes: int) -> int:
    """HF eager's peak, roughly: scores, masked scores and probabilities [1, H, T, T] float32, plus the weights."""
    return 3 * cfg["num_attention_heads"] * tokens * tokens * 4 + weights_bytes


def report(info, cfg, tokens, rows, skipped, quick) -> str:
    """The Markdown table of one run."""
    lines = [machine_line(info), "",
             f"One sequence of {tokens:,} tokens (batch 1); checkpoint: random, hidden {cfg['hidden_size']}, "
             f"{cfg['num_hidden_layers']} layers, {cfg['num_attention_heads']} heads, "
             f"{cfg['max_position_embeddings']:,} positions, vocabulary {cfg['vocab_size']:,}"
             + (" (--quick: a small body)" if quick else "") + ". Each contestant in its own process; MB = MiB.", "",
             "| contestant | s per forward | tokens/s | peak RSS, process (MB) | RSS after load (MB) "
             "| peak RSS during forward (MB) | peak vs HF sdpa | max \\|diff\\| vs HF sdpa |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    sdpa = rows.get("HF sdpa")
    for name, row in rows.items():
        relative = f"{row['peak_process_mb'] / sdpa['peak_process_mb']:.2f}x" if sdpa else "-"
        lines.append(f"| {name} | {row['seconds']:.2f} | {tokens / row['seconds']:,.0f} | {row['peak_process_mb']:,.0f} "
                     f"| {row['rss_after_load_mb']:,.0f} | {row['peak_forward_mb']:,.0f} | {relative} "
                     f"| {row.get('max_diff', float('nan')):.1e} |")
    for name, why in skipped.items():
        lines.append(f"| {name} | skipped: {why} | | | | | | |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,024 tokens on a small body")
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=2, help="timed forwards per contestant (median)")
    parser.add_argument("--no-eager", action="store_true", help="skip HF eager (its T x T scores)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, directory, tokens, repeats, warmup, output, threads = args.child
        print(json.dumps(child(name, directory, int(tokens), int(repeats), bool(int(warmup)), output, int(threads))))
        return
    cfg = QUICK_CONFIG if args.quick else LONG_CONFIG
    tokens, repeats = (1024, 1) if args.quick else (args.tokens, args.repeats)
    if not 2 <= tokens <= cfg["max_position_embeddings"] - 2:
        raise SystemExit(f"--tokens must be between 2 and {cfg['max_position_embeddings'] - 2}")
    name = "xlmr-quick-random-8194" if args.quick else "xlm-roberta-base-random-8194"
    directory = FORWARD.ensure_checkpoint(FORWARD.CACHE / name, cfg)
    weights = (directory / "model.safetensors").stat().st_size
    with open(directory / "model.safetensors", "rb") as handle:  # into the page cache: every child starts warm
        while handle.read(64 * 2**20):
            pass
    threads = blas_threads()
    info = machine_info(threads)
    rows, skipped = {}, {}
    with tempfile.TemporaryDirectory(prefix="xlmr_np_bench_long_") as workdir:
        for contestant in CONTESTANTS:
            if contestant == "HF eager":
                need, have = eager_estimate_bytes(cfg, tokens, weights), available_memory_bytes()
                if args.no_eager or need > 0.8 * have:
                    skipped[contestant] = ("--no-eager" if args.no_eager else
                                           f"needs ~{need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB available")
                    print(f"  {contestant}: skipped ({skipped[contestant]})", flush=True)
                    continue
            output = Path(workdir) / f"{contestant.replace(' ', '_')}.npy"
            rows[contestant] = run_child(contestant, directory, tokens, repeats, args.quick, output, threads)
            rows[contestant]["output"] = output
            print(f"  {contestant}: {rows[contestant]['seconds']:.2f} s, peak {rows[contestant]['peak_process_mb']:,.0f} MB",
                  flush=True)
        reference = np.load(rows["HF sdpa"]["output"])
        for row in rows.values():
            row["max_diff"] = float(np.abs(np.load(row.pop("output")) - reference).max())
    print()
    print(report(info, cfg, tokens, rows, skipped, args.quick))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "config": cfg, "tokens": tokens, "quick": args.quick,
                                         "rows": rows, "skipped": skipped}, indent=1) + "\n")


if __name__ == "__main__":
    main()
