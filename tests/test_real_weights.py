"""Tier 4: the real xlm-roberta-base, when XLMR_NP_MODEL_DIR points at a downloaded copy.

Expected values are Hugging Face's integration test (tests/models/xlm_roberta/test_modeling_xlm_roberta.py,
produced with fairseq's xlmr.extract_features), compared at the same atol 1e-3.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

MODEL_DIR = os.environ.get("XLMR_NP_MODEL_DIR")
pytestmark = pytest.mark.skipif(
    not MODEL_DIR, reason="real-weights tier: set XLMR_NP_MODEL_DIR to a local FacebookAI/xlm-roberta-base "
                          "directory (config.json, model.safetensors or pytorch_model.bin, sentencepiece.bpe.model)")

IDS = [[0, 581, 10269, 83, 99942, 136, 60742, 23, 70, 80583, 18276, 2]]  # "The dog is cute and lives in the garden house"
EXPECTED_LAST_FEATURE = [-0.0101, 0.1218, -0.0803, 0.0801, 0.1327, 0.0776, -0.1215, 0.2383, 0.3338, 0.3106, 0.0300,
                         0.0252]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_base_integration_values(dtype):
    from xlmr_np import XLMRobertaModel

    out = XLMRobertaModel.from_pretrained(MODEL_DIR, dtype=dtype)(input_ids=IDS)
    assert out.last_hidden_state.shape == (1, 12, 768)
    np.testing.assert_allclose(out.last_hidden_state[0, :, -1], EXPECTED_LAST_FEATURE, atol=1e-3)


def test_tokenizer_ids():
    from xlmr_np import XLMRobertaTokenizer

    tok = XLMRobertaTokenizer.from_pretrained(MODEL_DIR)
    assert tok("Hello World!")["input_ids"] == [0, 35378, 6661, 38, 2]
    assert tok("The dog is cute and lives in the garden house")["input_ids"] == IDS[0]


def test_fill_mask_is_sensible():
    from xlmr_np import XLMRobertaForMaskedLM, XLMRobertaTokenizer

    tok = XLMRobertaTokenizer.from_pretrained(MODEL_DIR)
    enc = tok("Paris is the <mask> of France.", return_tensors="np")
    logits = XLMRobertaForMaskedLM.from_pretrained(MODEL_DIR)(**enc).logits
    position = int(np.where(enc["input_ids"][0] == tok.mask_token_id)[0][0])
    top = tok.convert_ids_to_tokens(np.argsort(-logits[0, position])[:5].tolist())
    assert "▁capital" in top, top
