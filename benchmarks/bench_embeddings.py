"""Embedding throughput (padded against padding-free batches) and corpus-job memory with N worker processes.

1. encode: `--sentences` random multilingual sentences (5 to 120 tokens, shuffled) through
   xlmr_np.SentenceTransformer (mean pooling) with padding_free=False, True and None (auto: pack a batch when
   padding would more than AUTO_PADDING-fold it), alternating `--repeats` times;
   median sentences per second of each, and the ratio. Real tokens and padded tokens per batch are counted,
   so the table shows how much padding the length-sorted batches still had.
2. corpus: `embed_corpus` on the same sentences written to a .txt file, as a subprocess with workers=1, then
   workers=N for each N in --workers; every 0.1 s the benchmark sums RSS and PSS (proportional set size,
   /proc/<pid>/smaps_rollup) over the job's processes (the parent and its spawned workers) and keeps the
   peak. RSS counts each shared page of the memory-mapped weights once per process; PSS divides it among
   the processes sharing it, so summed PSS is the memory the job really takes.

Model: the xlm-roberta-base-shaped random checkpoint of bench_forward.py (1.12 GB, cached under
~/.cache/xlmr_np_bench, made if absent) as the body of a sentence-transformers folder. `--quick` instead
writes a small random one (vocabulary 250,002, hidden 128, 2 layers: 0.13 GB) to a temporary folder and
runs 200 sentences, 1 repeat, workers 1 and 2: a smoke run of every step in well under a minute.
Run the full benchmark on an otherwise idle machine (BLAS threads slow down by large factors otherwise).

Usage: python benchmarks/bench_embeddings.py [--quick] [--sentences 2000] [--batch-size 32] [--repeats 3]
       [--workers 2 4] [--json FILE]
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TOKENIZER_DIR = ROOT / "reference_outputs" / "tokenizer"
WORDS = ("the city council met on monday to discuss the new library and the old maps in its archive while "
         "les enfants jouaient dans le parc und die Eltern tranken Kaffee am Fluss cuando llegó la noticia").split()


def bench_forward():
    spec = importlib.util.spec_from_file_location("bench_forward", ROOT / "benchmarks" / "bench_forward.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_folder(quick: bool, workdir: Path) -> Path:
    """A sentence-transformers folder (mean pooling) around a random body, with the shipped tokenizer."""
    forward = bench_forward()
    folder = workdir / "st-model"
    folder.mkdir(parents=True, exist_ok=True)
    if quick:
        cfg = dict(forward.BASE_CONFIG, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=512)
        from xlmr_np.weights import save_file
        (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        save_file(forward.checkpoint_tensors(cfg), folder / "model.safetensors", metadata={"format": "pt"})
    else:
        base = forward.ensure_checkpoint()
        for name in ("config.json", "model.safetensors"):
            target = folder / name
            if not target.exists():
                os.symlink(base / name, target)
    for name in ("sentencepiece.bpe.model", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER_DIR / name, folder / name)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    width = json.loads((folder / "config.json").read_text())["hidden_size"]  # sentence-transformers 5.7 requires it
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": width, "pooling_mode": "mean"}))
    return folder


def sentences(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 100)))) for _ in range(count)]


def time_encode(folder, texts, batch_size, repeats):
    from xlmr_np.embeddings import SentenceTransformer

    models = {"padded": SentenceTransformer(folder, padding_free=False),
              "padding-free": SentenceTransformer(folder, padding_free=True),
              "auto": SentenceTransformer(folder)}
    seqs = models["padded"].tokenize(texts, max_length=512)
    ordered = sorted(len(s) for s in seqs)
    padded_tokens = sum(max(ordered[i:i + batch_size]) * len(ordered[i:i + batch_size])
                        for i in range(0, len(ordered), batch_size))
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.encode(texts, batch_size=batch_size)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"real_tokens": sum(ordered), "padded_tokens": padded_tokens,
            "sentences_per_second": {name: len(texts) / t for name, t in medians.items()},
            "seconds": medians, "speedup": medians["padded"] / medians["padding-free"]}


def tree_memory(pid: int):
    """(sum RSS, sum PSS) in bytes over pid and its descendants (Linux /proc)."""
    pids, frontier = [pid], [pid]
    while frontier:
        current = frontier.pop()
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                pids += kids
                frontier += kids
        except OSError:
            pass
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, pss, len(pids)


JOB = """
import sys
sys.path.insert(0, {root!r})
from xlmr_np.embeddings.corpus import embed_corpus
r = embed_corpus({model!r}, {source!r}, {output!r}, workers={workers}, batch_size={batch}, chunk_size={chunk},
                 restart=True)
print(r.seconds)
"""


def corpus_memory(folder, texts, workers, batch_size, workdir: Path):
    source = workdir / "corpus.txt"
    source.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    output = workdir / f"vectors-{workers}.npy"
    chunk = max(1, len(texts) // (4 * workers))
    script = JOB.format(root=str(ROOT), model=str(folder), source=str(source), output=str(output),
                        workers=workers, batch=batch_size, chunk=chunk)
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    peak_rss = peak_pss = processes = 0
    while child.poll() is None:
        rss, pss, count = tree_memory(child.pid)
        if pss > peak_pss:
            peak_rss, peak_pss, processes = rss, pss, count
        time.sleep(0.1)
    out = child.stdout.read()
    if child.returncode:
        raise SystemExit(f"corpus job with {workers} worker(s) failed")
    return {"workers": workers, "processes": processes, "peak_rss_mb": peak_rss / 2**20,
            "peak_pss_mb": peak_pss / 2**20, "wall_seconds": time.perf_counter() - start,
            "job_seconds": float(out.strip().splitlines()[-1])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.quick:
        args.sentences, args.repeats, args.workers = 200, 1, [2]
    workdir = Path(tempfile.mkdtemp(prefix="xlmr_np_bench_embed_"))
    try:
        folder = model_folder(args.quick, workdir)
        weights_mb = (folder / "model.safetensors").stat().st_size / 2**20
        texts = sentences(args.sentences)
        encode = time_encode(folder, texts, args.batch_size, args.repeats)
        memory = [corpus_memory(folder, texts, n, args.batch_size, workdir) for n in [1] + args.workers]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {"date": datetime.date.today().isoformat(), "machine": platform.platform(),
              "cores": os.cpu_count(), "numpy": np.__version__, "quick": args.quick, "weights_mb": weights_mb,
              "sentences": args.sentences, "batch_size": args.batch_size, "encode": encode, "corpus": memory}
    print(f"## Embeddings ({'quick smoke run' if args.quick else 'full'}; {result['date']}, {result['cores']} cores, "
          f"weights {weights_mb:.0f} MB)\n")
    print(f"{args.sentences} sentences, batch {args.batch_size}: {encode['real_tokens']} real tokens, "
          f"{encode['padded_tokens']} in padded batches\n")
    print("| path | sentences/s | s |\n|---|---|---|")
    for name in ("padded", "padding-free", "auto"):
        print(f"| {name} | {encode['sentences_per_second'][name]:.1f} | {encode['seconds'][name]:.2f} |")
    print(f"\npadding-free speed-up: {encode['speedup']:.2f}x\n")
    print("| workers | processes | peak RSS (sum) MB | peak PSS (sum) MB | job s |\n|---|---|---|---|---|")
    for row in memory:
        print(f"| {row['workers']} | {row['processes']} | {row['peak_rss_mb']:.0f} | {row['peak_pss_mb']:.0f} | "
              f"{row['job_seconds']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
