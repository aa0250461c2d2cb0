"""Traces and the first-divergence report, checked against HF's stored hidden states and attentions.

The comparison's semantics, the sub-step points and the trace command's exit codes: tests/test_verification.py;
every point against a live transformers model (trace_hf) and injected bugs: tests/test_trace_hf.py."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from conftest import ROOT, case_dir
from xlmr_np import XLMRobertaForMaskedLM
from xlmr_np.audit.trace import compare, first_divergence, format_text, trace
from xlmr_np.audit.goldens import load_case


def _hf_outputs():
    with np.load(case_dir("masked_lm") / "outputs_float32.npz") as data:
        return {k: data[k] for k in data.files}


def test_trace_agrees_with_hf_layer_by_layer():
    path = case_dir("masked_lm")
    _, inputs = load_case(path)
    ours = trace(XLMRobertaForMaskedLM.from_pretrained(path), **inputs)
    assert [n for n in ours if n in ("embeddings", "layers.0", "layers.1")] == ["embeddings", "layers.0", "layers.1"]
    assert list(ours)[-1] == "logits"
    report = compare(ours, _hf_outputs(), "float32", where=inputs["attention_mask"], expect="outputs")
    assert [p.name for p in report.points] == ["embeddings", "layers.0.attention.probabilities", "layers.0",
                                               "layers.1.attention.probabilities", "layers.1", "logits"]
    assert report.exit_code == 0 and first_divergence(report) is None, format_text(report)


def test_first_divergence_points_at_the_broken_layer():
    path = case_dir("masked_lm")
    _, inputs = load_case(path)
    ours = trace(XLMRobertaForMaskedLM.from_pretrained(path), **inputs)
    theirs = _hf_outputs()
    theirs["hidden_states.2"] = theirs["hidden_states.2"] + 1e-3  # "their" layer 1 computes something else
    theirs["logits"] = theirs["logits"] + 1e-3
    report = compare(ours, theirs, expect="outputs")
    assert first_divergence(report).name == "layers.1" and report.exit_code == 1
    assert "first divergence: layers.1 (" in format_text(report)


def test_pad_rows_can_be_excluded():
    a = {"layers.0": np.zeros((1, 3, 2))}
    b = {"layers.0": np.array([[[0.0, 0.0], [0.0, 0.0], [5.0, 5.0]]])}
    assert not compare(a, b).points[0].ok
    assert compare(a, b, where=[[1, 1, 0]]).points[0].ok


def test_trace_command_round_trip(tmp_path):
    out = tmp_path / "trace.npz"
    cmd = [sys.executable, "-m", "xlmr_np", "trace", "--model", str(case_dir("masked_lm")),
           "--class", "XLMRobertaForMaskedLM", "--ids", "0 5 6 7 2; 0 8 9 2 1"]
    made = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert made.returncode == 0, made.stderr
    same = subprocess.run(cmd + ["--against", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert same.returncode == 0 and "all 31 compared points agree" in same.stdout, same.stdout + same.stderr
    with np.load(out) as data:
        broken = {k: data[k] for k in data.files}
    broken["layers.0"][0, 1, 3] += 0.5
    np.savez(tmp_path / "broken.npz", **broken)
    diff = subprocess.run(cmd + ["--against", str(tmp_path / "broken.npz")], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert diff.returncode == 1 and "first divergence: layers.0 (" in diff.stdout, diff.stdout
    assert "worst at [0, 1, 3] (batch 0, token 1)" in diff.stdout


def test_a_file_that_is_not_a_trace_is_named_with_the_fix(tmp_path):
    import pytest

    from xlmr_np.audit.trace import read_trace

    notes = tmp_path / "notes.txt"
    notes.write_text("layer 0 looked fine\n")
    with pytest.raises(ValueError, match=r"notes.txt: not an .npz archive; .*numpy.savez") as caught:
        read_trace(notes)
    assert "pickle" not in str(caught.value)
    objects = tmp_path / "objects.npz"
    np.savez(objects, **{"layers.0": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match=r"objects.npz: array 'layers.0' holds Python objects") as caught:
        read_trace(objects)
    assert "unsafely" not in str(caught.value)
    with pytest.raises(ValueError, match="no such file"):
        read_trace(tmp_path / "missing.npz")


def test_ragged_ids_are_refused_before_the_model_loads():
    import pytest

    from xlmr_np.audit.trace import token_ids, trace_checkpoint

    with pytest.raises(ValueError, match=r"ids: sequence 2 has 2 tokens but sequence 1 has 4: .*pad"):
        trace_checkpoint(XLMRobertaForMaskedLM, case_dir("masked_lm"), [[0, 5, 6, 2], [0, 2]])
    with pytest.raises(ValueError, match=r"sequence 1 holds 'a', which is not a token id"):
        token_ids([[0, "a", 2]])
    assert token_ids([0, 5, 2]).tolist() == [[0, 5, 2]] and token_ids(np.zeros((2, 3), int)).shape == (2, 3)


def test_verify_keeps_quiet_about_the_warning_a_golden_case_provokes():
    import warnings

    from xlmr_np.audit.goldens import verify_cases

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = verify_cases([case_dir("causal_lm_not_decoder")], ["float32"])
    assert rows and all(r.ok for r in rows)
    assert not [w for w in caught if "standalone" in str(w.message)], [str(w.message) for w in caught]
