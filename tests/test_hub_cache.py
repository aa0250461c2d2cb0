"""A hub id found in the local Hugging Face cache loads the model and the tokenizer, with no network."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import ROOT
from xlmr_np import XLMRobertaForMaskedLM, XLMRobertaTokenizer


def test_hub_id_from_cache(tmp_path, monkeypatch):
    demo = ROOT / "models" / "xlmr-demo"
    repo = tmp_path / "hub" / "models--someone--xlmr-demo"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(demo, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = XLMRobertaTokenizer.from_pretrained("someone/xlmr-demo")
    model = XLMRobertaForMaskedLM.from_pretrained("someone/xlmr-demo")
    enc = tok(["Bonjour le <mask>."], return_tensors="np")
    local = XLMRobertaForMaskedLM.from_pretrained(demo)(**enc).logits
    np.testing.assert_array_equal(model(**enc).logits, local)
    with pytest.raises(FileNotFoundError, match="someone/missing"):
        XLMRobertaTokenizer.from_pretrained("someone/missing")
