"""The command line (xlmr_np/cli): `python -m xlmr_np verify`, the main job, prints a table and exits 0 only
when every output is in tolerance; every command family is registered; `convert` prints what it wrote."""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import numpy as np

from conftest import ROOT, case_dir
from xlmr_np import cli


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


COMMANDS = ["verify", "trace", "convert", "fill-mask", "classify", "ner", "qa", "embed", "zero-shot", "tokenize"]


def test_every_command_is_registered_in_order():
    (commands,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(commands.choices) == COMMANDS


def test_a_command_module_that_fails_to_import_is_not_skipped():
    # Blocking one command family must break `import xlmr_np.cli`, not drop its commands from --help.
    code = "import sys; sys.modules['xlmr_np.cli.files'] = None; import xlmr_np.cli"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode != 0 and "import of xlmr_np.cli.files halted" in result.stderr


def test_convert_command_prints_the_files_written(tmp_path, capsys):
    src, dst = ROOT / "reference_outputs" / "formats" / "pytorch", tmp_path / "out"
    assert cli.main(["convert", str(src), str(dst), "--max-shard-size", "1GB"]) == 0
    out, err = capsys.readouterr()
    assert str(dst / "model.safetensors") in out.splitlines() and str(dst / "config.json") in out.splitlines()
    assert err == ""
    assert cli.main(["convert", str(src), str(dst)]) == 2  # DST holds weights: one error line, exit status 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("xlmr-np: error: ") and "already holds model.safetensors" in err
