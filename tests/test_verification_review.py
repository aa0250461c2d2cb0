"""An adversarial review of the verification kit (issue 12): each test is a way a broken port, a hostile file or a
bad option got past `compare` / `trace` (exit 0 on a broken port, a traceback, a hang, a misleading message);
the fix is in xlmr_np/audit and xlmr_np/cli/audit.py. Their side is our own trace of the golden case with one
thing broken, or HF's stored outputs of that case."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from conftest import case_dir
from xlmr_np import XLMRobertaModel, cli
from xlmr_np.audit.compare import compare
from xlmr_np.audit.goldens import load_case
from xlmr_np.audit.report import format_text
from xlmr_np.audit.trace import read_trace, trace

CASE = case_dir("model_base")


@pytest.fixture(scope="module")
def traced():
    _, inputs = load_case(CASE)
    return trace(XLMRobertaModel.from_pretrained(CASE), **inputs), inputs


def _broken(ours, name, change):
    theirs = {k: v.copy() for k, v in ours.items()}
    theirs[name] = change(theirs[name])
    return theirs


# --- their arrays must hold real numbers -------------------------------------------------------------
@pytest.mark.parametrize("change, kind", [
    (lambda x: x.astype(np.complex64) + 1j, "complex64"),  # the real part is right: it passed, exit 0
    (lambda x: x.astype(str), "<U"),  # text of the right numbers: it passed, exit 0
    (lambda x: np.zeros(x.shape, "S3"), "|S3"),  # a traceback-free but unexplained "could not convert" error
    (lambda x: np.zeros(x.shape, "m8[s]"), "timedelta64"),
    (lambda x: np.zeros(x.shape, [("a", "f4")]), "[('a'"),
])
def test_a_point_that_is_not_real_numbers_is_a_usage_error_naming_its_dtype(traced, change, kind):
    ours, inputs = traced
    theirs = _broken(ours, "layers.0.ffn.activation", change)
    report = compare(ours, theirs, where=inputs["attention_mask"])
    assert report.exit_code == 2, format_text(report)
    problem = next(p for p in report.usage_problems if p.startswith("layers.0.ffn.activation"))
    assert "not real numbers" in problem and kind in problem


# --- every one of their names is compared ------------------------------------------------------------
def test_a_broken_alias_of_a_point_they_also_dumped_is_compared(traced):
    """hidden_states.1 is layers.0: a dump with both, the alias wrong, used to compare only the first one."""
    ours, inputs = traced
    theirs = dict(ours)
    theirs["hidden_states.1"] = ours["layers.0"] + 1.0
    report = compare(ours, theirs, where=inputs["attention_mask"])
    assert report.exit_code == 1, format_text(report)
    first = report.first_divergence
    assert (first.name, first.their_name) == ("layers.0", "hidden_states.1")
    assert [p.their_name for p in report.points if p.name == "layers.0"] == ["layers.0", "hidden_states.1"]
    assert not report.not_compared


# --- hostile .npz files --------------------------------------------------------------------------------
def _npy_header(shape, descr="<f8"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_an_npz_whose_header_claims_a_huge_array_is_refused_without_allocating(tmp_path):
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:  # 8 TB claimed, 64 bytes stored: was a MemoryError traceback
        archive.writestr("embeddings.npy", _npy_header((10 ** 6, 10 ** 6)) + b"\0" * 64)
    with pytest.raises(ValueError, match="embeddings.*claims.*truncated or corrupt"):
        read_trace(path)


def test_an_npz_that_inflates_beyond_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    from xlmr_np.audit import trace as trace_module

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("embeddings.npy", _npy_header((2 ** 20,)) + bytes(8 * 2 ** 20))  # 8 MiB of zeros
    assert path.stat().st_size < 2 ** 16
    monkeypatch.setattr(trace_module, "MAX_NPZ_BYTES", 2 ** 22)  # a 4 MiB limit stands in for the machine's
    with pytest.raises(ValueError, match="inflate to 8.4 MB.*more than the 4.2 MB"):
        read_trace(path)


def test_the_trace_command_refuses_a_lying_npz_with_one_line(tmp_path, capsys):
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("embeddings.npy", _npy_header((10 ** 6, 10 ** 6)) + b"\0" * 64)
    code = cli.main(["trace", "--model", str(CASE), "--ids", "0 5 6 2", "--against", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("xlmr-np: error: --against") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# --- --format json is JSON whatever happens ---------------------------------------------------------------
@pytest.mark.parametrize("options", [
    ["--tolerance", "nonsense"],
    ["--atol", "-1"],
    ["--against", "no-such-file.npz"],
    ["--ids", "0 5 x 2"],
])
def test_format_json_prints_a_json_object_on_usage_errors_too(tmp_path, capsys, options):
    argv = ["trace", "--model", str(CASE), "--format", "json"] + options
    if "--ids" not in options:
        argv += ["--ids", "0 5 6 2"]
    if "--against" not in options:
        theirs = tmp_path / "theirs.npz"
        np.savez(theirs, embeddings=np.zeros((1, 4, 32)))
        argv += ["--against", str(theirs)]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 2 and report["exit_code"] == 2 and report["status"] == "usage_error"
    assert report["first_divergence"] is None and report["points"] == []
    assert err.startswith("xlmr-np: error: ") and report["problems"] == [err.strip().removeprefix("xlmr-np: error: ")]


# --- a tampered bundle manifest -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "golden"
    assert cli.main(["golden", "export", "--model", str(CASE), "--seed", "3", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("edit", [
    lambda m: m.__setitem__("inputs", []),
    lambda m: m.pop("inputs"),
    lambda m: m.__setitem__("inputs", {}),
    lambda m: m["inputs"].__setitem__("input_ids", "x"),
    lambda m: m["inputs"]["input_ids"].__setitem__("file", 5),
    lambda m: m["points"].__setitem__("float32", []),
    lambda m: m["points"].__setitem__("float32", ["x"]),
    lambda m: [r.pop("file") for r in m["points"]["float32"]],
], ids=["inputs-list", "no-inputs", "inputs-empty", "input-record-text", "file-number", "points-empty",
        "point-record-text", "points-without-files"])
def test_a_tampered_manifest_is_one_error_line_not_a_traceback(bundle_dir, tmp_path, capsys, edit):
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(bundle_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    code = cli.main(["trace", "--model", str(CASE), "--bundle", str(copy)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("xlmr-np: error: --bundle") and "manifest.json" in err, err


def test_golden_export_over_a_symlink_loop_says_it_exists(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # Path.exists() is False for it: export went on and failed with "[Errno 20] ... -> 'loop'"
    for extra in ([], ["--overwrite"]):
        code = cli.main(["golden", "export", "--model", str(CASE), "--seed", "1", "--out", str(loop)] + extra)
        err = capsys.readouterr().err
        assert code == 2 and f"{loop} exists" in err and "Errno" not in err, err
        assert loop.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["loop"]  # nothing left behind


# --- fuzz: their program cannot hang us or fill our memory -------------------------------------------------
def _program(tmp_path, body):
    script = tmp_path / "their_port.py"
    script.write_text("import os, sys, time\n" + body)
    import sys

    return [sys.executable, str(script), "{inputs}", "{outputs}"]


def _fuzz_inputs():
    return {"input_ids": np.array([[0, 5, 2]]), "attention_mask": np.ones((1, 3), np.int64)}


def test_fuzz_timeout_holds_when_their_program_leaves_a_process_holding_its_output(tmp_path):
    """A daemonised grandchild (its own session, out of the killed process group) kept the pipes open:
    communicate() after the kill waited for it, 30 s here, forever for a real daemon."""
    import time

    from xlmr_np.audit.fuzz import run_program

    words = _program(tmp_path, "if os.fork() == 0:\n    os.setsid(); time.sleep(20); os._exit(0)\ntime.sleep(60)\n")
    start = time.monotonic()
    outcome, _ = run_program(words, _fuzz_inputs(), tmp_path, timeout=2)
    assert outcome.kind == "timeout" and time.monotonic() - start < 10


def test_fuzz_does_not_keep_what_their_program_prints(tmp_path):
    """300 MB on stdout and on stderr were held in memory (a 3 GB flood took 6 GB); only stderr's tail is kept."""
    import resource

    from xlmr_np.audit.fuzz import run_program

    words = _program(tmp_path, "chunk = b'x' * (1 << 20)\nfor _ in range(300):\n"
                               "    sys.stdout.buffer.write(chunk); sys.stderr.buffer.write(chunk)\n"
                               "sys.stderr.write('\\nlast words\\n'); sys.exit(3)\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    outcome, _ = run_program(words, _fuzz_inputs(), tmp_path, timeout=60)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert outcome.kind == "crashed" and "status 3" in outcome.detail and "last words" in outcome.detail
    assert len(outcome.detail) < 2000 and grown < 100 * 1024, grown


# --- options and inputs that said something misleading ---------------------------------------------------
def test_an_expect_glob_that_matches_none_of_our_points_is_refused(traced):
    """--expect "layer.*" (a typo for layers.*) required nothing: a dump missing every layer point passed."""
    ours, inputs = traced
    with pytest.raises(ValueError, match="'layer.\\*' matches none of our points"):
        compare(ours, {"embeddings": ours["embeddings"]}, where=inputs["attention_mask"], expect="layer.*")
    assert compare(ours, {"embeddings": ours["embeddings"]}, where=inputs["attention_mask"],
                   expect="layers.*").exit_code == 2  # the right glob: every layer point is missing


def test_uint64_ids_beyond_int64_are_not_reported_as_negative():
    from xlmr_np.audit.trace import check_inputs

    with pytest.raises(ValueError, match="input_ids holds 9223372036854775813, beyond int64"):
        check_inputs({"input_ids": np.full((1, 3), 2 ** 63 + 5, dtype=np.uint64)})
