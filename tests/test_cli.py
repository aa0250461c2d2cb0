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
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("xlmr-np: error: no golden cases") and len(result.stderr.splitlines()) == 1


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


COMMANDS = ["verify", "trace", "golden", "fuzz", "convert", "fill-mask", "classify", "ner", "qa", "embed", "zero-shot", "tokenize"]


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
    assert "pass --overwrite" in err and "overwrite=True" not in err  # the command line's words, not the API's


# --- one error style, quiet happy paths, help ------------------------------------------------------------------------
def test_verify_says_nothing_on_stderr_when_all_is_well():
    # the golden case causal_lm_not_decoder provokes HF's "add is_decoder=True" warning on purpose
    result = run("verify", "--model", str(case_dir("causal_lm_not_decoder")), "--dtype", "float32")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""


def test_trace_warnings_are_one_line_each_and_bad_files_are_named(tmp_path):
    base = ["trace", "--model", str(case_dir("masked_lm")), "--ids", "0 5 6 2", "--out", str(tmp_path / "t.npz")]
    result = run(*base)  # a masked-LM checkpoint traced as the bare model: two honest warnings
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("xlmr-np: warning: ") for line in lines), result.stderr
    assert any("no pooler weights" in line for line in lines)

    notes = tmp_path / "notes.txt"
    notes.write_text("not a trace\n")
    for extra, words in ((["--against", str(notes)], f"--against {notes}: not an .npz archive"),
                         (["--ids", "0 5; 0 5 6"], "--ids: sequence 2 has 3 tokens but sequence 1 has 2"),
                         (["--ids", "0 x 2"], "--ids: 'x' in sequence 1 is not a token id")):
        result = run(*base, *extra)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith("xlmr-np: error: " + words) and len(result.stderr.splitlines()) == 1
        assert "pickle" not in result.stderr and "Traceback" not in result.stderr


def test_option_errors_are_one_line_in_the_same_style(capsys):
    import pytest

    for argv, words in ((["fill-mask", "--top-k", "x"], "argument --top-k: invalid int value: 'x'"),
                        (["qa", "--encoding-errors", "ignore"], "argument --encoding-errors: invalid choice"),
                        (["trace", "--ids", "0 2"], "the following arguments are required: --model")):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        out, err = capsys.readouterr()
        assert stop.value.code == 2 and out == ""
        assert err.startswith(f"xlmr-np: error: {words}") and len(err.splitlines()) == 1
        assert f"{argv[0]} --help" in err


def test_each_command_has_its_own_short_wrapped_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    (commands,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    descriptions = {name: parser.description for name, parser in commands.choices.items()}
    assert len(set(descriptions.values())) == len(descriptions)  # no two alike
    for name, parser in commands.choices.items():
        assert len(descriptions[name]) < 250, name
        assert max(len(line) for line in parser.format_help().splitlines()) <= 100, name
    model_help = {name: next(a.help for a in parser._actions if "--model" in a.option_strings)
                  for name, parser in commands.choices.items() if name not in ("convert", "golden")}
    for name in ("fill-mask", "embed", "tokenize"):
        assert "demo model" in model_help[name] and "cannot" not in model_help[name], name
    assert "language identifier" in model_help["classify"] and "cannot" not in model_help["classify"]
    for name, head in (("ner", "token-classification"), ("qa", "question-answering"), ("zero-shot", "entailment")):
        assert "demo model" in model_help[name] and "cannot serve" in model_help[name] and head in model_help[name]
