"""Padding-free encoding (xlmr_np/runtime/packed_encoder.py) equals the padded forward at every real token.

Reference: core.model.forward on the right-padded batch with its attention mask, read at each row's real
tokens. Checkpoints: the golden cases' random models (absolute, relative_key and relative_key_query positions).
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import case_dir
from xlmr_np import XLMRobertaModel, inputs
from xlmr_np.core import model
from xlmr_np.pipelines.base import pad_batch
from xlmr_np.runtime import FAST, REFERENCE, blocked_attention, packed_encoder

CASES = ["model_base", "relative_key", "relative_key_query", "token_types"]
TOL = {"float32": 2e-5, "float64": 1e-12}


def sequences_for(cfg, lengths, seed=0):
    """Random token ids shaped like real inputs: <s> ... </s>, no pad id inside."""
    rng = np.random.default_rng(seed)
    out = []
    for length in lengths:
        body = rng.integers(4, cfg.vocab_size, size=length - 2).tolist()
        out.append([cfg.bos_token_id] + body + [cfg.eos_token_id])
    return out


def padded(params, cfg, sequences, kernels):
    ids, mask = pad_batch(sequences, cfg.pad_token_id)
    checked = inputs.prepare(cfg, np, params["embeddings.word"].dtype, input_ids=ids, attention_mask=mask)
    hidden = model.forward(params, cfg, checked, kernels=kernels)["last_hidden_state"]
    return [hidden[i, :len(s)] for i, s in enumerate(sequences)]


@pytest.mark.parametrize("kernels", [REFERENCE, FAST], ids=lambda k: k.name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", CASES)
def test_packed_equals_padded_at_real_tokens(name, dtype, kernels):
    m = XLMRobertaModel.from_pretrained(case_dir(name), dtype=dtype)
    cfg = m.config
    lengths = [9, 3, 9, 14, 2, 9, 5, 14]  # repeats form length buckets; the order is not sorted
    seqs = sequences_for(cfg, [min(n, cfg.max_tokens) for n in lengths])
    got = packed_encoder.encode(m.params, cfg, seqs, kernels=kernels)
    want = padded(m.params, cfg, seqs, REFERENCE)
    assert [g.shape for g in got] == [w.shape for w in want]
    diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
    assert diff <= TOL[dtype], diff


def test_one_sequence_alone_equals_the_unpadded_forward():
    m = XLMRobertaModel.from_pretrained(case_dir("model_base"), dtype="float64")
    seq = sequences_for(m.config, [7])
    got = packed_encoder.encode(m.params, m.config, seq)[0]
    want = m(input_ids=np.asarray(seq)).last_hidden_state[0]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_buckets_group_equal_lengths_in_packed_order():
    order, groups = packed_encoder.buckets([4, 2, 4, 7, 2])
    assert order == [1, 4, 0, 2, 3]
    assert groups == [(0, 2, 2), (4, 2, 4), (12, 1, 7)]


def test_long_sequences_take_the_query_blocked_attention(monkeypatch):
    """Above the block budget attention runs in query blocks: the same numbers, memory linear in T."""
    m = XLMRobertaModel.from_pretrained(case_dir("model_base"), dtype="float64")
    seqs = sequences_for(m.config, [m.config.max_tokens, 20])
    calls = []
    rows = blocked_attention.block_rows

    def counted(cfg, q, k, relative, budget=None):
        result = rows(cfg, q, k, relative, budget)
        calls.append(result < q.shape[2])  # True: this attention ran in blocks
        return result

    monkeypatch.setattr(blocked_attention, "BLOCK_BYTES", 2048)
    monkeypatch.setattr(blocked_attention, "block_rows", counted)
    got = packed_encoder.encode(m.params, m.config, seqs, kernels=FAST)
    want = padded(m.params, m.config, seqs, REFERENCE)
    assert any(calls)
    assert max(float(np.abs(g - w).max()) for g, w in zip(got, want)) <= 1e-12


def test_decoders_and_empty_inputs():
    m = XLMRobertaModel.from_pretrained(case_dir("model_base"))
    assert packed_encoder.applies(m.config, m.params)
    assert not packed_encoder.applies(m.config.replace(is_decoder=True), m.params)
    assert packed_encoder.encode(m.params, m.config, []) == []
    with pytest.raises(ValueError, match="at least one token"):
        packed_encoder.encode(m.params, m.config, [[0, 2], []])


def test_embedding_models_choose_padding_free_where_it_applies(tmp_path):
    import json
    import shutil

    from xlmr_np.embeddings import EmbeddingError, EmbeddingModel

    folder = tmp_path / "decoder"
    shutil.copytree(case_dir("model_base"), folder)
    for name in ("sentencepiece.bpe.model", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copy(case_dir("model_base").parents[1] / "tokenizer" / name, folder / name)
    auto = EmbeddingModel(folder)
    assert auto.can_pack and auto.padding_free is None
    assert not auto.packs([[0, 5, 2], [0, 6, 2]]) and auto.packs([[0, 5, 2], [0] + [6] * 10 + [2]])
    assert EmbeddingModel(folder, padding_free=True).packs([[0, 5, 2]])
    assert not EmbeddingModel(folder, padding_free=False).packs([[0, 5, 2], [0] + [6] * 10 + [2]])
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(config, is_decoder=True)))
    assert not EmbeddingModel(folder).packs([[0, 5, 2], [0] + [6] * 10 + [2]])
    with pytest.raises(EmbeddingError, match="padding_free=True needs"):
        EmbeddingModel(folder, padding_free=True)
