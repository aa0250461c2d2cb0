"""`python -m xlmr_np verify`: the main job prints a table and exits 0 only when every output is in tolerance."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np

from conftest import ROOT, case_dir


def run(*args):
    return subprocess.run([sys.executable, "-m", "xlmr_np", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def test_verify_one_case_ok():
    result = run("verify", "--model", str(case_dir("masked_lm")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "XLMRobertaForMaskedLM" in result.stdout and "logits [32]" in result.stdout and " ok" in result.stdout
    assert "0 outside tolerance" in result.stdout


def test_verify_detects_a_wrong_golden(tmp_path):
    broken = tmp_path / "masked_lm"
    shutil.copytree(case_dir("masked_lm"), broken)
    with np.load(broken / "outputs_float32.npz") as data:
        outputs = {k: data[k] for k in data.files}
    outputs["logits"] = outputs["logits"] + 1e-3  # a difference a real bug would make
    np.savez(broken / "outputs_float32.npz", **outputs)
    result = run("verify", "--model", str(broken), "--dtype", "float32")
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "1 outside tolerance" in result.stdout


def test_verify_without_cases_is_a_usage_error(tmp_path):
    result = run("verify", "--model", str(tmp_path))
    assert result.returncode == 2 and "no golden cases" in result.stdout


def test_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0 and "verify" in result.stdout


def test_verify_a_users_checkpoint_against_goldens_they_made(tmp_path):
    import pytest

    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    out = tmp_path / "golden"
    made = subprocess.run([sys.executable, "tools/make_user_golden.py", "--model", str(case_dir("token_classification")),
                           "--class", "XLMRobertaForTokenClassification", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert made.returncode == 0, made.stderr
    result = run("verify", "--model", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "XLMRobertaForTokenClassification" in result.stdout and "0 outside tolerance" in result.stdout
