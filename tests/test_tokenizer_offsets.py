"""Offsets against HF's fast tokenizer on thousands of strings and six SentencePiece models (no transformers).

reference_outputs/tokenizer/offsets_corpus.json holds ~4,800 strings (gettext catalog sentences of ~190
locales, the golden strings, generated edge cases); offsets_goldens.json holds, per model, digests of HF slow's
ids and of HF fast's `offset_mapping` for every string where the fast tokenizer gives the slow one's ids
(tools/make_offsets_goldens.py).  Models: the shipped one and those of tools/make_spm_models.py (BPE and
unigram, byte fallback, user-defined and control pieces, `<unk>` at spm id 3, identity and nmt_nfkc_cf).
"""

import json
import os
import sys

import pytest

from xlmr_np.text import XLMRobertaTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOK_DIR = os.path.join(ROOT, "reference_outputs", "tokenizer")
sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_offsets_goldens import CORPUS, GOLDENS, digest, model_paths  # noqa: E402

MODELS = model_paths()


@pytest.fixture(scope="module")
def corpus():
    with open(CORPUS, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def goldens():
    with open(GOLDENS, encoding="utf-8") as f:
        return json.load(f)


def test_corpus_and_models_are_the_recorded_ones(corpus, goldens):
    import hashlib

    with open(CORPUS, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == goldens["corpus_sha256"]
    assert sorted(goldens["models"]) == sorted(MODELS) and len(MODELS) == 6
    assert len(corpus) > 4000


@pytest.mark.parametrize("name", sorted(MODELS))
def test_offsets_equal_hf_fast(name, corpus, goldens):
    golden = goldens["models"][name]
    tok = XLMRobertaTokenizer(MODELS[name])
    enc = tok(corpus, return_offsets_mapping=True)
    compared = wrong = 0
    bad = []
    for i, text in enumerate(corpus):
        if golden["offsets"][i] is None or digest(enc["input_ids"][i]) != golden["ids"][i]:
            continue
        compared += 1
        if digest([list(o) for o in enc["offset_mapping"][i]]) != golden["offsets"][i]:
            wrong += 1
            bad.append(text)
    assert (wrong, bad[:5]) == (0, [])
    assert compared == golden["counts"]["strings_compared"]  # ids equal HF slow on every string (issue 13.2)
