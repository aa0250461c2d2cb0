"""Text -> logits: xlmr_np's tokenizer and model against Hugging Face's tokenizer and model (needs torch).

A tiny XLMRobertaForMaskedLM with every parameter random and vocab_size = len(tokenizer) (the shipped
8000-piece SentencePiece model + <pad> + <mask> = 8002) is built live with transformers 4.57.6 and saved;
HF runs its slow tokenizer and torch model, xlmr_np its tokenizer and NumPy model, from the same strings.
"""

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import xlmr_np  # noqa: E402
from conftest import tolerance_for  # noqa: E402
from hf_helpers import random_hf_model  # noqa: E402

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference_outputs",
                          "tokenizer")
TEXTS = [
    "Paris is the <mask> of France.",
    "  Привет,\tмир!  Как <mask> дела?",
    "東京は日本の<mask>です。",
    "مرحبا بالعالم 👍🏽 ｽﾅｯﾌﾟ",
    "",
]
PAIRS = [("What is the capital?", "Paris is the capital of France."), ("नमस्ते दुनिया", "<s> 안녕하세요 </s>")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.set_num_threads(1)
    tokenizer = xlmr_np.XLMRobertaTokenizer.from_pretrained(GOLDEN_DIR)
    directory = tmp_path_factory.mktemp("e2e_model")
    config = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=80, type_vocab_size=1, pad_token_id=1,
                  bos_token_id=0, eos_token_id=2)
    hf_model = random_hf_model("XLMRobertaForMaskedLM", config, seed=3, directory=directory)
    hf_tokenizer = transformers.XLMRobertaTokenizer.from_pretrained(GOLDEN_DIR)
    ours = xlmr_np.XLMRobertaForMaskedLM.from_pretrained(directory)
    return hf_tokenizer, hf_model, tokenizer, ours


def _compare(hf_tokenizer, hf_model, tokenizer, ours, *args, **kwargs):
    hf_inputs = hf_tokenizer(*args, return_tensors="pt", **kwargs)
    with torch.no_grad():
        want = hf_model(**hf_inputs).logits.numpy()  # [B, T, V]
    inputs = tokenizer(*args, return_tensors="np", **kwargs)
    got = ours(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits  # [B, T, V]
    assert got.shape == want.shape == inputs["input_ids"].shape + (len(tokenizer),)
    mask = inputs["attention_mask"].astype(bool)  # padded positions are compared too, but report real ones
    diff = np.abs(got - want)
    assert diff.max() <= tolerance_for(want, "float32"), (diff.max(), diff[mask].max())
    # the predicted token at each <mask> is the same
    where = inputs["input_ids"] == tokenizer.mask_token_id
    assert (got[where].argmax(-1) == want[where].argmax(-1)).all()


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_batch_of_texts_to_logits(models, padding_side):
    _compare(*models, TEXTS, padding=True, padding_side=padding_side)


def test_single_text_to_logits(models):
    _compare(*models, TEXTS[0])


def test_pairs_with_truncation_to_logits(models):
    a, b = zip(*PAIRS)
    _compare(*models, list(a), list(b), padding="max_length", truncation="only_second", max_length=24)
