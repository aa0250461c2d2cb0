"""The scenarios of the tokenizer's id mapping and HF API, shared by the live test and the golden (issue 13, parts 2-3).

Each scenario is a function `(lib, paths, tmp) -> result`: `lib` is a module with `XLMRobertaTokenizer` and
`AddedToken` (`transformers` or `xlmr_np.text`), `paths` maps model names to .model files, `tmp` is an empty
directory.  The result is plain JSON (`jsonable`), big lists as sha256 digests (`digest`), so the same function
run on HF slow gives what tools/make_tokenizer_api_goldens.py stores in reference_outputs/tokenizer/
api_goldens.json, and run on xlmr_np what tests/test_tokenizer_api_goldens.py compares with it;
tests/test_tokenizer_api_live.py compares the two sides live.  Texts are fixed (no hypothesis here).
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

SHIPPED = "xlmr_test_8000"
MODEL_NAMES = [SHIPPED, "bpe_bytefb", "bpe_specials", "unigram_bytefb", "unigram_identity", "unigram_nfkc_cf"]

# strings that are no piece of some model (or are one of another model's special pieces)
ODD = ["zzqqxx", "[PAD]", "[UNK]", "[BOS]", "<ctrl>", "<user>", "<sep2>", "@@", "", "\u2581", "<unk>", "<pad>",
       "<mask>", "<s>", "</s>", "\u04ad", "<0x41>"]
# fixed texts for ids, tokens, decode and split_special_tokens on every model: special tokens glued and spaced,
# pieces of tools/make_spm_models.py (control, user-defined, byte-fallback), unknown characters, whitespace
TEXTS = ["Hello world", "", " ", "[PAD] \u04ad", "a <mask> b<mask>c  <mask>  d", "<s>x</s> <pad><unk>",
         "<user> <ctrl> <sep2> @@ x@@y", "naïve Ünïcödé Привет 日本語 العربية",
         "\U0001f355 \U0001f44d\U0001f3fd \u04ad\u04ad", "ＡＢＣ１２３ ﬁne ½ e\u0301",
         "tab\there\nnew  line\u3000ideo\u00a0nbsp", "<0x41> \x1f\x1c\x1d\x1e [UNK] [BOS]", "the the THE The",
         "   leading and trailing   "]
SHARD = 97  # every SHARD-th entry of a big list is stored explicitly next to its digest

WORDS = ["Paris", "is", "the", "<mask>", "of", "France."]
ENCODE_PLUS = [(("Hello world",), {}), (("Hello", "world"), {"return_token_type_ids": True}),
               ((WORDS,), {"is_split_into_words": True}), ((["\u2581Hello", "\u2581world"],), {}),
               (([5, 6, 7],), {"max_length": 4, "truncation": True, "return_overflowing_tokens": True}),
               (([5, 6, 7], [8, 9]), {"padding": "max_length", "max_length": 9, "return_tensors": "np"}),
               (("a b c d e f",), {"max_length": 5, "truncation": True, "return_special_tokens_mask": True,
                                   "return_length": True, "padding_side": "left"})]
BATCH = ["Hello world", ("a pair", "of texts"), "x"]
BATCH_KWARGS = [{}, {"padding": True}, {"padding": True, "return_tensors": "np", "pad_to_multiple_of": 8}]
SPLIT_BATCH = [(["a", "b"], ["c"]), (["d"], ["e", "f"])]
IDS, PAIR_IDS = list(range(10, 30)), list(range(40, 47))
PREPARE_KWARGS = [{}, {"max_length": 12, "truncation": "longest_first"},
                  {"max_length": 12, "truncation": "only_first", "return_overflowing_tokens": True, "stride": 2},
                  {"padding": "max_length", "max_length": 40},
                  {"add_special_tokens": False, "return_attention_mask": False},
                  {"return_tensors": "np", "prepend_batch_axis": True}, {"return_tensors": "np"}]
TRUNCATE_ARGS = [(IDS, None, 3), (IDS, PAIR_IDS, 5, "longest_first"), (IDS, PAIR_IDS, 4, "only_second", 2),
                 (IDS, PAIR_IDS, 25, "only_second"), (IDS, None, 0), (IDS, PAIR_IDS, 3, "only_first", 1)]
PAD_TEXTS = ["short", "a much longer text than that", "mid length"]
PAD_KWARGS = [{}, {"padding": "longest"}, {"padding": "max_length", "max_length": 16}, {"padding": False},
              {"pad_to_multiple_of": 8}, {"padding_side": "left"}, {"return_attention_mask": False},
              {"return_tensors": "np"}, {"padding": "max_length", "max_length": 3}]
PAD_SHAPES = ["list_of_encodings", "dict_of_lists", "one_encoding"]
ADDED_TEXT = ["a <new> b [X]   c [Y] d x[Y]y <ent>  <cls> <sp>", "<unk> \u2581the the [n]"]
ADD_MODELS = [SHIPPED, "unigram_identity"]  # on unigram_identity new tokens take ids already used (HF's collision)


# ---------------------------------------------------------------- canonical JSON


def jsonable(x):
    """Plain JSON of an output: dicts (BatchEncoding) by key, tuples as lists, arrays with dtype and shape."""
    if isinstance(x, np.ndarray):
        return {"ndarray": str(x.dtype), "shape": list(x.shape), "values": x.tolist()}
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if hasattr(x, "keys") and hasattr(x, "__getitem__"):
        return {str(k): jsonable(x[k]) for k in x.keys()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "content") and hasattr(x, "single_word"):  # AddedToken, either library's
        return {a: getattr(x, a) for a in ("content", "single_word", "lstrip", "rstrip", "normalized", "special")}
    return x


def canonical(x) -> str:
    return json.dumps(jsonable(x), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(x) -> str:
    """sha256 of the canonical JSON of `x`."""
    return hashlib.sha256(canonical(x).encode("utf-8")).hexdigest()


def big(values) -> dict:
    """A long list: its length, digest and every SHARD-th element (to show where a difference is)."""
    values = jsonable(list(values))
    sample = {str(i): values[i] for i in range(0, len(values), SHARD)}
    return {"len": len(values), "sha256": digest(values), "sample": sample}


def saved_files(directory, returned) -> dict:
    """What `save_pretrained` returned (file names) and the JSON files it wrote."""
    out = {"returned": [os.path.basename(os.fspath(p)) for p in returned],
           "written": sorted(os.listdir(directory))}
    for name in ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        path = os.path.join(directory, name)
        out[name] = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else None
    return out


# ---------------------------------------------------------------- id mapping on every model


def vocabulary(name):
    def run(lib, paths, tmp):
        tok = lib.XLMRobertaTokenizer(paths[name])
        attrs = ("bos_token_id", "eos_token_id", "unk_token_id", "sep_token_id", "cls_token_id", "pad_token_id",
                 "mask_token_id", "fairseq_offset")
        vocab = sorted(tok.get_vocab().items(), key=lambda kv: (kv[1], kv[0]))
        return {"len": len(tok), "vocab_size": tok.vocab_size, "ids": {a: getattr(tok, a) for a in attrs},
                "all_special_ids": tok.all_special_ids, "all_special_tokens": tok.all_special_tokens,
                "added_tokens_encoder": dict(tok.added_tokens_encoder),
                "fairseq_tokens_to_ids": dict(tok.fairseq_tokens_to_ids), "get_vocab": big(vocab)}
    return run


def token_conversions(name):
    def run(lib, paths, tmp):
        tok = lib.XLMRobertaTokenizer(paths[name])
        pieces = [tok.sp_model.IdToPiece(i) for i in range(tok.sp_model.get_piece_size())]
        ids = list(range(max(tok.get_vocab().values()) + 1))  # every id: on unigram_identity one more than len
        return {"pieces_to_ids": big(tok.convert_tokens_to_ids(pieces)),
                "odd_to_ids": dict(zip(ODD, tok.convert_tokens_to_ids(ODD))),
                "ids_to_tokens": big(tok.convert_ids_to_tokens(ids)),
                "decode_300": [tok.decode(ids[:300], skip_special_tokens=skip) for skip in (False, True)]}
    return run


def texts(name):
    def run(lib, paths, tmp):
        tok = lib.XLMRobertaTokenizer(paths[name])
        out = []
        for text in TEXTS:
            ids = tok(text)["input_ids"]
            out.append({"ids": ids, "tokens": tok.tokenize(text), "decode": tok.decode(ids),
                        "decode_skip": tok.decode(ids, skip_special_tokens=True),
                        "split_special_tokens": tok(text, split_special_tokens=True)["input_ids"]})
        return out
    return run


# ---------------------------------------------------------------- the API, on the shipped model


def shipped(lib, paths):
    return lib.XLMRobertaTokenizer(paths[SHIPPED])


def encode_plus(i):
    args, kwargs = ENCODE_PLUS[i]
    return lambda lib, paths, tmp: shipped(lib, paths).encode_plus(*args, **kwargs)


def encode_split_words(lib, paths, tmp):
    return shipped(lib, paths).encode(WORDS, is_split_into_words=True)


def batch_encode_plus(i):
    return lambda lib, paths, tmp: shipped(lib, paths).batch_encode_plus(BATCH, **BATCH_KWARGS[i])


def batch_encode_split_words(lib, paths, tmp):
    return shipped(lib, paths).batch_encode_plus(SPLIT_BATCH, is_split_into_words=True)


def prepare_for_model(i, pair):
    return lambda lib, paths, tmp: shipped(lib, paths).prepare_for_model(IDS, PAIR_IDS if pair else None,
                                                                         **PREPARE_KWARGS[i])


def truncate_sequences(i):
    return lambda lib, paths, tmp: shipped(lib, paths).truncate_sequences(*TRUNCATE_ARGS[i])


def pad_input(tok, shape):
    rows = [tok(t) for t in PAD_TEXTS]
    if shape == "list_of_encodings":
        return rows
    if shape == "dict_of_lists":
        return {"input_ids": [r["input_ids"] for r in rows]}
    return dict(rows[1])


def pad(i, shape):
    def run(lib, paths, tmp):
        tok = shipped(lib, paths)
        return tok.pad(pad_input(tok, shape), **PAD_KWARGS[i])
    return run


def pad_arrays(lib, paths, tmp):
    tok = shipped(lib, paths)
    return tok.pad({"input_ids": [np.array(tok(t)["input_ids"]) for t in PAD_TEXTS]})


def pad_with_special_tokens_mask(lib, paths, tmp):
    tok = shipped(lib, paths)
    return tok.pad(dict(tok(["a", "b c d"], return_special_tokens_mask=True)), padding="max_length", max_length=7)


def pad_without_input_ids(lib, paths, tmp):
    try:
        shipped(lib, paths).pad({"attention_mask": [[1]]})
    except ValueError as err:
        return {"error": "ValueError", "names_input_ids": "input_ids" in str(err)}
    return {"error": None}


def with_added_tokens(lib, path):
    """A tokenizer after the add_tokens / add_special_tokens calls, and what each call returned."""
    tok = lib.XLMRobertaTokenizer(path)
    token = lib.AddedToken
    counts = [tok.add_tokens(["<new>", "\u2581the", "<unk>", "<new>"]),
              tok.add_tokens([token("[X]", rstrip=True), token("[Y]", lstrip=True, single_word=True),
                              token("[n]", normalized=False)]),
              tok.add_special_tokens({"additional_special_tokens": ["<ent>", "<new>"], "cls_token": "<cls>"}),
              tok.add_tokens("<sp>", special_tokens=True)]
    return tok, counts


def add_tokens(name):
    def run(lib, paths, tmp):
        base = len(lib.XLMRobertaTokenizer(paths[name]))
        tok, counts = with_added_tokens(lib, paths[name])
        ids = tok(ADDED_TEXT)["input_ids"]
        vocab = tok.get_vocab()
        out = {"counts": counts, "len": len(tok), "all_special_ids": tok.all_special_ids,
               "get_vocab": digest(sorted(vocab.items(), key=lambda kv: (kv[1], kv[0]))),
               "get_vocab_from_base": {t: i for t, i in vocab.items() if i >= base - 1},
               "added_tokens_decoder": {str(i): t for i, t in tok.added_tokens_decoder.items()},
               "ids": ids, "batch_decode": [tok.batch_decode(ids, skip_special_tokens=s) for s in (False, True)]}
        directory = os.path.join(tmp, "saved")
        out["saved"] = saved_files(directory, tok.save_pretrained(directory))
        if name == SHIPPED:  # reloading files with collided ids: HF drops a special token xlmr_np keeps
            again = lib.XLMRobertaTokenizer.from_pretrained(directory)
            out["reloaded"] = {"len": len(again), "ids": again(ADDED_TEXT)["input_ids"]}
        return out
    return run


def special_token_attributes(lib, paths, tmp):
    tok = lib.XLMRobertaTokenizer(paths[SHIPPED], keep_accents=True, my_option=[1, 2], split_special_tokens=True)
    out = {"init_kwargs": {k: v for k, v in tok.init_kwargs.items() if k != "mask_token"}}
    tok.bos_token_id = None
    tok.mask_token = "<mask>"
    tok.pad_token_id = 5
    out.update(bos_token=tok.bos_token, pad_token=tok.pad_token, pad_token_id=tok.pad_token_id,
               special_tokens_map=tok.special_tokens_map, all_special_ids=tok.all_special_ids,
               ids=tok("a <mask>", padding="max_length", max_length=6)["input_ids"])
    try:
        tok.eos_token = 5
        out["eos_token_5"] = None
    except ValueError as err:
        out["eos_token_5"] = {"error": "ValueError", "names_non_string": "non-string" in str(err)}
    directory = os.path.join(tmp, "saved")
    out["saved"] = saved_files(directory, tok.save_pretrained(directory))
    again = lib.XLMRobertaTokenizer.from_pretrained(directory)
    out["reloaded"] = {"split_special_tokens": again.split_special_tokens,
                       "keep_accents": again.init_kwargs["keep_accents"], "ids": again("<s>x")["input_ids"]}
    return out


def scenarios() -> dict:
    """scenario id -> function (lib, paths, tmp) -> result (before `jsonable`)."""
    out = {}
    for name in MODEL_NAMES:
        out[f"vocabulary/{name}"] = vocabulary(name)
        out[f"token_conversions/{name}"] = token_conversions(name)
        out[f"texts/{name}"] = texts(name)
    out.update({f"encode_plus/{i}": encode_plus(i) for i in range(len(ENCODE_PLUS))})
    out["encode/is_split_into_words"] = encode_split_words
    out.update({f"batch_encode_plus/{i}": batch_encode_plus(i) for i in range(len(BATCH_KWARGS))})
    out["batch_encode_plus/is_split_into_words"] = batch_encode_split_words
    for i in range(len(PREPARE_KWARGS)):
        out[f"prepare_for_model/{i}/single"] = prepare_for_model(i, False)
        out[f"prepare_for_model/{i}/pair"] = prepare_for_model(i, True)
    out.update({f"truncate_sequences/{i}": truncate_sequences(i) for i in range(len(TRUNCATE_ARGS))})
    for i in range(len(PAD_KWARGS)):
        for shape in PAD_SHAPES:
            out[f"pad/{i}/{shape}"] = pad(i, shape)
    out["pad/arrays"] = pad_arrays
    out["pad/special_tokens_mask"] = pad_with_special_tokens_mask
    out["pad/no_input_ids"] = pad_without_input_ids
    out.update({f"add_tokens/{name}": add_tokens(name) for name in ADD_MODELS})
    out["special_token_attributes"] = special_token_attributes
    return out


def model_paths(root) -> dict:
    """name -> .model file of the six models under reference_outputs/tokenizer (tools/make_offsets_goldens.py)."""
    tok_dir = os.path.join(root, "reference_outputs", "tokenizer")
    return {name: os.path.join(tok_dir, "sentencepiece.bpe.model") if name == SHIPPED
            else os.path.join(tok_dir, "models", name, "sentencepiece.bpe.model") for name in MODEL_NAMES}
