"""Batch tokenization throughput: xlmr_np against Hugging Face's slow and fast XLM-R tokenizers.

All three tokenize the same 10,000 multilingual sentences (built deterministically from the strings in
reference_outputs/tokenizer/goldens.json) with the shipped SentencePiece model, in one call per run:
  1. plain `tok(sentences)` (ids + attention mask, lists);
  2. `tok(sentences, padding=True, truncation=True, max_length=128, return_tensors="np")`.
The best of --repeat runs is reported, as a markdown table with the ratio to xlmr_np.  The ids of all three
are checked to be equal first (the fast tokenizer differs on a handful of normalisation corner cases, so its
mismatches are only counted).

Usage: python benchmarks/bench_tokenizer.py [--sentences 10000] [--repeat 3]
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
GOLDEN_DIR = os.path.join(ROOT, "reference_outputs", "tokenizer")

from xlmr_np.text import XLMRobertaTokenizer  # noqa: E402


def make_sentences(n: int, seed: int = 0) -> list:
    """n sentences of 1-3 golden strings each (catalog lines from 43 locales plus edge cases)."""
    with open(os.path.join(GOLDEN_DIR, "goldens.json"), encoding="utf-8") as f:
        pool = [s["text"] for s in json.load(f)["strings"] if 0 < len(s["text"]) < 400]
    rng = np.random.default_rng(seed)
    return [" ".join(pool[i] for i in rng.integers(0, len(pool), size=rng.integers(1, 4))) for _ in range(n)]


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import transformers
    from transformers import XLMRobertaTokenizer as HFSlow
    from transformers import XLMRobertaTokenizerFast as HFFast
    transformers.logging.set_verbosity_error()

    sentences = make_sentences(args.sentences)
    tokenizers = {
        "xlmr_np": XLMRobertaTokenizer.from_pretrained(GOLDEN_DIR),
        "HF slow (sentencepiece)": HFSlow.from_pretrained(GOLDEN_DIR),
        "HF fast (tokenizers)": HFFast.from_pretrained(GOLDEN_DIR),
    }
    ours = tokenizers["xlmr_np"](sentences)["input_ids"]
    assert tokenizers["HF slow (sentencepiece)"](sentences)["input_ids"] == ours, "xlmr_np ids differ from HF slow"
    fast_ids = tokenizers["HF fast (tokenizers)"](sentences)["input_ids"]
    fast_mismatch = sum(a != b for a, b in zip(fast_ids, ours))
    n_tokens = sum(len(ids) for ids in ours)

    cases = {
        "tok(texts)": lambda tok: tok(sentences),
        "padding+truncation(128), np": lambda tok: tok(sentences, padding=True, truncation=True, max_length=128,
                                                        return_tensors="np"),
    }
    results = {case: {name: best_time(lambda: fn(tok), args.repeat) for name, tok in tokenizers.items()}
               for case, fn in cases.items()}

    print(f"{args.sentences} sentences, {n_tokens} tokens; best of {args.repeat}; "
          f"python {platform.python_version()}, transformers {transformers.__version__}, "
          f"{os.cpu_count()} CPUs; HF fast ids differ on {fast_mismatch} sentences\n")
    print("| tokenizer | " + " | ".join(f"{case}: seconds | sentences/s | time vs xlmr_np" for case in cases) + " |")
    print("|---|" + "---:|---:|---:|" * len(cases))
    for name in tokenizers:
        cells = []
        for case in cases:
            t = results[case][name]
            cells += [f"{t:.3f}", f"{args.sentences / t:,.0f}", f"{t / results[case]['xlmr_np']:.2f}x"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
