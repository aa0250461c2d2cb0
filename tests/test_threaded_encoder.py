"""The encoder on several threads (xlmr_np/runtime/threaded_encoder.py) equals core.model.encoder and HF's goldens.

The threaded path normally runs only for batches of at least threaded_encoder.MIN_TOKENS tokens; here a
fixture lowers that to 0 so the small checkpoints take it, and counts the runs so tests can check they did.
`threaded` is the fast kernel set's encoder: the stand-in with its capability check, which hands the cases
it cannot serve to core.model.encoder. References: the stored goldens (tools/make_reference_outputs.py,
transformers 4.57.6) and core.model.encoder.
"""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from conftest import case_dir
from xlmr_np import XLMRobertaModel
from xlmr_np.core import model
from xlmr_np.runtime import FAST, blocked_attention, openblas
from xlmr_np.runtime import threaded_encoder as parallel
from xlmr_np.config import XLMRobertaConfig
from xlmr_np.audit.goldens import format_table, run_case

fast_encoder = FAST.encoder  # the stand-in: threaded where it applies, else core.model.encoder
pytestmark = pytest.mark.skipif(openblas.openblas() is None,
                                reason="numpy's BLAS is not OpenBLAS: the threaded path is never taken")

CASES = sorted(p.name for p in (case_dir("model_base").parent).iterdir() if (p / "case.json").exists())
# cases with cross-attention, which always take model.encoder (a cache is started on the threaded path and
# continued on model.encoder's)
PLAIN_ONLY = {"cache_cross_attention", "decoder_cross_attention"}


@pytest.fixture(autouse=True, params=["rows", "columns"])
def runs(monkeypatch, request):
    """Every forward that may take the threaded path does, with the layer split by rows or by columns (each
    test runs with both); returns the list of (threads, B, T) it ran."""
    monkeypatch.setattr(parallel, "MIN_TOKENS", 0)
    monkeypatch.setattr(parallel, "ROW_SPLIT_MIN_ROWS", 0 if request.param == "rows" else 2**62)
    calls = []
    run = parallel._run

    def counted(team, params, cfg, x, *args):
        calls.append((team.size,) + x.shape[:2])
        return run(team, params, cfg, x, *args)

    monkeypatch.setattr(parallel, "_run", counted)
    return calls


@pytest.mark.parametrize("threads", ["2", "3"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", CASES)
def test_goldens_hold_on_the_threaded_path(name, dtype, threads, runs, monkeypatch):
    monkeypatch.setenv("XLMR_NP_THREADS", threads)
    rows = run_case(case_dir(name), dtype)
    assert rows
    failed = [r for r in rows if not r.ok]
    assert not failed, "\n" + format_table(failed)
    if name not in PLAIN_ONLY:
        assert runs and all(size == min(int(threads), 4) for size, _, _ in runs), runs


def _random_model(position="absolute", decoder=False, heads=6, seed=0, dtype="float64"):
    cfg = XLMRobertaConfig(vocab_size=50, hidden_size=24, num_attention_heads=heads, num_hidden_layers=3,
                           intermediate_size=40, max_position_embeddings=40, position_embedding_type=position,
                           is_decoder=decoder)
    rng = np.random.default_rng(seed)
    params = {}
    for i in range(3):
        for name in ("query", "key", "value", "out"):
            params[f"layers.{i}.attention.{name}.weight"] = rng.normal(0, 0.3, (24, 24))
            params[f"layers.{i}.attention.{name}.bias"] = rng.normal(0, 0.3, 24)
        params[f"layers.{i}.attention.distance"] = rng.normal(0, 0.3, (79, 24 // heads))
        params[f"layers.{i}.ffn.in.weight"] = rng.normal(0, 0.3, (40, 24))
        params[f"layers.{i}.ffn.in.bias"] = rng.normal(0, 0.3, 40)
        params[f"layers.{i}.ffn.out.weight"] = rng.normal(0, 0.3, (24, 40))
        params[f"layers.{i}.ffn.out.bias"] = rng.normal(0, 0.3, 24)
        for block in ("attention", "ffn"):
            params[f"layers.{i}.{block}.norm.weight"] = rng.normal(1, 0.3, 24)
            params[f"layers.{i}.{block}.norm.bias"] = rng.normal(0, 0.3, 24)
    params = {k: v.astype(dtype) for k, v in params.items()}
    x = rng.normal(size=(3, 11, 24)).astype(dtype)
    keep = (rng.random((3, 11)) > 0.25).astype(np.int64)
    keep[:, 0] = 1
    mask = model.self_attention_mask(keep, 11, decoder, np.dtype(dtype))
    head_mask = rng.choice([0.0, 0.5, 1.0, 2.0], size=(3, heads)).astype(dtype)
    return params, cfg, x, mask, head_mask


@pytest.mark.parametrize("fuse_qkv", ["0", "1"])
@pytest.mark.parametrize("threads", ["2", "3", "4", "7"])
@pytest.mark.parametrize("position", ["absolute", "relative_key", "relative_key_query"])
@pytest.mark.parametrize("decoder", [False, True])
def test_threaded_encoder_equals_model_encoder_in_float64(threads, position, decoder, fuse_qkv, runs, monkeypatch):
    monkeypatch.setenv("XLMR_NP_THREADS", threads)  # 4 and 7 threads for 6 heads: uneven and capped shares
    monkeypatch.setenv("XLMR_NP_FUSED_QKV", fuse_qkv)
    params, cfg, x, mask, head_mask = _random_model(position, decoder)
    x_before = x.copy()
    trace_plain, trace_threaded = {}, {}
    plain = model.encoder(params, cfg, x, mask, head_mask, output_attentions=True, output_hidden_states=True,
                          trace=trace_plain)
    threaded = fast_encoder(params, cfg, x, mask, head_mask, output_attentions=True, output_hidden_states=True,
                                trace=trace_threaded)
    for key in ("hidden_states", "attentions"):
        assert len(threaded[key]) == len(plain[key])
        for got, expected in zip(threaded[key], plain[key]):
            np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(threaded["last_hidden_state"], plain["last_hidden_state"], rtol=1e-13, atol=1e-13)
    # the threaded path records the layer outputs only (a trace with sub-steps runs the reference, audit/trace.py)
    assert list(trace_threaded) == [k for k in trace_plain if k.count(".") == 1] == [f"layers.{i}" for i in range(3)]
    bare = fast_encoder(params, cfg, x, mask, head_mask)  # nothing but the last state kept: two buffers in turn
    assert bare["hidden_states"] is None and bare["attentions"] is None and bare["past_key_values"] is None
    np.testing.assert_allclose(bare["last_hidden_state"], plain["last_hidden_state"], rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(x, x_before)  # the input is never a buffer
    assert len(runs) == 2 and runs[0][0] == min(int(threads), 6)


@pytest.mark.parametrize("fuse_qkv", ["0", "1"])
@pytest.mark.parametrize("threads", ["2", "3"])
@pytest.mark.parametrize("position", ["absolute", "relative_key_query"])
def test_threaded_encoder_is_as_accurate_as_model_encoder_in_float32(threads, position, fuse_qkv, runs, monkeypatch):
    """float32 sums in a different order give different roundings; neither path may be less accurate: both are
    measured against the float64 result."""
    monkeypatch.setenv("XLMR_NP_THREADS", threads)
    monkeypatch.setenv("XLMR_NP_FUSED_QKV", fuse_qkv)
    params, cfg, x, mask, head_mask = _random_model(position)
    exact = model.encoder(params, cfg, x, mask, head_mask)["last_hidden_state"]
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    mask32 = np.where(mask < 0, np.finfo(np.float32).min, 0).astype(np.float32)  # float32's own mask value
    args = (params32, cfg, x.astype(np.float32), mask32, head_mask.astype(np.float32))
    plain, threaded = model.encoder(*args), fast_encoder(*args)
    assert threaded["last_hidden_state"].dtype == np.float32
    plain_error = np.abs(plain["last_hidden_state"] - exact).max()
    threaded_error = np.abs(threaded["last_hidden_state"] - exact).max()
    assert plain_error < 1e-5  # float32 rounding, not a bug
    assert threaded_error <= 2 * plain_error, (threaded_error, plain_error)
    assert runs


@pytest.mark.parametrize("fuse_qkv", ["0", "1"])
@pytest.mark.parametrize("threads, heads, batch, length", [
    ("2", 6, 1, 1),  # one row: the second thread has no rows (and its heads still attend)
    ("3", 4, 1, 5),  # 3 threads for 4 heads (shares 1, 1, 2) and 5 rows (1, 2, 2)
    ("2", 6, 2, 3),  # 6 rows
    ("4", 6, 1, 3),  # fewer rows than threads
])
def test_odd_shapes_on_the_threaded_path(threads, heads, batch, length, fuse_qkv, runs, monkeypatch):
    """Rows not divisible by the threads, a thread with no rows, heads shared unevenly; head_mask, attentions,
    hidden states and a started cache, all against core.model.encoder in float64."""
    monkeypatch.setenv("XLMR_NP_THREADS", threads)
    monkeypatch.setenv("XLMR_NP_FUSED_QKV", fuse_qkv)
    params, cfg, x, _, head_mask = _random_model("relative_key_query", decoder=True, heads=heads)
    x = x[:batch, :length]
    keep = np.ones((batch, length), np.int64)
    keep[0, -1] = 0 if length > 2 else 1
    mask = model.self_attention_mask(keep, length, True, np.dtype("float64"))
    options = dict(use_cache=True, output_attentions=True, output_hidden_states=True)
    got = fast_encoder(params, cfg, x, mask, head_mask, **options)
    expected = model.encoder(params, cfg, x, mask, head_mask, **options)
    assert runs == [(min(int(threads), heads), batch, length)]
    for key in ("hidden_states", "attentions"):
        for a, b in zip(got[key], expected[key], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    for pair, pair0 in zip(got["past_key_values"], expected["past_key_values"], strict=True):
        for a, b in zip(pair, pair0, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got["last_hidden_state"], expected["last_hidden_state"], rtol=1e-13, atol=1e-13)


def test_the_threaded_layer_uses_the_fused_sub_layers(runs, monkeypatch):
    """Per layer and thread: the attention output's and the FFN's residual_norm and one ffn_inner, on its rows."""
    monkeypatch.setenv("XLMR_NP_THREADS", "2")
    params, cfg, x, mask, head_mask = _random_model()
    rows = []
    for name in ("ffn_inner_in_blocks", "residual_norm_in_blocks"):
        function = getattr(parallel, name)
        monkeypatch.setattr(parallel, name, lambda p, c, a, *r, f=function, n=name, **k: rows.append((n, len(a)))
                            or f(p, c, a, *r, **k))
    monkeypatch.setattr(parallel, "ROW_SPLIT_MIN_ROWS", 16)  # 33 rows on 2 threads: 16 + 17, split by rows
    fast_encoder(params, cfg, x, mask, head_mask)
    assert sorted(rows) == sorted([("ffn_inner_in_blocks", 16), ("ffn_inner_in_blocks", 17)] * 3
                                  + [("residual_norm_in_blocks", 16), ("residual_norm_in_blocks", 17)] * 6)
    rows.clear()
    monkeypatch.setattr(parallel, "ROW_SPLIT_MIN_ROWS", 17)  # 16 rows for one thread: split by columns
    fast_encoder(params, cfg, x, mask, head_mask)
    assert rows == [("ffn_inner_in_blocks", 33)] * 6  # each thread's FFN columns for all 33 rows, 3 layers


def test_blocked_attention_on_the_threaded_path(runs, monkeypatch):
    monkeypatch.setenv("XLMR_NP_THREADS", "2")
    params, cfg, x, mask, head_mask = _random_model("relative_key_query")
    expected = model.encoder(params, cfg, x, mask, head_mask)["last_hidden_state"]
    monkeypatch.setattr(blocked_attention, "BLOCK_BYTES", 1)  # one query row per block in every thread
    blocks = []
    probs = blocked_attention.attention_probs
    monkeypatch.setattr(blocked_attention, "attention_probs", lambda *a: blocks.append(a[2].shape) or probs(*a))
    got = fast_encoder(params, cfg, x, mask, head_mask, kernels=FAST)["last_hidden_state"]
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    assert runs
    # 3 layers x 2 threads x 11 query rows, each block one row of its thread's 3 heads
    assert len(blocks) == 3 * 2 * 11 and {shape[1:3] for shape in blocks} == {(3, 1)}, blocks[:3]


def test_an_error_in_a_helper_thread_is_raised_and_nothing_hangs(runs, monkeypatch):
    monkeypatch.setenv("XLMR_NP_THREADS", "2")
    params, cfg, x, mask, _ = _random_model()
    blas_threads = openblas.openblas().get()
    broken = dict(params)
    broken["layers.1.ffn.in.weight"] = broken["layers.1.ffn.in.weight"][:, :5]  # wrong shape: matmul fails
    with pytest.raises(ValueError, match="matmul"):
        fast_encoder(broken, cfg, x, mask)
    assert openblas.openblas().get() == blas_threads  # restored after the error
    # the same team runs the next forward normally
    np.testing.assert_allclose(fast_encoder(params, cfg, x, mask)["last_hidden_state"],
                               model.encoder(params, cfg, x, mask)["last_hidden_state"], rtol=1e-13, atol=1e-13)
    assert len(runs) == 2


def test_openblas_thread_count_is_restored(monkeypatch):
    params, cfg, x, mask, _ = _random_model()
    blas = openblas.openblas()
    before = blas.get()
    seen = []
    run = parallel._run

    def spy(*args):
        seen.append(blas.get())  # inside: one BLAS thread per stream
        return run(*args)

    monkeypatch.setattr(parallel, "_run", spy)
    fast_encoder(params, cfg, x, mask)
    assert seen == [1] and blas.get() == before


def test_a_second_caller_meanwhile_takes_the_plain_path(monkeypatch):
    params, cfg, x, mask, _ = _random_model()
    expected = model.encoder(params, cfg, x, mask)["last_hidden_state"]
    assert parallel._LOCK.acquire()  # as if another thread were in a threaded forward
    try:
        calls = []
        monkeypatch.setattr(parallel, "_run", lambda *a: calls.append(a))
        got = fast_encoder(params, cfg, x, mask)["last_hidden_state"]
    finally:
        parallel._LOCK.release()
    assert calls == []
    np.testing.assert_array_equal(got, expected)


def test_concurrent_forwards_from_user_threads_are_all_right(runs, monkeypatch):
    monkeypatch.setenv("XLMR_NP_THREADS", "2")
    m = XLMRobertaModel.from_pretrained(case_dir("model_base"), dtype="float64")
    ids = np.random.default_rng(0).integers(3, m.config.vocab_size, (4, 9))
    expected = m(input_ids=ids).last_hidden_state
    results = [None] * 6

    def work(i):
        results[i] = m(input_ids=ids).last_hidden_state

    workers = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for got in results:
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    assert runs  # some of them took the threaded path


def applies(x, heads=12, **kwargs):
    cfg = XLMRobertaConfig(hidden_size=x.shape[-1], num_attention_heads=heads)
    return parallel.applies(None, cfg, x, None, **kwargs)


def test_when_the_threaded_path_applies(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_TOKENS", 128)  # the default (the fixture lowers it)
    x = np.zeros((2, 128, 768), np.float32)
    monkeypatch.setenv("XLMR_NP_THREADS", "2")
    assert applies(x)
    assert not applies(x, cross_input=x) and applies(x, use_cache=True)
    assert not applies(x, past_key_values=((x, x),))
    assert not applies(x[:1, :127])  # too small to pay for the threads
    assert applies(x[:, :64])  # 2 x 64 tokens
    assert not applies(np.ma.masked_array(x))  # not a plain ndarray
    assert not applies(x, heads=1)  # one head: a team of one would only slow BLAS down
    monkeypatch.setenv("XLMR_NP_THREADS", "1")
    assert not applies(x)
    monkeypatch.setenv("XLMR_NP_THREADS", "two")
    with pytest.raises(ValueError, match="XLMR_NP_THREADS"):
        applies(x)


def test_a_forked_child_gets_its_own_helper_threads(monkeypatch):
    team = parallel._team(2)
    monkeypatch.setattr(team, "pid", -1)  # what a forked child would see: its helpers did not survive the fork
    assert parallel._team(2) is not team


def test_an_interrupted_wait_retires_the_team(monkeypatch):
    """Ctrl-C while the caller waits for a helper: the helper may still be running, so its result must not be
    taken for the next run's; the team is replaced."""
    team = parallel._team(2)
    release = threading.Event()

    class Interrupting:
        def get(self):
            raise KeyboardInterrupt

        def put(self, result):  # the helper's result, after the caller has gone
            pass

    monkeypatch.setattr(team, "_done", Interrupting())
    with pytest.raises(KeyboardInterrupt):
        team.run(lambda i: release.wait(5) if i else None)
    release.set()
    assert team.broken and parallel._team(2) is not team


@pytest.mark.parametrize("position", ["absolute", "relative_key_query"])
def test_a_cache_is_started_on_the_threaded_path_and_continued_on_model_encoder(position, runs):
    params, cfg, x, mask, head_mask = _random_model(position, decoder=True)
    got = fast_encoder(params, cfg, x, mask, head_mask, use_cache=True)
    expected = model.encoder(params, cfg, x, mask, head_mask, use_cache=True)
    assert len(runs) == 1
    np.testing.assert_allclose(got["last_hidden_state"], expected["last_hidden_state"], rtol=1e-13, atol=1e-13)
    assert len(got["past_key_values"]) == len(expected["past_key_values"]) == 3
    for (k, v), (k0, v0) in zip(got["past_key_values"], expected["past_key_values"]):
        np.testing.assert_allclose(k, k0, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(v, v0, rtol=1e-13, atol=1e-13)
    step = x[:, -1:] + 0.5  # one more token, with the cache
    step_mask = model.self_attention_mask(np.ones((3, 12), np.int64), 1, True, np.dtype("float64"))
    continued = fast_encoder(params, cfg, step, step_mask, head_mask, past_key_values=got["past_key_values"],
                                 use_cache=True)
    assert len(runs) == 1  # a past cache takes model.encoder
    reference = model.encoder(params, cfg, step, step_mask, head_mask, past_key_values=expected["past_key_values"],
                              use_cache=True)
    np.testing.assert_allclose(continued["last_hidden_state"], reference["last_hidden_state"], rtol=1e-13,
                               atol=1e-13)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_during_a_threaded_forward_gets_blas_and_the_lock_back():
    """The fork handlers run in the child: BLAS at the count from before the forward, the lock free, no team."""
    blas = openblas.openblas()
    before = blas.get()
    assert parallel._LOCK.acquire()  # as inside a threaded forward
    try:
        with openblas.thread_limit(1):
            pid = os.fork()
            if pid == 0:  # the child: report through the exit status, never return into pytest
                ok = blas.get() == before and parallel._LOCK.acquire(blocking=False) and not parallel._TEAMS
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            assert blas.get() == 1  # the parent keeps its limit until the block ends
    finally:
        parallel._LOCK.release()
    assert os.WEXITSTATUS(status) == 0
    assert blas.get() == before


def test_without_xlmr_np_threads_the_team_has_openblas_own_thread_count(runs, monkeypatch):
    """The default thread count is read before BLAS is set to one thread per stream (read after, every team
    had one thread: the threaded path ran, serially)."""
    monkeypatch.delenv("XLMR_NP_THREADS", raising=False)
    blas = openblas.openblas()
    count = [3]  # as on a 3-core machine, whatever this one has
    monkeypatch.setattr(blas, "get", lambda: count[0])
    monkeypatch.setattr(blas, "set", lambda threads: count.__setitem__(0, threads))
    params, cfg, x, mask, head_mask = _random_model()
    fast_encoder(params, cfg, x, mask, head_mask)
    assert [size for size, _, _ in runs] == [3] and count == [3]
