"""Tier 1: primitives against closed forms (math.erf, the formulas of HF's activations.py) and torch."""
from __future__ import annotations

import math

import numpy as np
import pytest

from xlmr_np.core import ops

GRID = np.concatenate([np.linspace(-8, 8, 200_001), np.linspace(-0.6, 0.6, 20_001), np.linspace(3.9, 4.1, 2_001),
                       -np.linspace(3.9, 4.1, 2_001), [0.0, 1e-300, -1e-300, 5.9, 6.1, 27.0, -27.0, 1e6]])


def test_erf_float64_error_bound():
    exact = np.array([math.erf(v) for v in GRID])
    error = np.max(np.abs(ops.erf(GRID) - exact))
    assert error <= 1e-14, error  # measured 2.2e-16 (one ulp of 1.0)


def test_erf_float32_error_bound():
    x = GRID.astype(np.float32)
    exact = np.array([math.erf(float(v)) for v in x])
    result = ops.erf(x)
    assert result.dtype == np.float32
    error = np.max(np.abs(result.astype(np.float64) - exact))
    assert error <= 1e-7, error  # measured 3.1e-8: float32 rounding (3.0e-8) + the rational fit's 1.5e-9


def test_erf_odd_and_limits():
    x = np.array([-30.0, -1.5, 0.0, 1.5, 30.0])
    r = ops.erf(x)
    assert r[0] == -1.0 and r[-1] == 1.0 and r[2] == 0.0 and r[1] == -r[3]


def _closed_forms():
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    gelu = lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))  # noqa: E731
    tanh_gelu = lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))  # noqa: E731
    return {
        "gelu": gelu, "gelu_python": gelu, "gelu_10": lambda x: np.clip(gelu(x), -10, 10),
        "gelu_new": tanh_gelu, "gelu_pytorch_tanh": tanh_gelu, "gelu_python_tanh": tanh_gelu,
        "gelu_accurate": tanh_gelu,
        "gelu_fast": lambda x: 0.5 * x * (1 + np.tanh(x * 0.7978845608 * (1 + 0.044715 * x * x))),
        "quick_gelu": lambda x: x * sig(1.702 * x),
        "laplace": lambda x: 0.5 * (1 + np.vectorize(math.erf)((x - 0.707107) / (0.282095 * math.sqrt(2)))),
        "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x), "linear": lambda x: x,
        "mish": lambda x: x * np.tanh(np.log1p(np.exp(x))), "relu": lambda x: np.maximum(x, 0),
        "relu2": lambda x: np.maximum(x, 0) ** 2, "relu6": lambda x: np.clip(x, 0, 6), "sigmoid": sig,
        "silu": lambda x: x * sig(x), "swish": lambda x: x * sig(x), "tanh": np.tanh,
    }


@pytest.mark.parametrize("name", sorted(ops.ACTIVATIONS))
def test_activation_closed_form(name):
    x = np.linspace(-15, 15, 3001)
    expected = _closed_forms()[name](x)
    np.testing.assert_allclose(ops.ACTIVATIONS[name](x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ops.ACTIVATIONS))
def test_activation_matches_hf(name):
    torch = pytest.importorskip("torch")
    activations = pytest.importorskip("transformers.activations")
    x = np.linspace(-15, 15, 3001)
    expected = activations.ACT2FN[name](torch.tensor(x)).numpy()
    np.testing.assert_allclose(ops.ACTIVATIONS[name](x), expected, rtol=1e-12, atol=1e-12)


def test_every_hf_activation_without_parameters_is_supported():
    activations = pytest.importorskip("transformers.activations")
    learned = {"prelu", "xielu"}  # they carry trainable parameters that XLM-R checkpoints never use
    assert set(activations.ACT2CLS) - learned == set(ops.ACTIVATIONS)


def test_unknown_activation_names_the_choices():
    with pytest.raises(ValueError, match="unknown hidden_act 'gelu2'.*gelu_new"):
        ops.activation("gelu2")


def test_layer_norm_closed_form():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(3, 5, 7)), rng.normal(size=7), rng.normal(size=7)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).sum(-1, keepdims=True) / 7  # biased, as torch.nn.LayerNorm
    np.testing.assert_allclose(ops.layer_norm(x, w, b, 1e-5), (x - mean) / np.sqrt(var + 1e-5) * w + b, rtol=1e-13)


@pytest.mark.parametrize("magnitude", [1e19, 1e20, 1e30, 1e36])
def test_float32_layer_norm_of_huge_values_is_exact_not_the_bias(magnitude):
    """Squares of |x| > 1.8e19 overflow float32: the variance became inf and every output the bias.
    Compared with the closed form in float64, where nothing overflows."""
    rng = np.random.default_rng(1)
    x64 = rng.normal(size=(2, 3, 64)) * magnitude
    x64[0, 0] = rng.normal(size=64)  # an ordinary row next to the huge ones
    w, b = rng.normal(size=64), rng.normal(size=64)
    mean = x64.mean(-1, keepdims=True)
    expected = (x64 - mean) / np.sqrt(((x64 - mean) ** 2).mean(-1, keepdims=True) + 1e-5) * w + b
    got = ops.layer_norm(x64.astype(np.float32), w.astype(np.float32), b.astype(np.float32), 1e-5)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)


def test_layer_norm_rows_with_inf_or_nan_are_not_finite():
    x = np.ones((3, 8), np.float32)
    x[0, 2], x[1, 5] = np.inf, np.nan
    x[2] = np.arange(8) * 1e20
    got = ops.layer_norm(x, np.ones(8, np.float32), np.zeros(8, np.float32), 1e-5)
    assert np.isnan(got[0]).all() and np.isnan(got[1]).all() and np.isfinite(got[2]).all()


def test_softmax_rows_and_fully_masked_row_is_uniform():
    x = np.array([[1.0, 2.0, 3.0], [np.finfo(np.float32).min] * 3], dtype=np.float32)
    p = ops.softmax(x)
    np.testing.assert_allclose(p[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)
    np.testing.assert_allclose(p[1], [1 / 3] * 3)  # eager HF attention gives uniform weights here too


def test_linear_uses_stored_out_in_layout():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(2, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    expected = np.array([[sum(x[i, k] * w[j, k] for k in range(4)) + b[j] for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(ops.linear(x, w, b), expected, rtol=1e-13)
