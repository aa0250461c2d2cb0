"""Every faster path equals the plain one: the float32 erf, the blocked GELU, embedding rows read from the file,
and attention in query blocks.

References are independent of the code under test: math.erf (closed-form GELU in float64) and the stored
Hugging Face goldens (reference_outputs/, made by tools/make_reference_outputs.py with transformers 4.57.6).
"""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from conftest import case_dir
from xlmr_np import fast, model, ops
from xlmr_np.config import XLMRobertaConfig
from xlmr_np.verify import format_table, run_case

ULP32 = 2.0 ** -24  # float32 unit roundoff: the error of rounding one exact value to float32


def exact_gelu(x):
    """0.5 x (1 + erf(x / sqrt 2)) in float64 with math.erf (the closed form, not the code under test)."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def test_blocked_gelu_rounds_the_exact_value_once():
    x = np.concatenate([np.linspace(-10, 10, 200_001), [0.0, -0.0, 30.0, -30.0]]).astype(np.float32)
    exact = exact_gelu(x)
    got = fast.gelu(x)
    assert got.dtype == np.float32
    # one float32 rounding of the result, plus the erf fit's 1.6e-8 (scaled by |x| / 2)
    bound = ULP32 * np.abs(exact) + 1e-8 * np.abs(x.astype(np.float64)) + 1e-45
    excess = np.abs(got - exact) / bound
    assert excess.max() <= 1.0, (x[excess.argmax()], excess.max())


def test_blocked_gelu_agrees_with_plain_gelu_in_float32():
    x = np.random.default_rng(0).standard_normal((7, 50, 3072)).astype(np.float32) * 3
    plain, blocked = ops.gelu(x), fast.gelu(x)
    # The plain formula rounds after each float32 step, and 1 + erf(x / sqrt 2) cancels for x < 0, so its
    # error is ~ulp(1) |x| / 2 there; the blocked one rounds once. They agree to within the plain one's error.
    assert np.all(np.abs(blocked - plain) <= 4 * ULP32 * np.abs(plain) + 2 * ULP32 * np.abs(x))


def test_blocked_gelu_same_bits_for_any_block_size_and_in_place(monkeypatch):
    x = np.random.default_rng(1).standard_normal((3, 100_003)).astype(np.float32)
    one = fast.gelu(x)
    monkeypatch.setattr(fast, "BLOCK_ELEMENTS", 1000)
    np.testing.assert_array_equal(fast.gelu(x), one)
    y = x.copy()
    assert fast.gelu(y, out=y) is y
    np.testing.assert_array_equal(y, one)


def test_blocked_gelu_of_an_empty_array():
    assert fast.gelu(np.zeros((2, 0), np.float32)).shape == (2, 0)


@pytest.mark.parametrize("x", [np.linspace(-4, 4, 101), np.linspace(-4, 4, 202).astype(np.float32)[::2]],
                         ids=["float64", "non-contiguous"])
def test_gelu_falls_back_to_the_plain_formula(x):
    np.testing.assert_array_equal(fast.gelu(x), ops.gelu(x))


def test_fast_activation_swaps_only_the_exact_gelu():
    assert fast.activation("gelu") is fast.gelu and fast.activation("gelu_python") is fast.gelu
    assert fast.activation("gelu_new") is ops.gelu_tanh and fast.activation("relu") is ops.relu


# --- attention in query blocks ----------------------------------------------------------------------------
def _attention_inputs(cfg, batch, length, dtype, seed=0):
    rng = np.random.default_rng(seed)
    d = cfg.hidden_size
    p = {f"{n}.{w}": rng.normal(0, 0.3, (d, d) if w == "weight" else (d,)).astype(dtype)
         for n in ("query", "key", "value") for w in ("weight", "bias")}
    p["distance"] = rng.normal(0, 0.3, (2 * cfg.max_position_embeddings - 1, cfg.head_dim)).astype(dtype)
    x = rng.normal(size=(batch, length, d)).astype(dtype)
    keep = (rng.random((batch, length)) > 0.2).astype(np.int64)
    keep[:, 0] = 1
    return p, x, keep


@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-6), ("float64", 1e-13)])
@pytest.mark.parametrize("position", ["absolute", "relative_key", "relative_key_query"])
@pytest.mark.parametrize("decoder", [False, True])
def test_blocked_attention_equals_unblocked(dtype, rtol, position, decoder):
    cfg = XLMRobertaConfig(hidden_size=16, num_attention_heads=4, max_position_embeddings=40,
                           position_embedding_type=position, is_decoder=decoder)
    p, x, keep = _attention_inputs(cfg, batch=2, length=13, dtype=dtype)
    mask = model.self_attention_mask(keep, 13, decoder, np.dtype(dtype))
    head_mask = np.array([1.0, 0.0, 0.5, 2.0], dtype=dtype)
    relative = position != "absolute"
    whole = model.attention(p, cfg, x, mask, head_mask, relative=relative)
    for block_bytes in (1, 500, 3000):  # 1, 2-3 and 11 query rows per block (13 rows in all)
        blocked = model.attention(p, cfg, x, mask, head_mask, relative=relative, block_bytes=block_bytes)
        np.testing.assert_allclose(blocked[0], whole[0], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(blocked[1], whole[1], rtol=rtol, atol=rtol)
        without = model.attention(p, cfg, x, mask, head_mask, relative=relative, block_bytes=block_bytes,
                                  keep_probs=False)
        assert without[1] is None
        np.testing.assert_array_equal(without[0], blocked[0])


def test_blocked_attention_with_a_cache_equals_unblocked():
    cfg = XLMRobertaConfig(hidden_size=16, num_attention_heads=4, max_position_embeddings=40,
                           position_embedding_type="relative_key_query", is_decoder=True)
    p, x, keep = _attention_inputs(cfg, batch=2, length=9, dtype="float64", seed=3)
    past = model.attention(p, cfg, x[:, :4], None, cached=True, relative=True)[2]  # 4 cached positions
    mask = model.self_attention_mask(keep, 5, True, np.dtype("float64"))  # [B, 9] keys -> [B, 1, 5, 9]
    whole = model.attention(p, cfg, x[:, 4:], mask, past_kv=past, cached=True, relative=True)
    blocked = model.attention(p, cfg, x[:, 4:], mask, past_kv=past, cached=True, relative=True, block_bytes=1)
    np.testing.assert_allclose(blocked[1], whole[1], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-13, atol=1e-13)


def test_query_blocks_keep_attention_memory_linear_in_length():
    cfg = XLMRobertaConfig(hidden_size=32, num_attention_heads=2)
    rng = np.random.default_rng(0)
    p = {f"{n}.{w}": rng.normal(0, 0.2, (32, 32) if w == "weight" else (32,)).astype(np.float32)
         for n in ("query", "key", "value") for w in ("weight", "bias")}

    def peak_bytes(length):
        x = rng.normal(size=(1, length, 32)).astype(np.float32)
        tracemalloc.start()  # NumPy reports its allocations to tracemalloc
        model.attention(p, cfg, x, None, block_bytes=2**20, keep_probs=False)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    short, long = peak_bytes(1024), peak_bytes(4096)
    full_scores = 2 * 4096 * 4096 * 4  # what one [1, H, T, S] float32 scores array would take: 128 MB
    assert long < 8 * 2**20, long  # 1 MB scores blocks and O(T) arrays (q, k, v, context: 2 MB); measured 4.2 MB
    assert long < full_scores / 30
    assert long < 5 * short, (short, long)  # 4x the tokens, ~4x the memory (not 16x)


BLOCKED_CASES = ["model_base", "relative_key", "relative_key_query", "mask_3d", "head_mask_2d", "cache_decoder",
                 "decoder_cross_attention", "cache_cross_attention", "real_width", "act_gelu"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", BLOCKED_CASES)
def test_goldens_hold_with_one_query_row_per_block(name, dtype, monkeypatch):
    monkeypatch.setattr(model, "ATTENTION_BLOCK_BYTES", 1)  # forces one query row per attention block
    rows = run_case(case_dir(name), dtype)
    assert rows
    failed = [r for r in rows if not r.ok]
    assert not failed, "\n" + format_table(failed)


# --- embedding rows read from the file ----------------------------------------------------------------------
def test_take_rows_from_a_memory_mapped_file_equals_indexing(tmp_path):
    from xlmr_np.weights import load_file, save_file

    rng = np.random.default_rng(0)
    tensors = {"a.bias": rng.normal(size=7).astype(np.float32), "b.weight": rng.normal(size=(50, 6)).astype(np.float32),
               "c.weight": rng.normal(size=(30, 4)).astype(np.float64)}
    save_file(tensors, tmp_path / "m.safetensors")
    loaded = load_file(tmp_path / "m.safetensors")
    assert isinstance(loaded["b.weight"].base, np.ndarray)  # a view into the map, so the pread path is taken
    ids = np.array([[0, 29, 3, 3], [-1, 7, 0, 29]])
    for name in ("b.weight", "c.weight"):
        got = fast.take_rows(loaded[name], ids)
        np.testing.assert_array_equal(got, tensors[name][ids])
        assert got.dtype == tensors[name].dtype and got.flags.writeable
    with pytest.raises(IndexError):
        fast.take_rows(loaded["b.weight"], np.array([[1, 50]]))
    plain = tensors["b.weight"]
    np.testing.assert_array_equal(fast.take_rows(plain, ids), plain[ids])


# --- the masked-LM decoder read from the file ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_from_file_equals_linear(tmp_path, monkeypatch, dtype):
    from xlmr_np.weights import load_file, save_file

    rng = np.random.default_rng(2)
    tensors = {"pad": rng.normal(size=5).astype(dtype), "decoder": rng.normal(size=(103, 24)).astype(dtype)}
    save_file(tensors, tmp_path / "m.safetensors")
    decoder = load_file(tmp_path / "m.safetensors")["decoder"]
    assert fast._file_region(decoder) is not None  # a view into the map: the windowed path is taken
    monkeypatch.setattr(fast, "WINDOW_MIN_ROWS", 2)
    x = rng.normal(size=(2, 3, 24)).astype(dtype)
    bias = rng.normal(size=103).astype(dtype)
    expected = ops.linear(x, tensors["decoder"], bias)
    windows = []
    real_mmap = fast.mmap.mmap
    monkeypatch.setattr(fast.mmap, "mmap", lambda *a, **k: windows.append(a) or real_mmap(*a, **k))
    for block_bytes, count in ((1, 103), (10 * 24 * np.dtype(dtype).itemsize, 11), (2**20, 1)):  # rows per window
        monkeypatch.setattr(fast, "WINDOW_BYTES", block_bytes)  # 1 row, 10 rows (+ a 3-row rest), all
        windows.clear()
        got = fast.linear_from_file(x, decoder, bias)
        assert got.shape == (2, 3, 103) and got.dtype == dtype and len(windows) == count
        np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
    assert fast.linear_from_file(x, decoder).shape == (2, 3, 103)  # no bias
    windows.clear()
    np.testing.assert_array_equal(fast.linear_from_file(x[:, :0], decoder, bias), expected[:, :0])  # too few rows
    plain = tensors["decoder"]  # not memory-mapped: ops.linear itself
    np.testing.assert_array_equal(fast.linear_from_file(x, plain, bias), expected)
    assert windows == []


def test_linear_from_file_reports_a_file_changed_under_it(tmp_path, monkeypatch):
    from xlmr_np.weights import load_file, save_file

    save_file({"decoder": np.ones((64, 8), np.float32)}, tmp_path / "m.safetensors")
    decoder = load_file(tmp_path / "m.safetensors")["decoder"]
    filename, start = fast._file_region(decoder)
    with open(filename, "r+b") as f:
        f.truncate(start + 10 * 8 * 4)  # the rows past 10 are gone
    monkeypatch.setattr(fast, "WINDOW_MIN_ROWS", 1)
    monkeypatch.setattr(fast, "WINDOW_BYTES", 20 * 8 * 4)
    with pytest.raises(OSError, match="changed while in use"):
        fast.linear_from_file(np.ones((1, 8), np.float32), decoder)
