"""Long inputs: BGE-M3's full 8,192 tokens through a tiny model, with memory linear in the length.

bge-m3 has 8,194 positions (8,192 tokens). Whole [H, T, T] scores would take 1 GB per layer at 8,192 tokens
even for this 4-head model; the fast kernel set's query-blocked attention (runtime/blocked_attention.py)
keeps one 16 MB block at a time, on the padding-free path and the padded one alike. tracemalloc sees
NumPy's allocations. The ~3,000-token golden m3_long (tests/test_embeddings.py) checks the numbers against
FlagEmbedding; here the two paths are checked against each other at the full length.
"""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from xlmr_np.embeddings import BGEM3

M3 = Path(__file__).resolve().parent.parent / "reference_outputs" / "embeddings" / "bge_m3"


def ids_of_length(n, seed=0):
    return [0] + np.random.default_rng(seed).integers(4, 8000, n - 2).tolist() + [2]


def peak_bytes(function):
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def models():
    return {path: BGEM3(M3, padding_free=path == "packed") for path in ("packed", "padded")}


@pytest.mark.parametrize("path", ["packed", "padded"])
def test_memory_grows_linearly_up_to_8192_tokens(models, path):
    model = models[path]
    assert model.token_limit(8192) == 8192 == model.config.max_tokens
    _, half = peak_bytes(lambda: model.batch_states([ids_of_length(4096)]))
    states, full = peak_bytes(lambda: model.batch_states([ids_of_length(8192)]))
    assert states[0].shape == (8192, 32)
    whole_scores = 4 * 8192 * 8192 * 4  # [H, T, T] float32: 1 GiB
    assert full < 96 * 2**20 < whole_scores / 10, full
    assert full < 2.2 * half, (half, full)  # doubling the length at most doubles the peak (no T^2 term)


def test_both_paths_agree_at_8192_tokens(models):
    ids = ids_of_length(8192, seed=1)
    packed = models["packed"].batch_states([ids, ids[:300] + [2]])
    padded = models["padded"].batch_states([ids, ids[:300] + [2]])
    for a, b in zip(packed, padded):
        scale = max(1.0, float(np.abs(b).max()))  # |h| reaches ~4: float32 rounding is relative (measured 4.6e-6)
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-5 * scale


def test_longer_inputs_are_cut_to_8192_tokens(models):
    model = models["packed"]
    text = "Paris est la capitale de la France. " * 1200  # ~ 9,600 tokens
    out = model.encode([text, "court"], return_dense=True, return_colbert_vecs=True)
    assert model.truncated == 1 and out["colbert_vecs"][0].shape == (8191, 32)
