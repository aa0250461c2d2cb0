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
