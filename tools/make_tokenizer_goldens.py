"""Record Hugging Face's tokenizer outputs on the shipped SentencePiece model as goldens for tests/test_tokenizer.py.

Reference: transformers 4.57.6 `XLMRobertaTokenizer` (slow, SentencePiece-backed) for ids, tokens, masks,
truncation, padding, overflow and decode; `XLMRobertaTokenizerFast` (converted from the same .model file) for
offsets and for the windowed overflow layout (`overflow_to_sample_mapping`), which only it has.

Offsets.  The slow tokenizer cannot return offsets; xlmr_np returns the fast tokenizer's.  So a string's
"offsets" are the fast tokenizer's `offset_mapping` wherever the fast tokenizer gives the slow one's ids
(`fast_ids_equal`), and null on the few strings where it does not (its normaliser differs from
SentencePiece's there; docs/tokenizer.md).  `reference_offsets` (HF's added-token split + sentencepiece's own
piece spans) is kept as a check that the added-token split reproduces the slow tokenizer's ids.
tools/make_offsets_goldens.py covers thousands more strings and several models.

Output: reference_outputs/tokenizer/goldens.json (compact JSON) and the "goldens" entry of MANIFEST.json
(versions, sha256, counts).  Usage: python tools/make_tokenizer_goldens.py
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import platform
import sys
import warnings
from collections import Counter

import numpy as np
import sentencepiece as spm
import transformers
from transformers import XLMRobertaTokenizer, XLMRobertaTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_model import LOCALE_ROOT, clean_lines, read_mo, script_of  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "reference_outputs", "tokenizer")
LINES_PER_LOCALE = 12

# Locales sampled for the string goldens: one or more per script the catalogs have.
LOCALES = [
    "am", "ar", "bg", "bn", "bo", "chr", "de", "dv", "dz", "el", "en@shaw", "es", "fa", "fr", "gu", "he", "hi", "hy",
    "iu", "ja", "ka", "km", "kn", "ko", "lo", "ml", "mr", "my", "or", "pa", "pl", "ru", "si", "sr", "ta", "te", "th",
    "tr", "uk", "ur", "vi", "yi", "zh_CN", "zh_TW",
]

EDGE_CASES = [
    # empty and whitespace
    "", " ", "   ", "\t", "\n", "\r\n",
    "\t\n \r\n", "a  b", "a   b    c", "a\t\tb", "a\n\nb", "  leading", "trailing  ",
    "\u3000ideographic\u3000space\u3000", "\xa0nbsp\xa0", "a\u2003em\u2002en\u2009thin", "\u2028\u2029", "\x85next",
    # special tokens in text, inside words and at the edges
    "<mask>", " <mask>", "<mask> ", "a<mask>b", "a <mask> b", "a  <mask>  b", "<mask><mask>", "<mask> <mask>",
    "Paris is the <mask> of France.", "The capital is<mask>.", "<s>", "</s>", "<s>hello</s>", "hello<s>world",
    "<pad><pad>", "<unk>", "x<unk>y", " <unk> ", "<mask", "mask>", "< mask >", "<<mask>>", "</s></s>", "<s><s>",
    "\t<mask>\n", "\u3000<mask>", "\xa0<mask>",
    "<MASK>", "\uff1cmask\uff1e", "\uff1cs\uff1e", "<s> <pad> </s> <unk> <mask>",
    "Hello</s>world", "x  <mask>", "<mask>  a <mask>", "  <mask>", "word<mask>word<mask>word",
    # emoji and flags
    "\U0001f44d", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea", "\U0001f3f3\ufe0f\u200d\U0001f308", "I \u2764\ufe0f NY",
    "\U0001f600\U0001f603\U0001f604\U0001f601", "pizza \U0001f355 time", "\U0001f1fa\U0001f1f3 flag",
    # combining marks and normalisation
    "e\u0301", "a\u0308o\u0308u\u0308", "Z\u0324\u0354\u0367\u0311a\u0308\u0356\u032dl\u036e\u0312g\u030c\u0317o\u0319",
    "\uff8c\uff9f", "\uff7d\uff85\uff6f\uff8c\uff9f\uff98\uff9d\uff78\uff9e\u3000SC-40", "\u1100\u1161\u11a8",
    "\u0915\u094d\u0937\u093f", "n\u0303", "\u00c5ngstr\u00f6m", "A\u030angstro\u0308m", "\u212b", "\u1e9b\u0323",
    # full-width and compatibility forms
    "\uff21\uff22\uff23\uff11\uff12\uff13",
    "\uff01\uff1f", "\uff48\uff45\uff4c\uff4c\uff4f\u3000\uff57\uff4f\uff52\uff4c\uff44",
    "\u337f", "\u2460\u2461\u2462", "\ufb01ligature", "\u216b",
    "x\u00b2", "\u00bd", "\u3231", "\u2122", "\uff1f\u2026\u2026",
    # zero-width characters
    "a\u200bb", "a\u200cb", "a\u200db", "\ufeffBOM", "a\u2060b", "\u200e\u200f", "\u200b", "zero\u200b \u200bwidth",
    # control characters
    "\x00", "a\x00b", "\x01\x02\x03", "\x7f", "\x1b[31mred\x1b[0m", "a\x0bb\x0cc", "\x10abc", "bell\x07", "\x1f\x1e",
    # punctuation, numbers, code
    "C'est l'\u00e9t\u00e9", "don't won't can't", "Hello ,world .",
    "a - b", "100%", "%s %d %(name)s", "user@example.com",
    "https://example.com/path?q=1&r=2", "3.14159", "1,000,000", "#hashtag @mention", "___", "...", "--",
    "\u201dquotes\u201c", "\u00abguillemets\u00bb", "\u03a9\u2248\u00e7\u221a\u222b", "def f(x):\n    return x**2",
    "Hello World!", "Hello world!", "The dog is cute and lives in the garden house",
    # scripts the catalogs lack (written for this project)
    "\u182e\u1823\u1829\u182d\u1823\u182f \u182a\u1822\u1834\u1822\u182d",
    "\u2d5c\u2d30\u2d4e\u2d30\u2d63\u2d49\u2d56\u2d5c",
    "\u0720\u072b\u0722\u0710 \u0723\u0718\u072a\u071d\u071d\u0710", "\u1403\u14c4\u1483\u144e\u1450\u1466",
    "\u16a0\u16c7\u16bb\u16eb\u16d2\u16e6\u16a6", "\u13e3\u13b3\u13a9 \u13a6\u13ec\u13c2\u13af\u13cd\u13d7",
    "\U00010330\U00010331\U00010332", "\u0f56\u0f7c\u0f51\u0f0b\u0f61\u0f72\u0f42",
    # mixed scripts
    "Tokyo \u6771\u4eac is in \u65e5\u672c.", "\u041c\u043e\u0441\u043a\u0432\u0430 \u2014 Moscow",
    "\u05e9\u05dc\u05d5\u05dd and \u0633\u0644\u0627\u0645", "\uc548\ub155 hello \u3053\u3093\u306b\u3061\u306f",
]


def long_text() -> str:
    """A very long input: a few thousand characters across scripts, > 512 tokens."""
    parts = ["The quick brown fox jumps over the lazy dog.",
             "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451.",
             "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002",
             "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0644\u063a\u0629 \u062c\u0645\u064a\u0644\u0629.",
             "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e", "<mask>", "  \t "]
    return " ".join(parts[i % len(parts)] for i in range(160))


def sample_strings():
    """Catalog lines from LOCALES (every k-th line, so not only the first catalog) plus the edge cases."""
    picked = []
    for locale in LOCALES:
        msg_dir = os.path.join(LOCALE_ROOT, locale, "LC_MESSAGES")
        if not os.path.isdir(msg_dir):
            continue
        lines, seen = [], set()
        for name in sorted(os.listdir(msg_dir)):
            if name.endswith(".mo"):
                for msgid, msgstr in read_mo(os.path.join(msg_dir, name)):
                    if msgid:
                        for line in clean_lines(msgstr):
                            if line not in seen:
                                seen.add(line)
                                lines.append(line)
        step = max(1, len(lines) // LINES_PER_LOCALE)
        picked.extend(("catalog:" + locale, line) for line in lines[::step][:LINES_PER_LOCALE])
    picked.extend(("edge", s) for s in EDGE_CASES)
    picked.append(("long", long_text()))
    return picked


def dominant_script(text: str) -> str:
    counts = Counter(s for s in map(script_of, text) if s)
    if counts:
        return counts.most_common(1)[0][0]
    if any(ord(ch) >= 0x1F000 for ch in text):
        return "EMOJI"
    return "NONE"


def reference_offsets(slow, sp, text: str):
    """Ids and offsets from HF's added-token split + sentencepiece's piece spans (see module docstring)."""
    parts = slow.tokens_trie.split(text)
    pieces, pos = [], 0
    for part in parts:  # [start, end, added?, span_start, span_end]
        pieces.append([pos, pos + len(part), part in slow.added_tokens_encoder, pos, pos + len(part)])
        pos += len(part)
    for i, piece in enumerate(pieces):  # the lstrip/rstrip rules of PreTrainedTokenizer.tokenize
        if not piece[2]:
            continue
        token = slow.added_tokens_decoder[slow.added_tokens_encoder[text[piece[0]:piece[1]]]]
        if token.rstrip and i + 1 < len(pieces) and pieces[i + 1][0] < pieces[i + 1][1]:
            right = pieces[i + 1]
            right[0] = right[1] - len(text[right[0]:right[1]].lstrip())
            piece[4] = right[0]
        if token.lstrip and i > 0 and pieces[i - 1][0] < pieces[i - 1][1]:
            left = pieces[i - 1]
            left[1] = left[0] + len(text[left[0]:left[1]].rstrip())
            piece[3] = left[1]
    ids, offsets = [], []
    for start, end, added, s0, s1 in pieces:
        if start >= end:
            continue
        if added:
            ids.append(slow.added_tokens_encoder[text[start:end]])
            offsets.append([s0, s1])
            continue
        enc = sp.encode(text[start:end], out_type="offset_mapping")
        ids.extend(slow.convert_tokens_to_ids(enc["pieces"]))
        offsets.extend([start + a, start + b] for a, b in enc["offsets"])
    return ids, offsets


def jsonable(value):
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"ragged": [jsonable(v) for v in value], "dtype": "object"}
        return {"array": value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def capture(fn):
    """Run fn, returning (result or error, HF log/warning messages)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    hf_logger = logging.getLogger("transformers")
    hf_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = {"output": {k: jsonable(v) for k, v in dict(fn()).items()}}
            except Exception as err:  # noqa: BLE001 - the error type is part of the golden
                result = {"error": type(err).__name__, "message": str(err)[:300]}
    finally:
        hf_logger.removeHandler(handler)
    messages = [m for m in stream.getvalue().splitlines() if m.strip()] + [str(w.message) for w in caught]
    result["messages"] = messages
    return result


def call_cases():
    """Inputs x keyword sets for __call__ (slow reference)."""
    singles = ["Hello world, this is a test of the tokenizer.",
               "\u041f\u0440\u0438\u0432\u0435\u0442 <mask> \u043c\u0438\u0440",
               "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059", "", "short"]
    pairs_a = ["What is the capital of France?", "who", "\u00bfQu\u00e9 es esto?", "a b c d e f g h i j k l m n o p"]
    pairs_b = ["Paris is the capital and most populous city of France.", "nobody knows",
               "Es una prueba <mask> larga.", "x"]
    inputs = {
        "single": (singles[0], None),
        "single_mask": (singles[1], None),
        "single_empty": ("", None),
        "pair": (pairs_a[0], pairs_b[0]),
        "batch": (singles, None),
        "batch_pairs": (pairs_a, pairs_b),
        "batch_tuples": ([[a, b] for a, b in zip(pairs_a, pairs_b)], None),
        "words": (["Hello", "world", "<mask>", "\u6771\u4eac"], None),
        "batch_words": ([["Hello", "world"], ["a", "b", "c", "<mask>"]], None),
    }
    kwargs_list = [
        {},
        {"add_special_tokens": False},
        {"padding": True},
        {"padding": "longest", "return_tensors": "np"},
        {"padding": "max_length", "max_length": 24},
        {"padding": "max_length", "max_length": 24, "padding_side": "left", "return_tensors": "np"},
        {"padding": True, "pad_to_multiple_of": 8},
        {"padding": "max_length", "max_length": 20, "pad_to_multiple_of": 8},
        {"truncation": True, "max_length": 8},
        {"truncation": "longest_first", "max_length": 9, "padding": True},
        {"truncation": "only_first", "max_length": 12},
        {"truncation": "only_second", "max_length": 12},
        {"truncation": True, "max_length": 8, "stride": 2, "return_overflowing_tokens": True},
        {"truncation": "only_second", "max_length": 14, "stride": 3, "return_overflowing_tokens": True},
        {"truncation": "only_first", "max_length": 11, "stride": 1, "return_overflowing_tokens": True, "padding": True},
        {"truncation": True, "max_length": 8, "return_overflowing_tokens": True, "return_tensors": "np",
         "padding": True},
        {"max_length": 7},
        {"return_tensors": "np"},
        {"return_attention_mask": False},
        {"return_token_type_ids": True, "return_special_tokens_mask": True, "return_length": True},
        {"return_token_type_ids": True, "return_special_tokens_mask": True, "return_length": True, "padding": True,
         "padding_side": "left", "truncation": True, "max_length": 10},
        {"return_length": True, "padding": "max_length", "max_length": 16},
        {"return_special_tokens_mask": True, "add_special_tokens": False, "padding": True},
        {"split_special_tokens": True},
        {"padding": "max_length"},
        {"truncation": True},
        {"truncation": True, "max_length": 4},
        {"truncation": "only_second", "max_length": 6},
        {"padding": True, "max_length": 30},
        {"return_token_type_ids": True, "add_special_tokens": False},
        {"return_overflowing_tokens": True, "truncation": "longest_first", "max_length": 10},
    ]
    for name, (text, pair) in inputs.items():
        for kwargs in kwargs_list:
            is_words = name.endswith("words")
            yield name, text, pair, dict(kwargs, **({"is_split_into_words": True} if is_words else {}))


def window_cases():
    """Inputs for the fast layout of overflow (offsets + overflowing tokens); texts whose offsets agree."""
    texts = ["Hello world this is a long sentence about many things", "The capital of France is Paris, a city.",
             "Paris is the capital and most populous city of France, with an estimated population."]
    questions = ["What is the capital?", "Where is it?", "How many people live there?"]
    cases = [
        ("single", texts[0], None, {"truncation": True, "max_length": 8, "stride": 2}),
        ("single_left_pad", texts[0], None, {"truncation": True, "max_length": 9, "stride": 3, "padding": "max_length",
                                             "padding_side": "left"}),
        ("batch", texts, None, {"truncation": True, "max_length": 10, "stride": 4, "padding": True,
                                "return_special_tokens_mask": True, "return_length": True}),
        ("batch_np", texts, None, {"truncation": True, "max_length": 10, "stride": 0, "padding": True,
                                   "return_tensors": "np"}),
        ("qa", questions, texts, {"truncation": "only_second", "max_length": 28, "stride": 4, "padding": "max_length",
                                  "return_special_tokens_mask": True, "return_length": True}),
        ("qa_first", texts, questions, {"truncation": "only_first", "max_length": 22, "stride": 2}),
        ("no_truncation", texts[:2], None, {}),
        ("no_overflow_needed", texts[:2], None, {"truncation": True, "max_length": 64}),
    ]
    for name, text, pair, kwargs in cases:
        yield name, text, pair, dict(kwargs, return_overflowing_tokens=True, return_offsets_mapping=True)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main() -> int:
    slow = XLMRobertaTokenizer.from_pretrained(OUT)
    fast = XLMRobertaTokenizerFast.from_pretrained(OUT)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(OUT, "sentencepiece.bpe.model"))

    strings, offset_classes, fast_id_mismatch = [], Counter(), []
    for source, text in sample_strings():
        ids = slow(text)["input_ids"]
        ref_ids, ref_offsets = reference_offsets(slow, sp, text)
        assert [0] + ref_ids + [2] == ids, f"offset reference does not reproduce HF ids for {text!r}"
        fast_enc = fast(text, return_offsets_mapping=True)
        entry = {
            "source": source, "script": dominant_script(text), "text": text,
            "tokens": slow.tokenize(text), "ids": ids,
            "ids_no_special": slow(text, add_special_tokens=False)["input_ids"],
            "decode": slow.decode(ids), "decode_skip": slow.decode(ids, skip_special_tokens=True),
            "decode_clean": slow.decode(ids, clean_up_tokenization_spaces=True),
            "decode_skip_clean": slow.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True),
            "special_tokens_mask": slow.get_special_tokens_mask(ids, already_has_special_tokens=True),
            "fast_ids_equal": fast_enc["input_ids"] == ids,
        }
        # the fast tokenizer's offsets, where it gives the slow tokenizer's ids (see the module docstring)
        entry["offsets"] = [list(o) for o in fast_enc["offset_mapping"]] if entry["fast_ids_equal"] else None
        if not entry["fast_ids_equal"]:
            fast_id_mismatch.append(text)
        else:
            offset_classes["tokens"] += len(ids)
            offset_classes["differing_from_sentencepiece_spans"] += sum(
                tuple(a) != tuple(b) for a, b in zip([[0, 0]] + ref_offsets + [[0, 0]], fast_enc["offset_mapping"]))
        strings.append(entry)

    pairs = [(strings[i]["text"], strings[-2 - i]["text"]) for i in range(0, 300, 10)]
    pair_goldens = [{"text": a, "pair": b, "ids": slow(a, b)["input_ids"],
                     "special_tokens_mask": slow(a, b, return_special_tokens_mask=True)["special_tokens_mask"],
                     "token_type_ids": slow(a, b, return_token_type_ids=True)["token_type_ids"]} for a, b in pairs]

    calls = []
    for name, text, pair, kwargs in call_cases():
        slow.deprecation_warnings.clear()
        result = capture(lambda: slow(text, pair, **kwargs))
        calls.append({"input": name, "text": text, "pair": pair, "kwargs": kwargs, **result})

    # truncation_side="left" is a tokenizer attribute in HF
    slow.truncation_side = "left"
    for kwargs in ({"truncation": True, "max_length": 8, "stride": 2, "return_overflowing_tokens": True},
                   {"truncation": "longest_first", "max_length": 9}, {"truncation": "only_second", "max_length": 12}):
        for name, text, pair in (("single", "Hello world, this is a test of the tokenizer.", None),
                                 ("pair", "What is the capital of France?",
                                  "Paris is the capital and most populous city of France.")):
            if pair is None and kwargs.get("truncation") != True:  # noqa: E712
                continue
            slow.deprecation_warnings.clear()
            result = capture(lambda: slow(text, pair, **kwargs))
            calls.append({"input": name, "text": text, "pair": pair, "kwargs": kwargs, "truncation_side": "left",
                          **result})
    slow.truncation_side = "right"

    windows = []
    for name, text, pair, kwargs in window_cases():
        result = capture(lambda: fast(text, pair, **kwargs))
        # the chosen texts must have the slow tokenizer's ids in the fast one (checked per text)
        for t in ([text] if isinstance(text, str) else text) + ([] if pair is None else
                                                                 [pair] if isinstance(pair, str) else pair):
            assert fast(t)["input_ids"] == slow(t)["input_ids"], f"window text {t!r}: fast ids differ"
        windows.append({"name": name, "text": text, "pair": pair, "kwargs": kwargs, **result})
    # fast's windows give token_type_ids 1 to overflow rows of pairs (a tokenizers quirk); the slow rule is zeros

    decode_cases = []
    rng = np.random.default_rng(0)
    id_lists = [[0, 1, 2, 3, len(slow) - 1], [0, 35, 2, 2, 36, 2, 1, 1], [len(slow) - 1] * 3, [5], [],
                [1, 1, 0, 100, 200, 300, 2]]
    id_lists += [rng.integers(0, len(slow), size=int(n)).tolist() for n in rng.integers(1, 40, size=40)]
    for ids in id_lists:
        entry = {"ids": ids}
        for key, kw in (("plain", {}), ("skip", {"skip_special_tokens": True}),
                        ("clean", {"clean_up_tokenization_spaces": True}),
                        ("skip_clean", {"skip_special_tokens": True, "clean_up_tokenization_spaces": True})):
            entry[key] = slow.decode(ids, **kw)
        entry["tokens"] = slow.convert_ids_to_tokens(ids)
        entry["tokens_skip"] = slow.convert_ids_to_tokens(ids, skip_special_tokens=True)
        entry["special_tokens_mask"] = slow.get_special_tokens_mask(ids, already_has_special_tokens=True)
        decode_cases.append(entry)
    single_id_decodes = {str(i): slow.decode(i) for i in (0, 1, 2, 3, 4, 5, 100, len(slow) - 1)}

    token_queries = ["\u2581He", "nonexistent", "<mask>", "<unk>", "<s>", "</s>", "<pad>", "\u2581", ",", "", "<MASK>"]
    vocab = slow.get_vocab()
    vocab_blob = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]), ensure_ascii=False).encode("utf-8")

    layout = []
    for a, b in (([10, 11, 12], None), ([10, 11], [20, 21, 22]), ([], None), ([], [])):
        layout.append({"a": a, "b": b, "build": slow.build_inputs_with_special_tokens(a, b),
                       "mask": slow.get_special_tokens_mask(a, b),
                       "types": slow.create_token_type_ids_from_sequences(a, b)})

    too_long = capture(lambda: slow(long_text()))
    goldens = {
        "vocab": {"len": len(slow), "vocab_size": slow.vocab_size, "sha256": hashlib.sha256(vocab_blob).hexdigest(),
                  "all_special_tokens": slow.all_special_tokens, "all_special_ids": slow.all_special_ids,
                  "special_tokens_map": slow.special_tokens_map,
                  "ids": {a: getattr(slow, a) for a in ("bos_token_id", "eos_token_id", "unk_token_id",
                                                        "sep_token_id", "pad_token_id", "cls_token_id",
                                                        "mask_token_id")},
                  "model_max_length": slow.model_max_length,
                  "tokens_to_ids": {t: slow.convert_tokens_to_ids(t) for t in token_queries},
                  "ids_to_tokens": slow.convert_ids_to_tokens(list(range(0, 12)) + [len(slow) - 2, len(slow) - 1])},
        "strings": strings,
        "pairs": pair_goldens,
        "layout": layout,
        "calls": calls,
        "windows": windows,
        "decode": decode_cases,
        "single_id_decodes": single_id_decodes,
        "too_long": {"text": long_text(), "messages": too_long["messages"]},
    }
    path = os.path.join(OUT, "goldens.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=False, separators=(",", ":"))

    scripts = Counter(s["script"] for s in strings)
    manifest_path = os.path.join(OUT, "MANIFEST.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    manifest["goldens"] = {
        "script": "tools/make_tokenizer_goldens.py",
        "versions": {"transformers": transformers.__version__, "tokenizers": __import__("tokenizers").__version__,
                     "sentencepiece": spm.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "reference": "slow XLMRobertaTokenizer for ids/masks/decode; fast XLMRobertaTokenizerFast (converted from "
                     "the .model) for offsets and windowed overflow",
        "files": {"goldens.json": sha256_file(path),
                  "sentencepiece.bpe.model": sha256_file(os.path.join(OUT, "sentencepiece.bpe.model"))},
        "counts": {"strings": len(strings), "scripts": len(scripts), "pairs": len(pair_goldens), "calls": len(calls),
                   "windows": len(windows), "decode": len(decode_cases)},
        "scripts": dict(sorted(scripts.items())),
        "fast_offsets": dict(sorted(offset_classes.items())),
        "fast_id_mismatches": fast_id_mismatch,
    }
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False, sort_keys=True)
        f.write("\n")
    print(f"wrote {path}: {len(strings)} strings over {len(scripts)} scripts, {len(calls)} calls, "
          f"{len(windows)} window cases; fast offsets {dict(offset_classes)}; "
          f"fast id mismatches {len(fast_id_mismatch)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
