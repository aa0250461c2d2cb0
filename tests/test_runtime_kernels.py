"""Every stand-in of the runtime equals the core function it replaces: the blocked GELU, embedding rows read
from the file, attention in query blocks, the LM decoder read from the file; and the registry of kernel sets.

References are independent of the code under test: math.erf (closed-form GELU in float64) and the stored
Hugging Face goldens (reference_outputs/, made by tools/make_reference_outputs.py with transformers 4.57.6).
"""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from conftest import case_dir
from xlmr_np import XLMRobertaForMaskedLM
from xlmr_np import runtime
from xlmr_np.runtime import threaded_encoder
from xlmr_np.core import model, ops
from xlmr_np.runtime import FAST, blocked_attention, mapped_weights
from xlmr_np.runtime import gelu as fast
from xlmr_np.config import XLMRobertaConfig
from xlmr_np.core.kernels import Kernels

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
    assert FAST.activation("gelu") is fast.gelu_in_place and FAST.activation("gelu_python") is fast.gelu_in_place
    assert FAST.activation("gelu_new") is ops.gelu_tanh and FAST.activation("relu") is ops.relu
    x = np.linspace(-3, 3, 50, dtype=np.float32)
    expected = fast.gelu(x)
    assert fast.gelu_in_place(x) is x  # in place: the core passes only temporaries to activations
    np.testing.assert_array_equal(x, expected)


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
def test_blocked_attention_equals_unblocked(dtype, rtol, position, decoder, monkeypatch):
    cfg = XLMRobertaConfig(hidden_size=16, num_attention_heads=4, max_position_embeddings=40,
                           position_embedding_type=position, is_decoder=decoder)
    p, x, keep = _attention_inputs(cfg, batch=2, length=13, dtype=dtype)
    mask = model.self_attention_mask(keep, 13, decoder, np.dtype(dtype))
    head_mask = np.array([1.0, 0.0, 0.5, 2.0], dtype=dtype)
    whole = model.attention(p, cfg, x, mask, 4, head_mask)
    for block_bytes in (1, 500, 3000):  # from 1 query row per block to 7 (13 rows in all)
        monkeypatch.setattr(blocked_attention, "BLOCK_BYTES", block_bytes)
        q = np.zeros((2, 4, 13, 4), dtype)
        assert blocked_attention.block_rows(cfg, q, q, position != "absolute") < 13  # the blocked path serves
        blocked = model.attention(p, cfg, x, mask, 4, head_mask, kernels=FAST)
        np.testing.assert_allclose(blocked[0], whole[0], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(blocked[1], whole[1], rtol=rtol, atol=rtol)
        without = model.attention(p, cfg, x, mask, 4, head_mask, keep_probs=False, kernels=FAST)
        assert without[1] is None
        np.testing.assert_array_equal(without[0], blocked[0])


def test_blocked_attention_with_a_cache_equals_unblocked(monkeypatch):
    cfg = XLMRobertaConfig(hidden_size=16, num_attention_heads=4, max_position_embeddings=40,
                           position_embedding_type="relative_key_query", is_decoder=True)
    p, x, keep = _attention_inputs(cfg, batch=2, length=9, dtype="float64", seed=3)
    past = model.attention(p, cfg, x[:, :4], None, 4, cached=True)[2]  # 4 cached positions
    mask = model.self_attention_mask(keep, 5, True, np.dtype("float64"))  # [B, 9] keys -> [B, 1, 5, 9]
    whole = model.attention(p, cfg, x[:, 4:], mask, 4, past_kv=past, cached=True)
    monkeypatch.setattr(blocked_attention, "BLOCK_BYTES", 1)
    blocked = model.attention(p, cfg, x[:, 4:], mask, 4, past_kv=past, cached=True, kernels=FAST)
    np.testing.assert_allclose(blocked[1], whole[1], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-13, atol=1e-13)


def test_query_blocks_keep_attention_memory_linear_in_length(monkeypatch):
    cfg = XLMRobertaConfig(hidden_size=32, num_attention_heads=2)
    rng = np.random.default_rng(0)
    p = {f"{n}.{w}": rng.normal(0, 0.2, (32, 32) if w == "weight" else (32,)).astype(np.float32)
         for n in ("query", "key", "value") for w in ("weight", "bias")}

    monkeypatch.setattr(blocked_attention, "BLOCK_BYTES", 2**20)

    def peak_bytes(length):
        x = rng.normal(size=(1, length, 32)).astype(np.float32)
        tracemalloc.start()  # NumPy reports its allocations to tracemalloc
        model.attention(p, cfg, x, None, 2, keep_probs=False, kernels=FAST)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    short, long = peak_bytes(1024), peak_bytes(4096)
    full_scores = 2 * 4096 * 4096 * 4  # what one [1, H, T, S] float32 scores array would take: 128 MB
    assert long < 8 * 2**20, long  # 1 MB scores blocks and O(T) arrays (q, k, v, context: 2 MB); measured 4.2 MB
    assert long < full_scores / 30
    assert long < 5 * short, (short, long)  # 4x the tokens, ~4x the memory (not 16x)


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
        got = mapped_weights.take_rows(loaded[name], ids)
        np.testing.assert_array_equal(got, tensors[name][ids])
        assert got.dtype == tensors[name].dtype and got.flags.writeable
    with pytest.raises(IndexError):
        FAST.gather_rows(loaded["b.weight"], np.array([[1, 50]]))
    assert mapped_weights.rows_in_file(loaded["b.weight"], ids)
    plain = tensors["b.weight"]
    assert not mapped_weights.rows_in_file(plain, ids)  # not mapped: core.ops.gather_rows
    np.testing.assert_array_equal(FAST.gather_rows(plain, ids), plain[ids])


# --- the masked-LM decoder read from the file ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_from_file_equals_linear(tmp_path, monkeypatch, dtype):
    from xlmr_np.weights import load_file, save_file

    rng = np.random.default_rng(2)
    tensors = {"pad": rng.normal(size=5).astype(dtype), "decoder": rng.normal(size=(103, 24)).astype(dtype)}
    save_file(tensors, tmp_path / "m.safetensors")
    decoder = load_file(tmp_path / "m.safetensors")["decoder"]
    assert mapped_weights._file_region(decoder) is not None  # a view into the map: the windowed path is taken
    monkeypatch.setattr(mapped_weights, "WINDOW_MIN_ROWS", 2)
    x = rng.normal(size=(2, 3, 24)).astype(dtype)
    bias = rng.normal(size=103).astype(dtype)
    expected = ops.linear(x, tensors["decoder"], bias)
    windows = []
    real_mmap = mapped_weights.mmap.mmap
    monkeypatch.setattr(mapped_weights.mmap, "mmap", lambda *a, **k: windows.append(a) or real_mmap(*a, **k))
    for block_bytes, count in ((1, 103), (10 * 24 * np.dtype(dtype).itemsize, 11), (2**20, 1)):  # rows per window
        monkeypatch.setattr(mapped_weights, "WINDOW_BYTES", block_bytes)  # 1 row, 10 rows (+ a 3-row rest), all
        windows.clear()
        got = FAST.lm_decoder(x, decoder, bias)
        assert got.shape == (2, 3, 103) and got.dtype == dtype and len(windows) == count
        np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
    assert FAST.lm_decoder(x, decoder).shape == (2, 3, 103)  # no bias
    windows.clear()
    np.testing.assert_array_equal(FAST.lm_decoder(x[:, :0], decoder, bias), expected[:, :0])  # too few rows
    plain = tensors["decoder"]  # not memory-mapped: core.ops.linear itself
    np.testing.assert_array_equal(FAST.lm_decoder(x, plain, bias), expected)
    assert windows == []


def test_linear_from_file_reports_a_file_truncated_under_it(tmp_path, monkeypatch):
    from xlmr_np.weights import load_file, save_file

    save_file({"decoder": np.ones((64, 8), np.float32)}, tmp_path / "m.safetensors")
    decoder = load_file(tmp_path / "m.safetensors")["decoder"]
    source, start = mapped_weights._file_region(decoder)
    with open(source.name, "r+b") as f:
        f.truncate(start + 10 * 8 * 4)  # the rows past 10 are gone (the same file, cut in place)
    monkeypatch.setattr(mapped_weights, "WINDOW_MIN_ROWS", 1)
    monkeypatch.setattr(mapped_weights, "WINDOW_BYTES", 20 * 8 * 4)
    with pytest.raises(OSError, match="truncated while in use"):
        FAST.lm_decoder(np.ones((1, 8), np.float32), decoder)


@pytest.mark.parametrize("change", ["rewritten", "deleted"])
def test_a_loaded_model_keeps_serving_the_weights_it_loaded(tmp_path, monkeypatch, change):
    """The stand-ins used to reopen the checkpoint by name on every call: a checkpoint saved again into the
    same folder (save_pretrained writes a new file and renames it into place) changed a running model's
    logits, and a deleted one made every forward fail. Now they read through the file that was mapped."""
    import shutil

    monkeypatch.setattr(mapped_weights, "WINDOW_MIN_ROWS", 1)  # the windowed decoder serves these few rows
    folder = tmp_path / "model"
    shutil.copytree(case_dir("masked_lm"), folder)
    model_ = XLMRobertaForMaskedLM.from_pretrained(folder)
    ids = np.array([[0, 5, 17, 30, 2], [0, 8, 9, 2, 1]])
    before = model_(input_ids=ids).logits
    assert mapped_weights.rows_in_file(model_.params["embeddings.word"], ids)  # the file-reading paths run
    if change == "rewritten":
        other = XLMRobertaForMaskedLM(model_.config, {k: np.asarray(v) * 0.5 for k, v in model_.params.items()})
        other.save_pretrained(folder, overwrite=True)  # another model under the same name
        assert not np.allclose(XLMRobertaForMaskedLM.from_pretrained(folder)(input_ids=ids).logits, before)
    else:
        (folder / "model.safetensors").unlink()
    np.testing.assert_array_equal(model_(input_ids=ids).logits, before)


# --- the registry of kernel sets ----------------------------------------------------------------------------
def test_each_fast_kernel_stands_in_for_the_named_core_function():
    core = model.REFERENCE
    assert (core.gather_rows, core.activation, core.attention, core.lm_decoder, core.encoder) == (
        ops.gather_rows, ops.activation, model.attend, ops.linear, model.encoder)
    expected = {"gather_rows": mapped_weights.take_rows, "activation": fast.activation,
                "attention": blocked_attention.attend_in_blocks, "lm_decoder": mapped_weights.linear_from_file,
                "encoder": threaded_encoder.encoder}
    for name in Kernels.OPERATIONS:
        stand_in = getattr(FAST, name)
        assert stand_in.reference is getattr(core, name) and stand_in.fast is expected[name], name


def test_kernel_sets_are_chosen_by_name_argument_or_environment(monkeypatch):
    assert set(runtime.KERNEL_SETS) >= {"reference", "fast"}
    monkeypatch.delenv("XLMR_NP_KERNELS", raising=False)
    assert runtime.kernel_set() is FAST  # the default
    assert runtime.kernel_set("reference") is model.REFERENCE and runtime.kernel_set(FAST) is FAST
    monkeypatch.setenv("XLMR_NP_KERNELS", "reference")
    assert runtime.kernel_set() is model.REFERENCE
    m = XLMRobertaForMaskedLM.from_pretrained(case_dir("masked_lm"))
    assert m.kernels is model.REFERENCE and "kernels=reference" in repr(m)
    assert XLMRobertaForMaskedLM.from_pretrained(case_dir("masked_lm"), kernels="fast").kernels is FAST
    monkeypatch.setenv("XLMR_NP_KERNELS", "turbo")
    with pytest.raises(ValueError, match=r"XLMR_NP_KERNELS='turbo' is not a kernel set; choose one of"):
        runtime.kernel_set()
    with pytest.raises(ValueError, match=r"kernels='turbo' is not a kernel set"):
        XLMRobertaForMaskedLM.from_pretrained(case_dir("masked_lm"), kernels="turbo")


def test_a_kernel_set_missing_an_operation_is_refused(monkeypatch):
    monkeypatch.setattr(runtime, "KERNEL_SETS", dict(runtime.KERNEL_SETS))
    incomplete = Kernels("half", ops.gather_rows, ops.activation, model.attend, None, model.encoder)
    with pytest.raises(ValueError, match=r"kernel set 'half' lacks the operation\(s\) \['lm_decoder'\]"):
        runtime.register(incomplete)
    assert "half" not in runtime.KERNEL_SETS
