"""The fused sub-layers of the runtime equal the core functions they stand in for.

- runtime/bias_gelu.py: ffn_inner (GEMM, then bias + activation per block of rows) == core.model.ffn_inner,
  bit for bit, with the fast kernel set's blocked GELU and with the core's activations;
- runtime/residual_norm.py: residual_norm (GEMM, then bias + residual + LayerNorm per block of rows) ==
  core.model.residual_norm, bit for bit;
- runtime/fused_qkv.py: one [3D', D] product == the three products of core.model.attention; the cache of
  concatenated weights.
The core functions are themselves checked against Hugging Face's outputs by the goldens
(tests/test_kernel_conformance.py, which runs these paths on every golden through the threaded encoder).
Parameters are random, biases and LayerNorm gains/shifts included.
"""
from __future__ import annotations

import gc

import numpy as np
import pytest

from conftest import case_dir
from xlmr_np import XLMRobertaModel, inputs
from xlmr_np.config import XLMRobertaConfig
from xlmr_np.core import model
from xlmr_np.runtime import FAST, bias_gelu, fused_qkv, gelu, packed_encoder, residual_norm

DTYPES = ["float32", "float64"]


class _OtherArray(np.ndarray):
    """An array type the fused paths do not claim (as CuPy's would not be): the core function runs."""


def _cfg(act="gelu", hidden=24, inner=40, heads=4):
    return XLMRobertaConfig(hidden_size=hidden, num_attention_heads=heads, intermediate_size=inner, hidden_act=act,
                            layer_norm_eps=1e-5)


def _params(cfg, dtype, seed=0):
    rng = np.random.default_rng(seed)
    d, f = cfg.hidden_size, cfg.intermediate_size
    shapes = {"in.weight": (f, d), "in.bias": (f,), "out.weight": (d, f), "out.bias": (d,),
              "norm.weight": (d,), "norm.bias": (d,)}
    p = {name: rng.normal(1.0 if name == "norm.weight" else 0.0, 0.4, shape).astype(dtype)
         for name, shape in shapes.items()}
    attn = {f"{w}.{kind}": rng.normal(0, 0.4, (d, d) if kind == "weight" else (d,)).astype(dtype)
            for w in ("query", "key", "value", "out") for kind in ("weight", "bias")}
    attn.update({"norm.weight": rng.normal(1, 0.4, d).astype(dtype), "norm.bias": rng.normal(0, 0.4, d).astype(dtype)})
    return p, attn


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["gelu", "relu", "gelu_new", "linear"])
@pytest.mark.parametrize("kernels", [FAST, model.REFERENCE, None], ids=["fast", "reference", "none"])
@pytest.mark.parametrize("shape", [(3, 11), (1, 1), (2, 7)])
@pytest.mark.parametrize("block", [gelu.BLOCK_ELEMENTS, 40 * 3, 1])  # default; 3 rows a block; 1 row a block
def test_bias_gelu_equals_core_ffn_inner_bit_for_bit(dtype, act, kernels, shape, block, monkeypatch):
    monkeypatch.setattr(bias_gelu, "BLOCK_ELEMENTS", block)
    cfg = _cfg(act)
    p, _ = _params(cfg, dtype)
    h = np.random.default_rng(1).normal(0, 2, shape + (cfg.hidden_size,)).astype(dtype)
    expected = model.ffn_inner(p, cfg, h, kernels)
    got = bias_gelu.ffn_inner_in_blocks(p, cfg, h, kernels)
    assert got.shape == expected.shape == shape + (cfg.intermediate_size,) and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    buffer = np.full((h.size // cfg.hidden_size, cfg.intermediate_size), np.nan, dtype)
    np.testing.assert_array_equal(bias_gelu.ffn_inner_in_blocks(p, cfg, h, kernels, out=buffer), expected)
    np.testing.assert_array_equal(buffer.reshape(expected.shape), expected)  # written in place


def test_bias_gelu_runs_the_blocked_gelu_in_float32_with_the_fast_set(monkeypatch):
    cfg = _cfg()
    p, _ = _params(cfg, "float32")
    h = np.random.default_rng(2).normal(0, 2, (5, cfg.hidden_size)).astype(np.float32)
    blocks = []
    block = gelu.gelu_block
    monkeypatch.setattr(bias_gelu, "gelu_block", lambda x, out, s: blocks.append(x.size) or block(x, out, s))
    monkeypatch.setattr(bias_gelu, "BLOCK_ELEMENTS", 2 * cfg.intermediate_size)  # 2 rows per block: 2 + 2 + 1
    got = bias_gelu.ffn_inner_in_blocks(p, cfg, h, FAST)
    assert blocks == [80, 80, 40]
    # and the value: the bias added, then the exact GELU rounded once (runtime/gelu.py's own bound test)
    np.testing.assert_array_equal(got, gelu.gelu(h @ p["in.weight"].T + p["in.bias"]))


def test_bias_gelu_falls_back_for_other_arrays():
    cfg = _cfg()
    p, _ = _params(cfg, "float64")
    h = np.random.default_rng(3).normal(size=(4, cfg.hidden_size)).view(_OtherArray)
    assert not bias_gelu.applies(p, cfg, h)
    np.testing.assert_array_equal(bias_gelu.ffn_inner_in_blocks(p, cfg, h, FAST), model.ffn_inner(p, cfg, h, FAST))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", ["hidden", "inner"])  # the attention's out-projection and the FFN's
@pytest.mark.parametrize("shape", [(3, 11), (1, 1), (33,)])
@pytest.mark.parametrize("block_bytes", [residual_norm.ROW_BLOCK_BYTES, 1, 5 * 24 * 8])
def test_residual_norm_equals_core_residual_norm_bit_for_bit(dtype, width, shape, block_bytes, monkeypatch):
    monkeypatch.setattr(residual_norm, "ROW_BLOCK_BYTES", block_bytes)
    cfg = _cfg()
    ffn, attn = _params(cfg, dtype)
    p = ffn if width == "inner" else attn
    rng = np.random.default_rng(4)
    update = rng.normal(0, 2, shape + (p["out.weight"].shape[1],)).astype(dtype)
    residual = rng.normal(0, 2, shape + (cfg.hidden_size,)).astype(dtype)
    residual_before = residual.copy()
    expected = model.residual_norm(p, cfg, update, residual)
    got = residual_norm.residual_norm_in_blocks(p, cfg, update, residual)
    assert got.shape == expected.shape == residual.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(residual, residual_before)
    buffer = np.full((residual.size // cfg.hidden_size, cfg.hidden_size), np.nan, dtype)
    residual_norm.residual_norm_in_blocks(p, cfg, update, residual, out=buffer)
    np.testing.assert_array_equal(buffer.reshape(expected.shape), expected)


def test_residual_norm_layer_norm_matches_a_closed_form_in_float64():
    """Independent of core.model: LN(u W^T + b + r) written out with numpy's mean and var."""
    cfg = _cfg()
    _, p = _params(cfg, "float64")
    rng = np.random.default_rng(5)
    update, residual = rng.normal(size=(7, 24)), rng.normal(size=(7, 24))
    y = update @ p["out.weight"].T + p["out.bias"] + residual
    expected = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5) * p["norm.weight"] \
        + p["norm.bias"]
    np.testing.assert_allclose(residual_norm.residual_norm_in_blocks(p, cfg, update, residual), expected, rtol=1e-12,
                               atol=1e-12)


def test_residual_norm_falls_back_for_other_arrays():
    cfg = _cfg()
    _, p = _params(cfg, "float64")
    u = np.ones((2, 24)).view(_OtherArray)
    assert not residual_norm.applies(p, cfg, u, np.ones((2, 24)))
    np.testing.assert_array_equal(residual_norm.residual_norm_in_blocks(p, cfg, u, np.ones((2, 24))),
                                  model.residual_norm(p, cfg, u, np.ones((2, 24))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("share", [slice(0, 24), slice(6, 18), slice(18, 24)])
def test_fused_qkv_equals_three_products(dtype, share):
    cfg = _cfg()
    _, attn = _params(cfg, dtype)
    x = np.random.default_rng(6).normal(size=(3, 5, 24)).astype(dtype)
    q, k, v = fused_qkv.project_qkv(x, attn, share)
    for got, name in zip((q, k, v), ("query", "key", "value")):
        expected = model.linear(x, attn[f"{name}.weight"][share], attn[f"{name}.bias"][share])  # [3, 5, D']
        assert got.shape == expected.shape
        tol = 1e-13 if dtype == "float64" else 2e-6
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


def test_fused_qkv_weights_are_built_once_and_freed_with_the_model():
    cfg = _cfg()
    _, attn = _params(cfg, "float32")
    before = fused_qkv.memory_bytes()
    first = fused_qkv.weights(attn, slice(0, 12))
    assert fused_qkv.weights(attn, slice(0, 12))[0] is first[0]  # cached
    assert fused_qkv.weights(dict(attn), slice(0, 12))[0] is first[0]  # the same arrays in another dict
    assert first[0].shape == (36, 24) and first[1].shape == (36,)
    np.testing.assert_array_equal(first[0][12:24], attn["key.weight"][:12])
    assert fused_qkv.memory_bytes() - before == (36 * 24 + 36) * 4  # 3 D' D itemsize (+ the biases)
    replaced = dict(attn, **{"key.weight": attn["key.weight"] * 2})  # a new array: a new concatenation
    assert fused_qkv.weights(replaced, slice(0, 12))[0] is not first[0]
    del attn, replaced, first
    gc.collect()
    assert fused_qkv.memory_bytes() == before


def test_fused_qkv_setting(monkeypatch):
    monkeypatch.delenv("XLMR_NP_FUSED_QKV", raising=False)
    assert fused_qkv.fuse_qkv() is fused_qkv.DEFAULT
    monkeypatch.setenv("XLMR_NP_FUSED_QKV", "1")
    assert fused_qkv.fuse_qkv()
    monkeypatch.setenv("XLMR_NP_FUSED_QKV", "0")
    assert not fused_qkv.fuse_qkv()
    monkeypatch.setenv("XLMR_NP_FUSED_QKV", "yes")
    with pytest.raises(ValueError, match=r"XLMR_NP_FUSED_QKV='yes': expected 1 .* or 0"):
        fused_qkv.fuse_qkv()


@pytest.mark.parametrize("fuse", ["0", "1"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_packed_encoder_runs_the_fused_sub_layers(fuse, dtype, monkeypatch):
    monkeypatch.setenv("XLMR_NP_FUSED_QKV", fuse)
    m = XLMRobertaModel.from_pretrained(case_dir("relative_key_query"), dtype=dtype)
    calls = []
    for name in ("ffn_inner_in_blocks", "residual_norm_in_blocks", "project_qkv"):
        function = getattr(packed_encoder, name)
        monkeypatch.setattr(packed_encoder, name, lambda *a, f=function, n=name, **k: calls.append(n) or f(*a, **k))
    seqs = [[0, 5, 6, 7, 2], [0, 9, 2], [0, 11, 12, 13, 2]]
    got = packed_encoder.encode(m.params, m.config, seqs, kernels=FAST)
    layers = m.config.num_hidden_layers
    assert calls.count("ffn_inner_in_blocks") == layers and calls.count("residual_norm_in_blocks") == 2 * layers
    assert calls.count("project_qkv") == (layers if fuse == "1" else 0)
    for seq, state in zip(seqs, got):
        checked = inputs.prepare(m.config, np, m.params["embeddings.word"].dtype, input_ids=np.asarray([seq]))
        want = model.forward(m.params, m.config, checked)  # the reference: core alone, one unpadded sequence
        tol = 1e-12 if dtype == "float64" else 2e-5
        np.testing.assert_allclose(state, want["last_hidden_state"][0], rtol=tol, atol=tol)
