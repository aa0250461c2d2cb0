"""Offsets goldens: HF's fast tokenizer's `offset_mapping` on thousands of strings, for several SentencePiece models.

xlmr_np's `return_offsets_mapping=True` gives the offsets of HF's `XLMRobertaTokenizerFast` (transformers
4.57.6, converted from the same .model) for the ids of the slow `XLMRobertaTokenizer`.  This script writes
what the tests compare that with, without transformers:

- reference_outputs/tokenizer/offsets_corpus.json: the strings, in order: sentences of the gettext catalogs
  under /usr/share/locale (read with Python's `gettext`, a fixed share of every locale, so ~190 locales and
  40 scripts), the golden strings of goldens.json, and generated edge cases (whitespace runs, tabs and
  newlines, CR LF, control and zero-width characters, combining marks, full-width forms, emoji, special
  tokens glued to words and surrounded by spaces);
- reference_outputs/tokenizer/offsets_goldens.json: per model (the shipped model and those of
  tools/make_spm_models.py), for every string the slow tokenizer's ids and, where the fast tokenizer gives
  the same ids, its offsets, both as short sha256 digests (the full lists would be megabytes), plus the
  indices of the strings where the two HF tokenizers disagree on ids and the counts.

Usage: python tools/make_offsets_goldens.py   (needs transformers, tokenizers, sentencepiece)
"""

from __future__ import annotations

import gettext
import glob
import hashlib
import json
import os
import sys
import tempfile
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOK_DIR = os.path.join(ROOT, "reference_outputs", "tokenizer")
CORPUS = os.path.join(TOK_DIR, "offsets_corpus.json")
GOLDENS = os.path.join(TOK_DIR, "offsets_goldens.json")
PER_LOCALE = 16  # sentences per locale
MAX_CHARS = 200


def model_paths():
    """name -> .model path: the shipped model first, then reference_outputs/tokenizer/models/*."""
    paths = {"xlmr_test_8000": os.path.join(TOK_DIR, "sentencepiece.bpe.model")}
    for path in sorted(glob.glob(os.path.join(TOK_DIR, "models", "*", "sentencepiece.bpe.model"))):
        paths[os.path.basename(os.path.dirname(path))] = path
    return paths


def catalog_sentences():
    """PER_LOCALE translated strings of every locale, spread over its catalogs (sorted, deterministic)."""
    by_locale = {}
    for path in sorted(glob.glob("/usr/share/locale/*/LC_MESSAGES/*.mo")):
        locale = path.split(os.sep)[-3]
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except Exception:  # legacy charsets, broken files: skipped
            continue
        for key in sorted(catalog, key=str):
            value = catalog[key]
            if not key or not isinstance(value, str):
                continue
            line = value.strip()
            if 3 <= len(line) <= MAX_CHARS and any(c.isalpha() for c in line):
                by_locale.setdefault(locale, []).append(line)
    out = []
    for locale in sorted(by_locale):
        lines = sorted(set(by_locale[locale]))
        step = max(1, len(lines) // PER_LOCALE)
        out.extend(lines[::step][:PER_LOCALE])
    return out


WORDS = ["Hello", "world", "naïve", "Ünïcödé", "Привет", "日本語", "العربية", "नमस्ते", "한국어", "ไทย", "x", "a1",
         "ｆｕｌｌ", "ＡＢＣ１２３", "ｶﾀｶﾅ", "ﬁne", "½", "e\u0301", "n\u0303o", "🍕", "👍🏽", "🇫🇷", "Z\u0324a"]
SEPARATORS = [" ", "  ", "   ", "\t", "\n", "\r\n", " \t ", "\n\n", "\u3000", "\u00a0", "\u2009", "\u200b",
              "\u200d", "\u200c", "\ufeff", "\u00ad", "\x07", "\x1b", "\x00", "\x7f", "\u0301", "\u2028",
              "<mask>", " <mask> ", "  <mask>", "<mask>  ", "<s>", " </s> ", "<pad>", "<unk>", "", ".", " - ",
              # pieces of the models of tools/make_spm_models.py: control, user-defined, unknown
              "\x1f", "\x1c <mask>\x1e", " \x1d<mask>\x1f ",
              "[PAD]", " [UNK] ", "[BOS]", "<sep2>", " @@ ", "<user>", "<ctrl>", "<0x41>"]


def edge_cases():
    out = []
    for s in SEPARATORS:
        out.extend([s, s + "x", "x" + s, s + s, " " + s + " "])
    for i, a in enumerate(WORDS):
        for j, s in enumerate(SEPARATORS):
            b = WORDS[(i + j + 1) % len(WORDS)]
            out.append(a + s + b)
            if (i + j) % 3 == 0:
                out.append(s + a + s + b + s)
    out.extend([" " * n + "leading" for n in range(1, 5)] + ["trailing" + " " * n for n in range(1, 5)])
    out.extend(["a" + " " * n + "b" for n in range(1, 7)] + ["\t" * n + "tab" for n in range(1, 4)])
    seen, unique = set(), []
    for t in out:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


def build_corpus():
    goldens = json.load(open(os.path.join(TOK_DIR, "goldens.json"), encoding="utf-8"))
    texts = catalog_sentences() + [s["text"] for s in goldens["strings"]] + edge_cases()
    seen, unique = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, separators=(",", ":")).encode("utf-8")).hexdigest()[:16]


def golden_for_model(path, texts):
    from transformers import XLMRobertaTokenizer, XLMRobertaTokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, os.path.join(tmp, "sentencepiece.bpe.model"))
        slow = XLMRobertaTokenizer.from_pretrained(tmp)
        fast = XLMRobertaTokenizerFast.from_pretrained(tmp, from_slow=True)
    ids_digests, offset_digests, disagree, tokens = [], [], [], 0
    for index, text in enumerate(texts):
        ids = slow(text)["input_ids"]
        enc = fast(text, return_offsets_mapping=True)
        ids_digests.append(digest(ids))
        if enc["input_ids"] == ids:
            offsets = [list(o) for o in enc["offset_mapping"]]
            offset_digests.append(digest(offsets))
            tokens += len(ids)
        else:
            offset_digests.append(None)
            disagree.append(index)
    return {"ids": ids_digests, "offsets": offset_digests, "fast_ids_differ": disagree,
            "counts": {"strings": len(texts), "strings_compared": len(texts) - len(disagree),
                       "tokens_compared": tokens, "strings_fast_ids_differ": len(disagree)}}


def main() -> int:
    import tokenizers
    import transformers

    texts = build_corpus()
    with open(CORPUS, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=True, indent=0)
        f.write("\n")
    out = {"versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
           "corpus_sha256": hashlib.sha256(open(CORPUS, "rb").read()).hexdigest(), "models": {}}
    for name, path in model_paths().items():
        out["models"][name] = golden_for_model(path, texts)
        print(name, out["models"][name]["counts"], file=sys.stderr)
    with open(GOLDENS, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=0, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
