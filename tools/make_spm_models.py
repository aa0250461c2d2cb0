"""Train the small SentencePiece models that the tokenizer goldens cover besides the shipped 8000-piece one.

XLM-R's own model is a unigram model with nmt_nfkc and <unk>, <s>, </s> at spm ids 0, 1, 2.  Checkpoints in
the wild use other settings, and HF's XLMRobertaTokenizer (slow) and XLMRobertaTokenizerFast (converted) handle
them in their own ways; these models make each way testable.  Each is trained in seconds on the corpus of
tools/make_tokenizer_model.py (gettext catalogs) with one thread and a fixed seed, and written to
reference_outputs/tokenizer/models/<name>/sentencepiece.bpe.model:

| name | type | vocab | normalizer | what else |
|---|---|---:|---|---|
| unigram_bytefb | unigram | 2000 | nmt_nfkc | byte_fallback, user-defined symbols `<sep2>` and `@@` |
| unigram_identity | unigram | 2500 | identity | `<unk>` at spm id 3 (`<pad>` 0, `<s>` 1, `</s>` 2) |
| bpe_specials | bpe | 3000 | nmt_nfkc | control pieces `[PAD]` 0, `[BOS]` 1, `[EOS]` 2, `[UNK]` 3 (the unknown piece) |
| bpe_bytefb | bpe | 2500 | nmt_nfkc | byte_fallback, control symbol `<ctrl>`, user-defined `<user>` |
| unigram_nfkc_cf | unigram | 4000 | nmt_nfkc_cf | case folding |

Usage: python tools/make_spm_models.py [--check]   (--check retrains into memory and compares bytes)
"""

from __future__ import annotations

import argparse
import io
import os
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_model import SEED, build_corpus  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "reference_outputs", "tokenizer", "models")

COMMON = dict(num_threads=1, shuffle_input_sentence=False, input_sentence_size=0,
              minloglevel=2)
MODELS = {
    "unigram_bytefb": dict(model_type="unigram", vocab_size=2000, normalization_rule_name="nmt_nfkc", character_coverage=0.98,
                           byte_fallback=True, user_defined_symbols=["<sep2>", "@@"]),
    "unigram_identity": dict(model_type="unigram", vocab_size=2500, normalization_rule_name="identity", character_coverage=0.98,
                             pad_id=0, bos_id=1, eos_id=2, unk_id=3),
    "bpe_specials": dict(model_type="bpe", vocab_size=3000, normalization_rule_name="nmt_nfkc", character_coverage=0.99,
                         pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[BOS]",
                         eos_piece="[EOS]", unk_piece="[UNK]"),
    "bpe_bytefb": dict(model_type="bpe", vocab_size=2500, normalization_rule_name="nmt_nfkc", byte_fallback=True,
                       character_coverage=0.98,
                       control_symbols=["<ctrl>"], user_defined_symbols=["<user>"]),
    "unigram_nfkc_cf": dict(model_type="unigram", vocab_size=4000, normalization_rule_name="nmt_nfkc_cf", character_coverage=0.995),
}
# the corpus lines each model is trained on: every 6th line keeps training to a few seconds
CORPUS_STEP = 6


def train(corpus, settings) -> bytes:
    out = io.BytesIO()
    spm.set_random_generator_seed(SEED)
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=out, **COMMON, **settings)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    corpus, _ = build_corpus()
    corpus = corpus[::CORPUS_STEP]
    failed = False
    for name, settings in MODELS.items():
        data = train(corpus, settings)
        path = os.path.join(OUT, name, "sentencepiece.bpe.model")
        if args.check:
            same = os.path.exists(path) and open(path, "rb").read() == data
            print(f"{name}: {'same bytes' if same else 'DIFFERENT'}")
            failed |= not same
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        print(f"{name}: {len(data):,} bytes")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
