"""Pipeline speed of xlmr_np against Hugging Face transformers' pipelines, in one run, on the CPU.

Two measurements on an xlm-roberta-base-shaped checkpoint with random weights (12 layers, hidden 768,
vocabulary 250,002; the one benchmarks/bench_forward.py caches under ~/.cache/xlmr_np_bench, made here if
absent), tokenised with the shipped multilingual sentencepiece model (reference_outputs/tokenizer):

1. fill-mask: one sentence of 128 tokens with one <mask>, top_k=5: median wall time of a call, the two
   libraries' calls alternating (and the median of the per-pair ratios).
   HF: transformers.pipeline("fill-mask") with the fast tokenizer (its default). xlmr_np evaluates the last
   layer and the 250k-wide LM head at the masked position only; HF computes the LM head at all 128.
2. embeddings: 1,000 sentences (5 to 60 tokens, shuffled), mean-pooled over the attention mask.
   HF: transformers.pipeline("feature-extraction", batch_size=B, return_tensors=True) then the masked mean of
   each output, as sentence-transformers computes it. xlmr_np: pipeline("sentence-embeddings",
   batch_size=B) (length-sorted batches). Both get the same batch size; they alternate on chunks of 100
   sentences, and the times are summed.

By default both libraries use every core (torch's intra-op threads and NumPy's BLAS threads at their
defaults); `--threads N` sets both. Run it on an otherwise idle machine: with other processes on the cores,
spinning BLAS threads slow down by large and varying factors. Prints a Markdown table for docs/pipelines.md.

Usage: python benchmarks/bench_pipelines.py [--repeats 7] [--sentences 1000] [--batch-size 32] [--threads N]
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a clone without installing
TOKENIZER_DIR = ROOT / "reference_outputs" / "tokenizer"
CACHE = Path(os.environ.get("XLMR_NP_BENCH_CACHE", Path.home() / ".cache" / "xlmr_np_bench"))

WORDS = ("the city council met on monday to discuss the new library and the old maps in its archive while "
         "les enfants jouaient dans le parc und die Eltern tranken Kaffee am Fluss cuando llegó la noticia").split()


def base_checkpoint() -> Path:
    """The cached base-shaped random checkpoint (bench_forward.py's maker when present)."""
    spec = importlib.util.spec_from_file_location("bench_forward", ROOT / "benchmarks" / "bench_forward.py")
    if spec is not None and (ROOT / "benchmarks" / "bench_forward.py").exists():
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "ensure_checkpoint"):
            return Path(module.ensure_checkpoint())
    raise SystemExit("benchmarks/bench_forward.py (which makes the cached base checkpoint) is missing")


def sentence_of(tokenizer, n_tokens, rng, mask=False):
    """A text whose tokenisation (with <s> </s>) is exactly n_tokens long, with one <mask> if asked."""
    words = []
    while True:
        words.append(str(rng.choice(WORDS)))
        text = " ".join(words[: len(words) // 2] + (["<mask>"] if mask else []) + words[len(words) // 2:])
        length = len(tokenizer(text)["input_ids"])
        if length >= n_tokens:
            break
    while length > n_tokens:  # trim whole words from the end, then characters
        text = text[:-1]
        length = len(tokenizer(text)["input_ids"])
    return text


def interleaved_times(first, second, repeats, warmup=2):
    """Wall times of `first` and `second` called alternately (so both see the same machine load)."""
    for _ in range(warmup):
        first()
        second()
    times = ([], [])
    for _ in range(repeats):
        for function, bucket in zip((first, second), times):
            start = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--only", choices=["fill-mask", "embeddings"], help="run one of the two measurements")
    parser.add_argument("--threads", type=int, help="threads for both libraries (torch intra-op and the BLAS); "
                                                    "default: each library's own default (all cores)")
    args = parser.parse_args()
    if args.threads:  # before NumPy loads its BLAS
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLMR_NP_NUM_THREADS"):
            os.environ[var] = str(args.threads)

    import numpy as np

    import torch
    import transformers
    from transformers import XLMRobertaTokenizerFast

    from xlmr_np.pipelines import pipeline

    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = base_checkpoint()
    rng = np.random.default_rng(0)
    hf_tokenizer = XLMRobertaTokenizerFast.from_pretrained(TOKENIZER_DIR)

    rows = []
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]

    # --- fill-mask ---------------------------------------------------------------------------------------
    ours = pipeline("fill-mask", model=checkpoint, tokenizer=TOKENIZER_DIR)
    text = sentence_of(ours.tokenizer, 128, rng, mask=True)
    assert len(ours.tokenizer(text)["input_ids"]) == 128 and "<mask>" in text
    hf = transformers.pipeline("fill-mask", model=str(checkpoint), tokenizer=hf_tokenizer, device="cpu")
    # The checkpoint's 250,002 outputs outnumber the shipped tokenizer's 8,002 pieces; push the decoder bias of
    # the ids it cannot decode to -1e4 in both models (in memory) so the predictions are printable. The work
    # done is unchanged: both still compute all 250,002 logits per evaluated position.
    vocab = len(ours.tokenizer)
    bias = np.array(ours.params["lm.bias"])
    bias[vocab:] = -1e4
    ours.params["lm.bias"] = bias
    with torch.no_grad():
        hf.model.lm_head.bias[vocab:] = -1e4
    if args.only != "embeddings":
        mine = ours(text)
        theirs = hf(text)
        same_tokens = [c["token"] for c in mine] == [c["token"] for c in theirs]
        score_diff = max(abs(a["score"] - b["score"]) for a, b in zip(mine, theirs))
        hf_times, our_times = interleaved_times(lambda: hf(text), lambda: ours(text), args.repeats)
        ratios = [a / b for a, b in zip(hf_times, our_times)]
        rows.append(f"| fill-mask, 128 tokens, 1 mask (median of {args.repeats}, interleaved) | "
                    f"{statistics.median(hf_times) * 1e3:.0f} ms | {statistics.median(our_times) * 1e3:.0f} ms | "
                    f"{statistics.median(ratios):.2f}x (pairs: {min(ratios):.2f}-{max(ratios):.2f}) | "
                    f"same top-5 tokens: {same_tokens}, max score diff {score_diff:.1e} |")
    del hf
    if args.only == "fill-mask":
        return report(rows, args, when, load)

    # --- embeddings ----------------------------------------------------------------------------------------
    lengths = rng.integers(5, 61, size=args.sentences)
    texts = [sentence_of(ours.tokenizer, int(n), rng) for n in lengths]
    embed = pipeline("sentence-embeddings", model=checkpoint, tokenizer=TOKENIZER_DIR, batch_size=args.batch_size,
                     pooling="mean")
    extractor = transformers.pipeline("feature-extraction", model=str(checkpoint), tokenizer=hf_tokenizer,
                                      device="cpu", batch_size=args.batch_size)

    def hf_embed(chunk):
        out = []
        for text, features in zip(chunk, extractor(chunk, return_tensors=True)):  # [1, T, D], batch-padded
            length = len(hf_tokenizer(text)["input_ids"])
            out.append(features[0, :length].mean(0).numpy())  # padding removed = the masked mean
        return np.stack(out)

    # chunks of 100 sentences, the two libraries alternating, so that both see the same machine load
    chunks = [texts[i:i + 100] for i in range(0, len(texts), 100)]
    embed_hf = embed_ours = 0.0
    mine, theirs = [], []
    for chunk in chunks:
        start = time.perf_counter()
        theirs.append(hf_embed(chunk))
        embed_hf += time.perf_counter() - start
        start = time.perf_counter()
        mine.append(embed(chunk))
        embed_ours += time.perf_counter() - start
    mine, theirs = np.concatenate(mine), np.concatenate(theirs)
    embed_diff = float(np.abs(mine - theirs).max())
    rows.append(f"| embeddings, {args.sentences} sentences of 5-60 tokens, batch {args.batch_size} | {embed_hf:.1f} s | "
                f"{embed_ours:.1f} s | {embed_hf / embed_ours:.2f}x | max abs diff {embed_diff:.1e} |")
    report(rows, args, when, load)


def report(rows, args, when, load):
    import numpy as np
    import torch
    import transformers

    print(f"\nxlmr_np pipelines vs transformers {transformers.__version__} pipelines (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads), numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}, {when}; load average before: {load:.1f}\n")
    print("| task | HF pipeline | xlmr_np | speed-up | agreement |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
