"""Train the small multilingual SentencePiece model shipped in reference_outputs/tokenizer/.

XLM-R's real tokenizer is a 250k-piece SentencePiece *unigram* model (named sentencepiece.bpe.model for
historical reasons) with the nmt_nfkc normalisation rule and <unk>, <s>, </s> at spm ids 0, 1, 2.  The tests
need a model with the same structure but small enough to commit, so this script trains one:

1. corpus: every gettext catalog (.mo) under /usr/share/locale, read with a small .mo parser; the translated
   strings are split into lines, deduplicated and capped per locale so that no language dominates.  The
   English source strings (msgids) form one more "locale".  Scripts that the catalogs lack are topped up with
   sentences written for this project (EXTRA_SENTENCES).
2. training: unigram, vocab 8000, character_coverage 0.9995, nmt_nfkc, one thread, no input shuffling and a
   fixed seed, so that the same corpus always gives the same model bytes.

Outputs (reference_outputs/tokenizer/): sentencepiece.bpe.model, tokenizer_config.json ({"model_max_length":
512}, as the xlm-roberta-base hub repo has it), special_tokens_map.json, and the "model" entry of MANIFEST.json
(versions, corpus statistics, sha256 of corpus and model).  The corpus depends on the locale files installed
on the machine; its sha256 is recorded so that a rebuild elsewhere can tell whether it saw the same input.

Usage: python tools/make_tokenizer_model.py [--out reference_outputs/tokenizer] [--check]
  --check retrains into a temporary directory and verifies the bytes equal the committed model.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import struct
import sys
import unicodedata
from collections import Counter

import sentencepiece as spm

LOCALE_ROOT = "/usr/share/locale"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "reference_outputs", "tokenizer")

MAX_CHARS_PER_LOCALE = 60_000  # keeps big catalogs (ru, ja, de, ...) from drowning the small ones
MAX_LINE_CHARS = 300  # long help texts are cut at a line boundary anyway; this caps the rare monsters
VOCAB_SIZE = 8000
SEED = 1234

# Scripts the catalogs of a typical Debian/Ubuntu image have little or none of, plus text kinds a tokenizer
# test needs (emoji, full-width forms, mixed scripts).  Written for this project.
EXTRA_SENTENCES = [
    # Emoji and symbols
    "I love pizza 🍕 and coffee ☕ every morning 🌅",
    "Flags: 🇫🇷 🇩🇪 🇯🇵 🇧🇷 🇮🇳 and a rainbow flag 🏳️‍🌈",
    "Family emoji 👨‍👩‍👧‍👦 and thumbs up 👍🏽 👍🏿",
    "Weather today: ☀️ sunny, 🌧️ rain later, ❄️ tomorrow",
    # Full-width and half-width forms
    "ＡＢＣ　ｆｕｌｌ－ｗｉｄｔｈ　ｔｅｘｔ　１２３",
    "ｶﾀｶﾅ ﾊﾝｶｸ ﾃｷｽﾄ ｽﾅｯﾌﾟﾘﾝｸﾞ",
    # Mongolian script, Tifinagh, Cherokee, Canadian syllabics, Syriac, Thaana
    "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ ᠦᠨ ᠵᠢᠱᠢᠶ᠎ᠡ",
    "ⵜⴰⵎⴰⵣⵉⵖⵜ ⵜⴰⵎⴰⵢⵏⵓⵜ",
    "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ ᎠᏍᎦᏯ",
    "ᐃᓄᒃᑎᑐᑦ ᑎᑎᕋᐅᓯᖅ",
    "ܠܫܢܐ ܣܘܪܝܝܐ ܥܬܝܩܐ",
    "ދިވެހި ބަސް ލިޔުން",
    # Mixed-script sentences
    "Tokyo 東京 is the capital of 日本 (Japan).",
    "Москва — столица России, Moscow is its capital.",
    "The word שלום means peace, as does سلام.",
]


def read_mo(path: str) -> list[tuple[str, str]]:
    """Return the (msgid, msgstr) pairs of a GNU .mo file; [] if the file is not a readable .mo catalog.

    Layout (GNU gettext manual, "The Format of GNU MO Files"): a magic number that also fixes the byte order,
    a revision, the number of strings N, then the offsets of two tables of N (length, offset) pairs, one for
    the original strings and one for the translations.  Plural forms are NUL-separated inside one string.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 28:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">" if magic == 0xDE120495 else None
    if order is None:
        return []
    _revision, count, originals_at, translations_at = struct.unpack(order + "4I", data[4:20])
    pairs = []
    for i in range(count):
        o_len, o_off = struct.unpack(order + "2I", data[originals_at + 8 * i : originals_at + 8 * i + 8])
        t_len, t_off = struct.unpack(order + "2I", data[translations_at + 8 * i : translations_at + 8 * i + 8])
        try:
            msgid = data[o_off : o_off + o_len].decode("utf-8")
            msgstr = data[t_off : t_off + t_len].decode("utf-8")
        except UnicodeDecodeError:
            return []  # a catalog in a legacy charset: skip it whole rather than guess
        pairs.append((msgid, msgstr))
    return pairs


def clean_lines(text: str) -> list[str]:
    """Split a catalog string into corpus lines: plural forms and lines apart, stripped, letters required."""
    lines = []
    for form in text.split("\x00"):
        for line in form.splitlines():
            line = line.strip()[:MAX_LINE_CHARS]
            if len(line) >= 2 and any(ch.isalpha() for ch in line):
                lines.append(line)
    return lines


def build_corpus(locale_root: str = LOCALE_ROOT) -> tuple[list[str], dict]:
    """Collect the corpus lines in a fixed order (sorted locales, sorted files, catalog order)."""
    per_locale: dict[str, list[str]] = {}
    source_lines: list[str] = []
    for locale in sorted(os.listdir(locale_root)):
        msg_dir = os.path.join(locale_root, locale, "LC_MESSAGES")
        if not os.path.isdir(msg_dir):
            continue
        seen, lines, budget = set(), [], MAX_CHARS_PER_LOCALE
        for name in sorted(os.listdir(msg_dir)):
            if not name.endswith(".mo"):
                continue
            for msgid, msgstr in read_mo(os.path.join(msg_dir, name)):
                if not msgid:  # the header entry
                    continue
                source_lines.extend(clean_lines(msgid))
                for line in clean_lines(msgstr):
                    if budget > 0 and line not in seen:
                        seen.add(line)
                        lines.append(line)
                        budget -= len(line)
        if lines:
            per_locale[locale] = lines
    # English source strings, deduplicated, with the same cap
    seen, english, budget = set(), [], MAX_CHARS_PER_LOCALE
    for line in source_lines:
        if budget > 0 and line not in seen:
            seen.add(line)
            english.append(line)
            budget -= len(line)
    per_locale["msgid(en)"] = english
    per_locale["extra"] = list(EXTRA_SENTENCES)
    corpus = [line for locale in sorted(per_locale) for line in per_locale[locale]]
    stats = {
        "locales": len(per_locale),
        "lines": len(corpus),
        "characters": sum(len(line) for line in corpus),
        "scripts": script_histogram(corpus),
    }
    return corpus, stats


def script_of(ch: str) -> str | None:
    """The script of a letter, from the first word of its Unicode name (LATIN, CYRILLIC, CJK, HANGUL, ...)."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ")[0] if name else None


def script_histogram(lines: list[str]) -> dict[str, int]:
    counts = Counter(s for line in lines for s in map(script_of, line) if s)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def train(corpus: list[str]) -> bytes:
    """Train the unigram model deterministically and return its serialized bytes."""
    out = io.BytesIO()
    spm.set_random_generator_seed(SEED)  # used by the trainer's sampling steps; one thread keeps it in order
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=out,
        model_type="unigram",
        vocab_size=VOCAB_SIZE,
        character_coverage=0.9995,
        normalization_rule_name="nmt_nfkc",  # XLM-R's rule
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,  # XLM-R's model has no pad piece; HF/fairseq add <pad> themselves
        num_threads=1,
        shuffle_input_sentence=False,
        input_sentence_size=0,
        minloglevel=2,
    )
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=True)
        f.write("\n")


def update_manifest(out_dir: str, entry: dict) -> None:
    path = os.path.join(out_dir, "MANIFEST.json")
    manifest = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    manifest["model"] = entry
    write_json(path, manifest)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="retrain and compare with the committed model")
    args = parser.parse_args(argv)

    corpus, stats = build_corpus()
    corpus_bytes = "\n".join(corpus).encode("utf-8")
    model = train(corpus)
    print(f"corpus: {stats['locales']} locales, {stats['lines']} lines, {stats['characters']} characters, "
          f"{len(stats['scripts'])} scripts; model {len(model)} bytes, sha256 {sha256(model)}")

    model_path = os.path.join(args.out, "sentencepiece.bpe.model")
    if args.check:
        with open(model_path, "rb") as f:
            same = f.read() == model
        print("rebuild identical to committed model" if same else "rebuild DIFFERS from committed model")
        return 0 if same else 1

    if len(model) > 1_000_000:
        raise SystemExit(f"model is {len(model)} bytes, over the 1 MB budget; lower VOCAB_SIZE")
    os.makedirs(args.out, exist_ok=True)
    with open(model_path, "wb") as f:
        f.write(model)
    write_json(os.path.join(args.out, "tokenizer_config.json"), {"model_max_length": 512})
    write_json(
        os.path.join(args.out, "special_tokens_map.json"),
        {
            "bos_token": "<s>",
            "cls_token": "<s>",
            "eos_token": "</s>",
            "mask_token": {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False,
                           "single_word": False},
            "pad_token": "<pad>",
            "sep_token": "</s>",
            "unk_token": "<unk>",
        },
    )
    sp = spm.SentencePieceProcessor(model_proto=model)
    update_manifest(
        args.out,
        {
            "script": "tools/make_tokenizer_model.py",
            "versions": {"sentencepiece": spm.__version__, "python": platform.python_version()},
            "settings": {"model_type": "unigram", "vocab_size": VOCAB_SIZE, "character_coverage": 0.9995,
                         "normalization_rule_name": "nmt_nfkc", "num_threads": 1, "random_seed": SEED,
                         "max_chars_per_locale": MAX_CHARS_PER_LOCALE},
            "corpus": {"source": LOCALE_ROOT + "/*/LC_MESSAGES/*.mo + EXTRA_SENTENCES",
                       "sha256": sha256(corpus_bytes), **{k: v for k, v in stats.items()}},
            "pieces": sp.get_piece_size(),
            "files": {
                name: sha256(open(os.path.join(args.out, name), "rb").read())
                for name in ("sentencepiece.bpe.model", "tokenizer_config.json", "special_tokens_map.json")
            },
        },
    )
    print(f"wrote {model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
