"""Directories with only tokenizer.json (issue 13.4): the SentencePiece model rebuilt, against HF (live).

For each model of the offsets goldens: HF slow -> HF fast (`XLMRobertaTokenizerFast`, converted), its
`save_pretrained` directory without the .model, loaded by xlmr_np.  Compared on a share of the offsets corpus:
ids with HF slow on the original .model (and so with HF fast wherever HF's two agree), offsets with HF fast.
BPE tokenizer.json files are refused with the reason.
"""

import json
import os
import shutil
import sys

import pytest

transformers = pytest.importorskip("transformers")

from xlmr_np.text import XLMRobertaTokenizer  # noqa: E402
from xlmr_np.text.tokenizer_json import UnsupportedTokenizerJson  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_offsets_goldens import CORPUS, model_paths  # noqa: E402

MODELS = model_paths()
UNIGRAM = ["xlmr_test_8000", "unigram_nfkc_cf", "unigram_identity", "unigram_bytefb"]


@pytest.fixture(scope="module")
def corpus():
    with open(CORPUS, encoding="utf-8") as f:
        return json.load(f)[::4]


def json_only_dir(tmp_path, name):
    slow_dir = tmp_path / "slow"
    slow_dir.mkdir()
    shutil.copy(MODELS[name], slow_dir / "sentencepiece.bpe.model")
    fast = transformers.XLMRobertaTokenizerFast.from_pretrained(slow_dir, from_slow=True)
    fast.save_pretrained(tmp_path / "fast")
    os.remove(tmp_path / "fast" / "sentencepiece.bpe.model")
    return tmp_path / "fast", fast


@pytest.mark.parametrize("name", UNIGRAM)
def test_rebuilt_model_equals_hf(tmp_path, corpus, name):
    directory, fast = json_only_dir(tmp_path, name)
    ours = XLMRobertaTokenizer.from_pretrained(directory)
    slow = transformers.XLMRobertaTokenizer(MODELS[name])
    got = ours(corpus, return_offsets_mapping=True)
    theirs = fast(corpus, return_offsets_mapping=True)
    slow_ids = slow(corpus)["input_ids"]
    assert (len(ours), ours.get_vocab()) == (len(fast), fast.get_vocab())
    compared = 0
    for i, text in enumerate(corpus):
        if name != "unigram_bytefb":  # HF's converter writes byte_fallback false: HF fast has no byte fallback
            assert got["input_ids"][i] == slow_ids[i], text
        if got["input_ids"][i] == theirs["input_ids"][i]:
            compared += 1
            assert [tuple(o) for o in got["offset_mapping"][i]] == [tuple(o) for o in theirs["offset_mapping"][i]]
    assert compared > 0.5 * len(corpus)
    ours.save_pretrained(tmp_path / "again")  # a .model now, which HF slow reads
    again = transformers.XLMRobertaTokenizer.from_pretrained(tmp_path / "again")
    assert again(corpus[:200])["input_ids"] == got["input_ids"][:200]


@pytest.mark.parametrize("name", ["bpe_specials", "bpe_bytefb"])
def test_bpe_tokenizer_json_is_refused_with_the_reason(tmp_path, name):
    directory, _ = json_only_dir(tmp_path, name)
    with pytest.raises(UnsupportedTokenizerJson, match="BPE model: sentencepiece's BPE picks merges by piece score"):
        XLMRobertaTokenizer.from_pretrained(directory)


def test_unmappable_normalizer_is_refused(tmp_path):
    directory, _ = json_only_dir(tmp_path, "xlmr_test_8000")
    data = json.load(open(directory / "tokenizer.json"))
    data["normalizer"]["normalizers"].append({"type": "Lowercase"})
    json.dump(data, open(directory / "tokenizer.json", "w"))
    with pytest.raises(UnsupportedTokenizerJson, match="normalizer Lowercase"):
        XLMRobertaTokenizer.from_pretrained(directory)
