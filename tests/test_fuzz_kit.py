"""`python -m xlmr_np fuzz`: seeded cases through another implementation's program; broken ports are found and
shrunk. The correct port is Hugging Face's XLMRobertaModel (tests/fuzz_port.py --with transformers); the broken
ones inject a port's position mistakes into a quick-to-start port (--with xlmr_np)."""
from __future__ import annotations

import shlex
import sys

import numpy as np
import pytest

from conftest import ROOT, case_dir
from xlmr_np import XLMRobertaModel
from xlmr_np.audit.compare import compare
from xlmr_np.audit.fuzz import draw_case, longest_sequence
from xlmr_np.audit.trace import trace
from xlmr_np.cli import main
from xlmr_np.config import XLMRobertaConfig

PORT = ROOT / "tests" / "fuzz_port.py"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random HF model with token types (type_vocab_size 2), saved like save_pretrained."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from hf_helpers import random_hf_model

    folder = tmp_path_factory.mktemp("fuzz") / "ckpt"
    random_hf_model("XLMRobertaModel", dict(vocab_size=40, hidden_size=16, num_hidden_layers=2,
                                            num_attention_heads=2, intermediate_size=24, max_position_embeddings=34,
                                            type_vocab_size=2), seed=5, directory=folder)
    return folder


def _command(model, *extra):
    return " ".join([f'"{sys.executable}"', f'"{PORT}"', f'"{model}"', "{inputs}", "{outputs}", *extra])


def test_cases_are_seeded_and_cover_padding_sides_lengths_and_token_types():
    cfg = XLMRobertaConfig.from_pretrained(case_dir("token_types"))
    cases = [draw_case(cfg, np.random.default_rng([3, k])) for k in range(40)]
    again = draw_case(cfg, np.random.default_rng([3, 5]))
    assert again.rows == cases[5].rows and again.side == cases[5].side
    assert {c.side for c in cases} == {"left", "right"}
    assert max(c.width for c in cases) == longest_sequence(cfg) == cfg.max_position_embeddings - cfg.pad_token_id - 1
    assert any(1 in sum(c.types, []) for c in cases) == (cfg.type_vocab_size > 1)
    for case in cases:
        arrays = case.arrays()
        real = arrays["attention_mask"].astype(bool)
        assert not np.any(arrays["input_ids"][real] == cfg.pad_token_id)
        assert np.all(arrays["input_ids"][~real] == cfg.pad_token_id)
        left = real[:, -1].all() if case.side == "left" else real[:, 0].all()
        assert left and arrays["token_type_ids"].max() < cfg.type_vocab_size


def test_hf_port_passes(checkpoint, capsys):
    code = main(["fuzz", "--model", str(checkpoint), "--command", _command(checkpoint, "--with", "transformers"),
                 "--cases", "2", "--seed", "4", "--max-length", "12"])
    out = capsys.readouterr().out
    assert code == 0 and "all 2 cases agree" in out, out


@pytest.mark.parametrize("bug, smallest", [("left-padding", (1, 2)), ("position-offset", (1, 1))])
def test_a_broken_port_is_found_shrunk_and_saved_for_replay(checkpoint, tmp_path, capsys, bug, smallest):
    save = tmp_path / "failure.npz"
    code = main(["fuzz", "--model", str(checkpoint), "--command", _command(checkpoint, "--bug", bug),
                 "--cases", "20", "--seed", "1", "--save", str(save)])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED at case" in out and "diverged" in out, out
    with np.load(save) as data:
        inputs = {k: data[k] for k in data.files}
    assert inputs["input_ids"].shape == smallest, out  # rows, tokens: the smallest failing case there is
    if bug == "left-padding":
        assert inputs["attention_mask"].tolist() == [[0, 1]]
    # replay: our trace on the saved inputs against the outputs their program wrote for them
    ours = trace(XLMRobertaModel.from_pretrained(checkpoint), **inputs)
    with np.load(save.with_suffix(".theirs.npz")) as data:
        theirs = {k: data[k] for k in data.files}
    report = compare(ours, theirs, "float32", where=inputs["attention_mask"], expect="fields")
    assert report.first_divergence is not None and report.first_divergence.name == "embeddings"
    # ... and the replay command as printed: it runs, and finds the same first divergence
    replay = next(line for line in out.splitlines() if line.startswith("replay: "))
    words = shlex.split(replay.removeprefix("replay: "))
    assert words[:4] == ["python", "-m", "xlmr_np", "trace"] and "--inputs" in words and "--against" in words
    assert main(words[3:]) == 1
    assert "first divergence: embeddings (" in capsys.readouterr().out
    assert main(["fuzz", "--model", str(checkpoint), "--command", _command(checkpoint, "--bug", bug),
                 "--cases", "20", "--seed", "1", "--save", str(save)]) == 1
    assert (tmp_path / "failure.1.npz").exists()  # a second run never overwrites the first one's case


def test_a_crash_is_a_failure_with_their_message_and_is_shrunk(checkpoint, tmp_path, capsys):
    code = main(["fuzz", "--model", str(checkpoint), "--command", _command(checkpoint, "--crash-above", "3"),
                 "--cases", "20", "--seed", "2", "--save", str(tmp_path / "f.npz")])
    out = capsys.readouterr().out
    assert code == 1 and "exited with status 3: buffer of 3 tokens overflowed" in out, out
    with np.load(tmp_path / "f.npz") as data:
        assert data["input_ids"].shape == (1, 4)  # the shortest batch that overflows


def test_usage_problems_exit_2(checkpoint, tmp_path, capsys):
    argv = ["fuzz", "--model", str(checkpoint), "--cases", "1", "--save", str(tmp_path / "f.npz"), "--command"]
    assert main(argv + [f"{sys.executable} {PORT} {checkpoint} inputs.npz outputs.npz"]) == 2
    assert "lacks {inputs} and {outputs}" in capsys.readouterr().err
    assert main(argv + ["no-such-program-xyz {inputs} {outputs}"]) == 2
    assert "program 'no-such-program-xyz' not found" in capsys.readouterr().err
    assert main(argv + ['"unclosed {inputs} {outputs}']) == 2
    assert "cannot split" in capsys.readouterr().err
    quiet = f'"{sys.executable}" -c "import sys" {{inputs}} {{outputs}}'
    assert main(argv + [quiet]) == 1
    assert "wrote no outputs.npz" in capsys.readouterr().out
    slow = f'"{sys.executable}" -c "import time; time.sleep(30)" {{inputs}} {{outputs}}'
    assert main(argv + [slow, "--timeout", "1"]) == 1
    assert "did not finish within 1 s" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.theirs.npz"))
