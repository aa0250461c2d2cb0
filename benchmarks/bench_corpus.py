"""Real-corpus workloads: sentence embeddings, the corpus job on N workers, and pipelines, on gettext sentences.

The corpus: `--sentences` (default 2,000; 10,000 for the issue's corpus size, ~5x the time of (a) and (b))
translated messages from the gettext catalogs under
/usr/share/locale (*.mo), cleaned as tools/train_demo_model.py's `clean_line` cleans them (imported from
there: markup, placeholders and code dropped), drawn seeded across locales (each locale's messages shuffled,
then taken in turn from every locale until enough): mixed scripts and mixed lengths, mostly short UI strings
with a tail of long help texts. Cached as a .txt under ~/.cache/xlmr_np_bench. Reported: the token-length
distribution and the padding share of length-sorted batches (and of unsorted ones, for comparison).

Workloads (every contestant's output is checked against the reference library's: max |diff|):

(a) sentence embeddings (mean pooling, normalize_embeddings=True) of the whole corpus, batch `--batch-size`,
    through xlmr_np.embeddings.SentenceTransformer padded (padding_free=False), padding-free (True) and auto
    (None: pack a batch when its padded form holds more than EmbeddingModel.AUTO_PADDING times its real
    tokens), against sentence_transformers.SentenceTransformer on torch (same folder) and ONNX Runtime (the
    model exported and optimised as in bench_forward.py; mean pooling and normalisation in NumPy). All get
    the same length-sorted batches: xlmr_np's own order (by token count); sentence-transformers and ONNX
    Runtime are called once per batch of that order (sentence-transformers' encode sorts by characters, not
    tokens, so its own order would give different batches). The contestants alternate batch by batch (the
    order rotating, a 0.25 s pause before each), so all see the same machine load; times are summed.
(b) the corpus job: xlmr_np.embeddings.corpus.embed_corpus (what `python -m xlmr_np embed --input corpus.txt
    --output out.npy --workers N` runs) in a subprocess, with 1 worker (one process, BLAS on every core: the
    threaded encoder) and with N workers (spawned, each with cores // N BLAS threads; on 2 cores, 2 workers
    of one thread each), sampling the summed RSS and PSS of the process tree every 0.1 s
    (benchmarks/bench_embeddings.py's `corpus_memory`): tokens/s and peak memory.
(c) fill-mask (top_k=5, one word of each sentence replaced by <mask>) and text-classification on the same
    corpus sentences (those within the models' 128 tokens; `--pipeline-sentences` of them) with the shipped
    models/xlmr-demo and models/xlmr-langid, xlmr_np.pipeline against transformers.pipeline (dtype float32:
    both compute in float32 from the float16 files), the same batch_size, alternating chunk by chunk; checked: same top-5 tokens / labels, max |score diff|.

`--auto-padding-sweep`: tokens/s of the padded and the packed path on single batches built to a given
padding ratio (padded tokens / real tokens: one sequence of 48 tokens, the others shorter; batch
`--batch-size`), for ratios 1.0-4.0, median of 3 calls each, and the crossover ratio, to tune
EmbeddingModel.AUTO_PADDING (xlmr_np/embeddings/base.py); about 2-3 minutes on 2 cores. The sweep alone:
`--only sweep`.

Model for (a) and (b): the xlm-roberta-base-shaped random body of bench_forward.py (cached under
~/.cache/xlmr_np_bench) in a sentence-transformers folder with the shipped tokenizer (bench_embeddings.py's
`model_folder`). `--quick`: a small random body (hidden 128, 2 layers), 300 sentences, pipelines on 40 of
them, every workload, in about a minute (the corpus is read from the catalogs once, ~20 s, then cached).

Usage: python benchmarks/bench_corpus.py [--quick] [--sentences 2000] [--batch-size 32] [--workers 2]
       [--pipeline-sentences 1000] [--auto-padding-sweep] [--only embeddings corpus-job pipelines sweep] [--json FILE]
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a clone without installing
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import (blas_threads, load_script, machine_info, machine_line, onnx_model, optional,  # noqa: E402
                     ort_hidden, ort_session, settle)

CACHE = load_script("bench_forward").CACHE


# --- the corpus -------------------------------------------------------------------------------------------
def catalog_tools():
    """tools/train_demo_model.py as a module: catalog_files, read_catalog, clean_line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_demo_model", ROOT / "tools" / "train_demo_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gettext_corpus(count: int, seed: int = 0) -> list:
    """`count` distinct cleaned translations drawn across locales (see the module docstring), cached."""
    cached = CACHE / f"gettext-corpus-{count}-{seed}.txt"
    if cached.exists():
        return cached.read_text(encoding="utf-8").splitlines()
    tools = catalog_tools()
    pools = collections.defaultdict(set)  # locale -> its cleaned translated lines
    for path in tools.catalog_files():
        locale = Path(path).parts[-3]
        try:
            pairs = tools.read_catalog(path)
        except Exception:  # noqa: BLE001 - a few catalogs declare the wrong charset; the training tool skips them too
            continue
        for _, translation in pairs:
            for line in translation.split("\n"):
                line = tools.clean_line(line)
                if line is not None:
                    pools[locale].add(line)
    rng = np.random.default_rng(seed)
    queues = {locale: list(rng.permutation(sorted(lines))) for locale, lines in sorted(pools.items())}
    seen, texts = set(), []
    while len(texts) < count and any(queues.values()):
        for locale in rng.permutation(sorted(queues)):
            if queues[locale] and len(texts) < count:
                text = str(queues[locale].pop())
                if text not in seen:
                    seen.add(text)
                    texts.append(text)
    if len(texts) < count:
        raise SystemExit(f"the catalogs under /usr/share/locale hold only {len(texts)} usable sentences")
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    return texts


def length_batches(lengths, batch_size: int) -> list:
    """Rows of each batch, in xlmr_np's order (EmbeddingModel.token_states: sorted by token count, stable)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def corpus_stats(lengths, batch_size: int) -> dict:
    """Token-length percentiles and the padding share of sorted and unsorted batches."""
    lengths = np.asarray(lengths)

    def padded(batches):
        return sum(int(lengths[rows].max()) * len(rows) for rows in batches)

    unsorted = [list(range(i, min(i + batch_size, len(lengths)))) for i in range(0, len(lengths), batch_size)]
    real = int(lengths.sum())
    sorted_padded, unsorted_padded = padded(length_batches(lengths.tolist(), batch_size)), padded(unsorted)
    return {"sentences": len(lengths), "real_tokens": real, "mean": float(lengths.mean()),
            "percentiles": {p: int(np.percentile(lengths, p)) for p in (10, 25, 50, 75, 90, 99)},
            "max": int(lengths.max()), "sorted_padded_tokens": sorted_padded, "unsorted_padded_tokens": unsorted_padded,
            "sorted_padding_share": 1 - real / sorted_padded, "unsorted_padding_share": 1 - real / unsorted_padded}


# --- (a) sentence embeddings ------------------------------------------------------------------------------
def st_folder(quick: bool, workdir: Path) -> Path:
    """bench_embeddings.py's sentence-transformers folder (mean pooling), which both libraries load."""
    return load_script("bench_embeddings").model_folder(quick, workdir)


def embedding_contestants(folder: Path, onnx_dir: Path, threads: int) -> dict:
    """name -> encode(texts of one batch) -> normalised embeddings [n, D]; the reference is "sentence-transformers"."""
    import torch
    import sentence_transformers

    from xlmr_np.embeddings import SentenceTransformer

    torch.set_num_threads(threads)
    contestants = {}
    for name, padding_free in (("xlmr_np padded", False), ("xlmr_np padding-free", True), ("xlmr_np auto", None)):
        model = SentenceTransformer(folder, padding_free=padding_free)
        contestants[name] = (lambda texts, model=model:
                             model.encode(texts, batch_size=len(texts), normalize_embeddings=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    contestants["sentence-transformers"] = (lambda texts: reference.encode(
        texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False))
    if optional("onnxruntime") is not None and optional("onnx") is not None:
        path, _ = onnx_model(folder, onnx_dir)
        session = ort_session(path, threads)
        tokenizer = SentenceTransformer(folder)

        def ort_encode(texts):
            sequences = tokenizer.tokenize(texts)
            width = max(len(s) for s in sequences)
            ids = np.full((len(sequences), width), tokenizer.config.pad_token_id, dtype=np.int64)  # [B, T]
            mask = np.zeros_like(ids)
            for row, seq in enumerate(sequences):
                ids[row, :len(seq)], mask[row, :len(seq)] = seq, 1
            hidden = ort_hidden(session, ids, mask)  # [B, T, D]
            pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)  # [B, D]
            return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

        contestants["ONNX Runtime (optimized)"] = ort_encode
    return contestants


def time_embeddings(contestants: dict, texts: list, batches: list) -> dict:
    """Every contestant over every batch, alternating batch by batch (rotating order, a pause before each).

    Returns {"seconds": name -> summed seconds, "max_diff": name -> max |diff| against sentence-transformers}.
    """
    names = list(contestants)
    for name in names:  # warm-up on the first batch
        contestants[name]([texts[i] for i in batches[0]])
    seconds = dict.fromkeys(names, 0.0)
    outputs = {name: [None] * len(texts) for name in names}
    for index, rows in enumerate(batches):
        chunk = [texts[i] for i in rows]
        for name in names[index % len(names):] + names[:index % len(names)]:
            settle()
            start = time.perf_counter()
            vectors = contestants[name](chunk)
            seconds[name] += time.perf_counter() - start
            for row, vector in zip(rows, np.asarray(vectors)):
                outputs[name][row] = vector
    reference = np.stack(outputs["sentence-transformers"])
    diffs = {name: float(np.abs(np.stack(outputs[name]) - reference).max()) for name in names}
    return {"seconds": seconds, "max_diff": diffs}


# --- (c) pipelines ----------------------------------------------------------------------------------------
def masked(text: str) -> str:
    """The text with its middle word replaced by <mask> (or <mask> appended when it is one word)."""
    words = text.split(" ")
    if len(words) < 2:
        return text + " <mask>"
    words[len(words) // 2] = "<mask>"
    return " ".join(words)


def pipeline_workload(texts: list, count: int, batch_size: int, threads: int) -> list:
    """fill-mask and text-classification, xlmr_np against transformers.pipeline: a row per task."""
    import torch
    import transformers

    import xlmr_np

    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    rows = []
    for task, model in (("fill-mask", "xlmr-demo"), ("text-classification", "xlmr-langid")):
        directory = ROOT / "models" / model
        ours = xlmr_np.pipeline(task, model=directory, batch_size=batch_size)
        limit = json.loads((directory / "config.json").read_text())["max_position_embeddings"] - 2
        inputs = [masked(t) if task == "fill-mask" else t for t in texts]
        inputs = [t for t in inputs if len(ours.tokenizer(t)["input_ids"]) <= limit][:count]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # dtype float32: HF would otherwise compute in the shipped files' float16 (config.json "dtype")
            theirs = transformers.pipeline(task, model=str(directory), device="cpu", batch_size=batch_size,
                                           dtype=torch.float32)
        options = {"top_k": 5} if task == "fill-mask" else {}
        calls = {"xlmr_np": lambda chunk: ours(chunk, **options), "HF pipeline": lambda chunk: theirs(chunk, **options)}
        seconds, results = {name: 0.0 for name in calls}, {name: [] for name in calls}
        chunk_size = max(batch_size, 100)
        for name in calls:
            calls[name](inputs[:batch_size])  # warm-up
        for index, begin in enumerate(range(0, len(inputs), chunk_size)):
            chunk = inputs[begin:begin + chunk_size]
            for name in list(calls)[index % 2:] + list(calls)[:index % 2]:
                settle()
                start = time.perf_counter()
                with torch.inference_mode():
                    results[name] += calls[name](chunk)
                seconds[name] += time.perf_counter() - start
        if task == "fill-mask":
            same = sum([c["token"] for c in a] == [c["token"] for c in b]
                       for a, b in zip(results["xlmr_np"], results["HF pipeline"]))
            diff = max(abs(c["score"] - d["score"]) for a, b in zip(results["xlmr_np"], results["HF pipeline"])
                       for c, d in zip(a, b))
        else:
            same = sum(a["label"] == b["label"] for a, b in zip(results["xlmr_np"], results["HF pipeline"]))
            diff = max(abs(a["score"] - b["score"]) for a, b in zip(results["xlmr_np"], results["HF pipeline"]))
        rows.append({"task": task, "model": model, "inputs": len(inputs), "seconds": seconds, "same": same,
                     "max_score_diff": diff})
    return rows


# --- the AUTO_PADDING sweep -------------------------------------------------------------------------------
def sweep_batch(ratio: float, batch: int, longest: int, vocab: int, rng) -> list:
    """`batch` sequences of random ids, one `longest` long and the others of one shorter length, so that the
    padded batch holds about `ratio` times its real tokens."""
    short = max(3, round((batch * longest / ratio - longest) / (batch - 1)))
    lengths = [longest] + [min(short, longest)] * (batch - 1)
    return [[0] + rng.integers(3, vocab, size=n - 2).tolist() + [2] for n in lengths]


def auto_padding_sweep(folder: Path, batch: int, longest: int, repeats: int) -> list:
    """Rows of (ratio, padded tokens/s, packed tokens/s) on single batches; tokens/s counts real tokens."""
    from xlmr_np.embeddings import SentenceTransformer

    padded, packed = SentenceTransformer(folder, padding_free=False), SentenceTransformer(folder, padding_free=True)
    rng = np.random.default_rng(0)
    rows = []
    for ratio in (1.0, 1.1, 1.2, 1.3, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0):
        sequences = sweep_batch(ratio, batch, longest, padded.config.vocab_size, rng)
        real = sum(len(s) for s in sequences)
        times = {"padded": [], "packed": []}
        for model in (padded, packed):
            model.batch_states(sequences)  # warm-up
        for _ in range(repeats):
            for name, model in (("padded", padded), ("packed", packed)):
                settle()
                start = time.perf_counter()
                model.batch_states(sequences)
                times[name].append(time.perf_counter() - start)
        rows.append({"ratio": longest * batch / real, "real_tokens": real,
                     **{name: real / statistics.median(t) for name, t in times.items()}})
    return rows


def crossover(rows: list):
    """The smallest measured padding ratio from which the packed path is faster at every larger ratio."""
    for index, row in enumerate(rows):
        if all(r["packed"] > r["padded"] for r in rows[index:]):
            return row["ratio"]
    return None


# --- report -----------------------------------------------------------------------------------------------
def report(result: dict) -> str:
    """The Markdown tables of one run."""
    stats, batch = result["corpus"], result["batch_size"]
    p = stats["percentiles"]
    lines = [machine_line(result["machine"]), "",
             f"Corpus: {stats['sentences']:,} gettext sentences from {result['locales']} (cleaned as "
             f"tools/train_demo_model.py does), {stats['real_tokens']:,} tokens; tokens per sentence (with <s> </s>): "
             f"mean {stats['mean']:.1f}, p10 {p[10]}, p25 {p[25]}, median {p[50]}, p75 {p[75]}, p90 {p[90]}, "
             f"p99 {p[99]}, max {stats['max']}. Batches of {batch}: padding is {100 * stats['sorted_padding_share']:.1f}% "
             f"of the tokens of length-sorted batches ({100 * stats['unsorted_padding_share']:.1f}% unsorted).", ""]
    if result.get("quick"):
        lines += ["(--quick: a small random body, hidden 128, 2 layers; not xlm-roberta-base's shapes)", ""]
    if "embeddings" in result:
        emb = result["embeddings"]
        real = stats["real_tokens"]
        ours = min(v for k, v in emb["seconds"].items() if k.startswith("xlmr_np auto"))
        lines += ["(a) sentence embeddings (mean pooling, normalized), the same length-sorted batches for all:", "",
                  "| contestant | s | tokens/s | sentences/s | xlmr_np auto's speed-up over it | max \\|diff\\| vs sentence-transformers |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, seconds in emb["seconds"].items():
            lines.append(f"| {name} | {seconds:.1f} | {real / seconds:,.0f} | {stats['sentences'] / seconds:,.1f} "
                         f"| {seconds / ours:.2f}x | {emb['max_diff'][name]:.1e} |")
        lines.append("")
    if "corpus_job" in result:
        lines += ["(b) the corpus job (embed_corpus, length-sorted batches, chunks of the corpus), in a subprocess:", "",
                  "| workers | BLAS threads each | processes | tokens/s | job s | peak RSS (sum) MB | peak PSS (sum) MB |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for row in result["corpus_job"]:
            lines.append(f"| {row['workers']} | {row['blas_threads']} | {row['processes']} | "
                         f"{stats['real_tokens'] / row['job_seconds']:,.0f} | {row['job_seconds']:.1f} | "
                         f"{row['peak_rss_mb']:,.0f} | {row['peak_pss_mb']:,.0f} |")
        lines += ["", f"Weights file: {result['weights_mb']:,.0f} MB. RSS counts the shared, memory-mapped weights once "
                  "per process; PSS divides them among the processes sharing them.", ""]
    if "pipelines" in result:
        lines += ["(c) pipelines on the corpus sentences within 128 tokens (shipped models), batch "
                  f"{batch}:", "", "| task (model) | inputs | xlmr_np s | HF pipeline s | xlmr_np speed-up "
                  "| same top-5 / label | max \\|score diff\\| |", "|---|---:|---:|---:|---:|---:|---:|"]
        for row in result["pipelines"]:
            s = row["seconds"]
            lines.append(f"| {row['task']} ({row['model']}) | {row['inputs']} | {s['xlmr_np']:.2f} | "
                         f"{s['HF pipeline']:.2f} | {s['HF pipeline'] / s['xlmr_np']:.2f}x | "
                         f"{row['same']}/{row['inputs']} | {row['max_score_diff']:.1e} |")
        lines.append("")
    if "sweep" in result:
        sweep = result["sweep"]
        lines += [f"AUTO_PADDING sweep: one batch of {sweep['batch']} sequences, the longest {sweep['longest']} "
                  "tokens, median of the timed calls; tokens/s of real tokens:", "",
                  "| padded / real tokens | padded path tokens/s | packed path tokens/s | packed / padded |",
                  "|---:|---:|---:|---:|"]
        for row in sweep["rows"]:
            lines.append(f"| {row['ratio']:.2f} | {row['padded']:,.0f} | {row['packed']:,.0f} | "
                         f"{row['packed'] / row['padded']:.2f} |")
        cross = sweep["crossover"]
        lines += ["", f"Crossover: packing is faster from a padding ratio of {cross:.2f} on" if cross else
                  "Crossover: packing was not faster at any measured ratio",
                  f"(EmbeddingModel.AUTO_PADDING is {sweep['auto_padding']}).", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small body, 300 sentences, every workload")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="the N of the N-worker corpus job (default 2)")
    parser.add_argument("--pipeline-sentences", type=int, default=1000)
    parser.add_argument("--auto-padding-sweep", action="store_true", help="also run the AUTO_PADDING sweep")
    parser.add_argument("--only", nargs="+", choices=("embeddings", "corpus-job", "pipelines", "sweep"),
                        help="run only these workloads (default: all but the sweep)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sentences, args.pipeline_sentences = 300, 40
    workloads = set(args.only or ("embeddings", "corpus-job", "pipelines"))
    if args.auto_padding_sweep or args.quick:  # --quick smoke-runs every workload, the sweep included
        workloads.add("sweep")
    embeddings_bench = load_script("bench_embeddings")
    from xlmr_np.embeddings import EmbeddingModel, SentenceTransformer

    threads = blas_threads()
    info = machine_info(threads)
    texts = gettext_corpus(args.sentences)
    workdir = Path(tempfile.mkdtemp(prefix="xlmr_np_bench_corpus_"))
    try:
        folder = st_folder(args.quick, workdir)
        onnx_dir = workdir / "onnx" if args.quick else CACHE / "xlm-roberta-base-random-onnx"
        lengths = [len(s) for s in SentenceTransformer(folder).tokenize(texts)]
        stats = corpus_stats(lengths, args.batch_size)
        result = {"machine": info, "quick": args.quick, "batch_size": args.batch_size, "corpus": stats,
                  "locales": "/usr/share/locale", "weights_mb": (folder / "model.safetensors").stat().st_size / 2**20}
        print(f"corpus: {stats['sentences']} sentences, {stats['real_tokens']} tokens", flush=True)
        if "embeddings" in workloads:
            contestants = embedding_contestants(folder, onnx_dir, threads)
            result["embeddings"] = time_embeddings(contestants, texts, length_batches(lengths, args.batch_size))
            print("  embeddings: " + ", ".join(f"{n} {s:.1f} s" for n, s in result["embeddings"]["seconds"].items()),
                  flush=True)
        if "corpus-job" in workloads:
            result["corpus_job"] = []
            for workers in (1, args.workers):
                row = embeddings_bench.corpus_memory(folder, texts, workers, args.batch_size, workdir)
                row["blas_threads"] = threads if workers == 1 else max(1, (info["cores"] or 1) // workers)
                result["corpus_job"].append(row)
                print(f"  corpus job, {workers} worker(s): {row['job_seconds']:.1f} s", flush=True)
        if "pipelines" in workloads:
            result["pipelines"] = pipeline_workload(texts, args.pipeline_sentences, args.batch_size, threads)
        if "sweep" in workloads:
            batch, longest = (8, 48) if args.quick else (args.batch_size, 48)
            rows = auto_padding_sweep(folder, batch, longest, 1 if args.quick else 3)
            result["sweep"] = {"batch": batch, "longest": longest, "rows": rows, "crossover": crossover(rows),
                               "auto_padding": EmbeddingModel.AUTO_PADDING}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
