"""Live parity: xlmr_np's tokenizer against Hugging Face's, on hypothesis-drawn text (needs transformers).

The reference is transformers' slow XLMRobertaTokenizer built from the shipped model; offsets are checked
against HF's fast tokenizer (converted from the same model) wherever it gives the slow tokenizer's ids, with
and without the special tokens, on the shipped model and on the models of tools/make_spm_models.py.
"""

import os
import sys

import pytest

transformers = pytest.importorskip("transformers")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from xlmr_np.text import XLMRobertaTokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_DIR = os.path.join(ROOT, "reference_outputs", "tokenizer")
sys.path.insert(0, os.path.join(ROOT, "tools"))

# Character pools: many scripts, whitespace of every kind, marks, zero-width and control characters, emoji.
POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789.,;:!?'\"-()%",
    "абвгдежзийклмнопрстуфхцчшщъыьэюяЁё", "αβγδεζηθικλμνξοπρστυφχψωάέή", "אבגדהוזחטיכלמנסעפצקרשת",
    "ابتثجحخدذرزسشصضطظعغفقكلمنهوي", "अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशसह्ािीुूेैोौं",
    "กขคงจฉชซญดตถทธนบปผพฟภมยรลวศษสหอะัาิีึืุู่้๊๋", "東京日本語中文字漢你好世界的是不了人我在有他这",
    "あいうえおかきくけこアイウエオカキクケコンー", "가나다라마바사아자차카타파하한국어안녕", "ქართულიენაՀայերենᎠᏍᎦᏯ",
    " \t\n\r\u3000\xa0\u2003\u2028\u200b\u200c\u200d\ufeff\x00\x01\x1b\x7f\x85\x1c\x1f",
    "\u0301\u0308\u0303\u0323\u093c\u0e31\u302a", "ＡＢＣａｂｃ１２３！？ｶﾀｶﾅﾌﾟ①Ⅻ½²ﬁ㍿…",
    "😀👍🏽🇫🇷❤️🏳️‍🌈👨‍👩‍👧🍕",
]
SPECIALS = ["<mask>", "<s>", "</s>", "<pad>", "<unk>", " <mask>", "<mask> ", "  <mask>  "]

atoms = st.one_of(
    st.text(alphabet=st.sampled_from("".join(POOLS)), min_size=1, max_size=8),
    st.sampled_from(SPECIALS),
    st.text(min_size=1, max_size=4),  # anything hypothesis likes (no surrogates)
)
texts = st.lists(atoms, max_size=8).map("".join)


@pytest.fixture(scope="module")
def hf():
    return transformers.XLMRobertaTokenizer.from_pretrained(GOLDEN_DIR)


@pytest.fixture(scope="module")
def hf_fast():
    return transformers.XLMRobertaTokenizerFast.from_pretrained(GOLDEN_DIR)


@pytest.fixture(scope="module")
def ours():
    return XLMRobertaTokenizer.from_pretrained(GOLDEN_DIR)


FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(text=texts)
def test_ids_tokens_masks_decodes(hf, ours, text):
    want = hf(text, return_special_tokens_mask=True)
    got = ours(text, return_special_tokens_mask=True)
    assert dict(got) == dict(want)
    assert ours.tokenize(text) == hf.tokenize(text)
    ids = want["input_ids"]
    for kwargs in ({}, {"skip_special_tokens": True}, {"clean_up_tokenization_spaces": True}):
        assert ours.decode(ids, **kwargs) == hf.decode(ids, **kwargs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.lists(texts, min_size=1, max_size=3), b=st.lists(texts, min_size=3, max_size=3),
       options=st.fixed_dictionaries({
           "truncation": st.sampled_from([False, True, "only_first", "only_second", "longest_first"]),
           "max_length": st.integers(4, 24),
           "stride": st.integers(0, 3),
           "return_overflowing_tokens": st.booleans(),
           "padding": st.sampled_from([False, True, "max_length"]),
           "pad_to_multiple_of": st.sampled_from([None, 4]),
           "padding_side": st.sampled_from(["left", "right"]),
           "add_special_tokens": st.booleans(),
           "return_special_tokens_mask": st.booleans(),
           "return_length": st.booleans(),
           "return_tensors": st.sampled_from([None, "np"]),
       }),
       pairs=st.booleans(), single=st.booleans(), truncation_side=st.sampled_from(["left", "right"]))
def test_calls_with_truncation_padding_overflow(hf, ours, a, b, options, pairs, single, truncation_side):
    second = b[:len(a)] if pairs else None
    if single:
        a, second = a[0], (second[0] if second else None)
    ours._warned.clear()
    hf.truncation_side = ours.truncation_side = truncation_side
    try:
        try:
            want = hf(a, second, **options)
        except (ValueError, TypeError):  # e.g. max_length not a multiple of pad_to_multiple_of
            with pytest.raises(ValueError):
                ours(a, second, **options)
            return
        got = ours(a, second, **options)
    finally:
        hf.truncation_side = ours.truncation_side = "right"
    assert list(got) == list(want)
    for key in want:  # arrays (also ragged object arrays) compared through their exact repr
        assert repr(got[key]) == repr(want[key]), key


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_offsets(hf, hf_fast, ours, text):
    for add_special_tokens in (False, True):
        fast = hf_fast(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
        got = ours(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
        assert got["input_ids"] == hf(text, add_special_tokens=add_special_tokens)["input_ids"]
        if fast["input_ids"] == got["input_ids"]:
            assert [tuple(o) for o in got["offset_mapping"]] == [tuple(o) for o in fast["offset_mapping"]], text


@pytest.fixture(scope="module")
def other_models(tmp_path_factory):
    """(ours, HF slow, HF fast) for each model of reference_outputs/tokenizer/models/."""
    import glob
    import shutil
    import warnings

    out = []
    for path in sorted(glob.glob(os.path.join(GOLDEN_DIR, "models", "*", "sentencepiece.bpe.model"))):
        directory = tmp_path_factory.mktemp(os.path.basename(os.path.dirname(path)))
        shutil.copy(path, directory / "sentencepiece.bpe.model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # byte fallback "not implemented in the fast tokenizers"
            out.append((XLMRobertaTokenizer.from_pretrained(directory),
                        transformers.XLMRobertaTokenizer.from_pretrained(directory),
                        transformers.XLMRobertaTokenizerFast.from_pretrained(directory, from_slow=True)))
    assert len(out) >= 5
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_offsets_other_models(other_models, text):
    for ours_m, slow_m, fast_m in other_models:
        got = ours_m(text, return_offsets_mapping=True)
        fast = fast_m(text, return_offsets_mapping=True)
        if fast["input_ids"] == slow_m(text)["input_ids"] == got["input_ids"]:
            assert [tuple(o) for o in got["offset_mapping"]] == [tuple(o) for o in fast["offset_mapping"]], text


def test_saved_files_load_in_hf_both_ways(hf, ours, tmp_path):
    text = ["Paris is the <mask> of France.", "  Привет\tмир  <s>", "東京 ﾌﾟ 👍"]
    ours.save_pretrained(tmp_path / "ours")
    for cls in (transformers.XLMRobertaTokenizer, transformers.XLMRobertaTokenizerFast):
        loaded = cls.from_pretrained(tmp_path / "ours")
        assert loaded(text[:1])["input_ids"] == ours(text[:1])["input_ids"]
        assert loaded.model_max_length == ours.model_max_length
        assert loaded.added_tokens_decoder[loaded.mask_token_id].lstrip
    assert transformers.XLMRobertaTokenizer.from_pretrained(tmp_path / "ours")(text)["input_ids"] == ours(text)[
        "input_ids"]
    hf.save_pretrained(tmp_path / "hf")
    again = XLMRobertaTokenizer.from_pretrained(tmp_path / "hf")
    assert again(text)["input_ids"] == hf(text)["input_ids"]
    assert again.special_tokens_map == hf.special_tokens_map and len(again) == len(hf)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        import json
        with open(tmp_path / "hf" / name) as f1, open(tmp_path / "ours" / name) as f2:
            theirs, mine = json.load(f1), json.load(f2)
        assert {k: v for k, v in mine.items() if k in theirs} == {k: theirs[k] for k in mine if k in theirs}


def test_extra_added_tokens_from_a_saved_hf_tokenizer(tmp_path):
    hf = transformers.XLMRobertaTokenizer.from_pretrained(GOLDEN_DIR)
    hf.add_special_tokens({"additional_special_tokens": ["<ent>"]})
    hf.add_tokens([transformers.AddedToken("[X]", rstrip=True, lstrip=False)])
    hf.save_pretrained(tmp_path)
    ours = XLMRobertaTokenizer.from_pretrained(tmp_path)
    texts = ["a <ent> b [X]  c", "x[X]y<ent>", " [X] "]
    assert ours(texts)["input_ids"] == hf(texts)["input_ids"]
    assert len(ours) == len(hf)
    ids = hf(texts)["input_ids"]
    for kwargs in ({}, {"skip_special_tokens": True}):
        assert ours.batch_decode(ids, **kwargs) == hf.batch_decode(ids, **kwargs)
