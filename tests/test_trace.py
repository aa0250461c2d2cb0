"""Per-layer traces and the first-divergence report, checked against HF's stored hidden states."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from conftest import ROOT, case_dir
from xlmr_np import XLMRobertaForMaskedLM
from xlmr_np.audit.trace import compare, first_divergence, format_report, trace
from xlmr_np.audit.goldens import load_case


def _hf_outputs():
    with np.load(case_dir("masked_lm") / "outputs_float32.npz") as data:
        return {k: data[k] for k in data.files}


def test_trace_agrees_with_hf_layer_by_layer():
    path = case_dir("masked_lm")
    _, inputs = load_case(path)
    ours = trace(XLMRobertaForMaskedLM.from_pretrained(path), **inputs)
    assert list(ours)[:3] == ["embeddings", "layers.0", "layers.1"] and "logits" in ours
    rows = compare(ours, _hf_outputs())
    assert [r.name for r in rows] == ["embeddings", "layers.0", "layers.1", "logits"]
    assert first_divergence(rows) is None, format_report(rows)


def test_first_divergence_points_at_the_broken_layer():
    path = case_dir("masked_lm")
    _, inputs = load_case(path)
    ours = trace(XLMRobertaForMaskedLM.from_pretrained(path), **inputs)
    theirs = _hf_outputs()
    theirs["hidden_states.2"] = theirs["hidden_states.2"] + 1e-3  # "their" layer 1 computes something else
    theirs["logits"] = theirs["logits"] + 1e-3
    rows = compare(ours, theirs)
    assert first_divergence(rows).name == "layers.1"
    assert "first divergence: layers.1" in format_report(rows)


def test_pad_rows_can_be_excluded():
    a = {"layers.0": np.zeros((1, 3, 2))}
    b = {"layers.0": np.array([[[0.0, 0.0], [0.0, 0.0], [5.0, 5.0]]])}
    assert not compare(a, b)[0].ok
    assert compare(a, b, where=[[1, 1, 0]])[0].ok


def test_trace_command_round_trip(tmp_path):
    out = tmp_path / "trace.npz"
    cmd = [sys.executable, "-m", "xlmr_np", "trace", "--model", str(case_dir("masked_lm")),
           "--class", "XLMRobertaForMaskedLM", "--ids", "0 5 6 7 2; 0 8 9 2 1"]
    made = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert made.returncode == 0, made.stderr
    same = subprocess.run(cmd + ["--against", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert same.returncode == 0 and "all 4 activations agree" in same.stdout, same.stdout + same.stderr
    with np.load(out) as data:
        broken = {k: data[k] for k in data.files}
    broken["layers.0"][0, 1, 3] += 0.5
    np.savez(tmp_path / "broken.npz", **broken)
    diff = subprocess.run(cmd + ["--against", str(tmp_path / "broken.npz")], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert diff.returncode == 1 and "first divergence: layers.0" in diff.stdout and "[0, 1, 3]" in diff.stdout


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
