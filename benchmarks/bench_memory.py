"""Loading time and memory of xlmr_np against Hugging Face transformers, each model in its own process.

On the xlm-roberta-base-shaped random checkpoint of bench_forward.py (1.1 GB float32 safetensors, cached under
~/.cache/xlmr_np_bench), for XLMRobertaModel and XLMRobertaForMaskedLM, xlmr_np and HF (eager attention):

- ready: seconds from calling from_pretrained to holding a model that can run (HF: after .eval());
- RSS growth after load: resident memory after from_pretrained minus before it (libraries already imported);
- peak RSS during a forward at batch 8 x 128 tokens: the process's high-water mark (VmHWM), reset just before
  the call through /proc/self/clear_refs, so it is the peak of the forward alone (weights + activations +
  outputs; the masked LM's logits are 8 x 128 x 250,002 float32 = 1.02 GB by themselves).

File pages count in RSS once a process touches them: xlmr_np maps the file and touches only what it reads.
Times are with the file in the page cache (the parent reads it once first); a cold read from disk adds the
same for every library. Each measurement is the median of --repeats fresh processes.

Usage: python benchmarks/bench_memory.py [--repeats 3] [--json memory.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a clone without installing
sys.path.insert(0, str(ROOT / "benchmarks"))

CLASSES = ("XLMRobertaModel", "XLMRobertaForMaskedLM")
LIBRARIES = ("xlmr_np", "HF")


def status_kb(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in kB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}; this benchmark needs Linux")


def reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0: writing 5 to clear_refs)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def child(library: str, class_name: str, directory: str) -> dict:
    """Runs in a fresh process: load, measure, forward, measure; returns the numbers."""
    import warnings

    import numpy as np

    from bench_forward import input_ids

    warnings.simplefilter("ignore")
    ids = input_ids(8, 128, 250002)
    if library == "xlmr_np":
        import xlmr_np

        before = status_kb("VmRSS")
        start = time.perf_counter()
        model = getattr(xlmr_np, class_name).from_pretrained(directory)
        ready = time.perf_counter() - start

        def forward():
            return model(input_ids=ids)
    else:
        import torch
        import transformers

        transformers.logging.set_verbosity_error()
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        before = status_kb("VmRSS")
        start = time.perf_counter()
        model = getattr(transformers, class_name).from_pretrained(directory, attn_implementation="eager",
                                                                  dtype=torch.float32).eval()
        ready = time.perf_counter() - start
        tensor = torch.from_numpy(ids)

        def forward():
            with torch.inference_mode():
                return model(input_ids=tensor)
    after_load = status_kb("VmRSS")
    reset_peak()
    start = time.perf_counter()
    out = forward()
    seconds = time.perf_counter() - start
    peak = status_kb("VmHWM")
    first = out[0]
    assert tuple(first.shape[:2]) == (8, 128) and np.isfinite(float(first[0, 0, 0]))
    return {"ready_s": ready, "rss_before_mb": before / 1024, "rss_growth_mb": (after_load - before) / 1024,
            "rss_after_load_mb": after_load / 1024, "peak_forward_mb": peak / 1024, "forward_s": seconds}


def run_child(library, class_name, directory) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", library, class_name, str(directory)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{library} {class_name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement (median)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--child", nargs=3, metavar=("LIBRARY", "CLASS", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    from bench_forward import ensure_checkpoint

    directory = ensure_checkpoint()
    weights = directory / "model.safetensors"
    size_mb = weights.stat().st_size / 2**20
    with open(weights, "rb") as handle:  # into the page cache, so every process starts warm
        while handle.read(64 * 2**20):
            pass
    results = {}
    for class_name in CLASSES:
        for library in LIBRARIES:
            runs = [run_child(library, class_name, directory) for _ in range(args.repeats)]
            results[(class_name, library)] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            print(f"  {library} {class_name}: " + ", ".join(f"{k} {v:.3g}" for k, v in
                                                          results[(class_name, library)].items()), flush=True)

    print()
    print(f"Checkpoint: {weights.stat().st_size / 1e9:.2f} GB float32 safetensors ({size_mb:,.0f} MiB), "
          f"in the page cache; median of {args.repeats} fresh processes each. MB = MiB.")
    print()
    print("| class | library | ready (s) | RSS growth after load (MB) | peak RSS during 8 x 128 forward (MB) "
          "| peak / file size |")
    print("|---|---|---:|---:|---:|---:|")
    for (class_name, library), r in results.items():
        print(f"| {class_name} | {library} | {r['ready_s']:.3f} | {r['rss_growth_mb']:,.0f} "
              f"| {r['peak_forward_mb']:,.0f} | {r['peak_forward_mb'] / size_mb:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({f"{c} {lib}": r for (c, lib), r in results.items()}, indent=1))


if __name__ == "__main__":
    main()
