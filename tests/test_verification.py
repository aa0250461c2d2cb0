"""The verification kit without torch: comparison semantics (no false passes), statistics, presets, the sub-step
trace points and the trace command's exit codes. The references are HF's stored goldens (hidden states,
attentions, logits) and numbers worked out by hand; live HF at every point: tests/test_trace_hf.py."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from conftest import case_dir
from xlmr_np import XLMRobertaForMaskedLM, XLMRobertaModel, cli
from xlmr_np.audit.compare import TOLERANCES, compare
from xlmr_np.audit.goldens import ABSOLUTE, SCALED, load_case
from xlmr_np.audit.points import canonical_name, naming_table
from xlmr_np.audit.report import format_json, format_text
from xlmr_np.audit.trace import read_inputs, trace
from xlmr_np.core.kernels import Kernels

MASKED_LM = case_dir("masked_lm")


def _ours(dtype="float32", case=MASKED_LM, cls=XLMRobertaForMaskedLM):
    _, inputs = load_case(case)
    return trace(cls.from_pretrained(case, dtype=dtype), **inputs), inputs


def _strict_json(text):
    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


# --- the trace points ------------------------------------------------------------------------------------
def test_every_sub_step_is_traced_in_forward_order():
    ours, inputs = _ours()
    steps = ["query", "key", "value", "scores", "probabilities", "context", "out_proj", "norm"]
    layer = [f"attention.{s}" for s in steps] + [f"ffn.{s}" for s in ("in_proj", "activation", "out_proj", "norm")]
    expected = (["embeddings.word", "embeddings.token_type", "embeddings.position", "embeddings"]
                + [f"layers.{i}.{s}" for i in range(2) for s in layer + [""]] + ["logits"])
    assert list(ours) == [name.rstrip(".") for name in expected]
    b, t = inputs["input_ids"].shape
    assert ours["layers.0.attention.query"].shape == (b, 4, t, 8)  # [B, H, T, Dh]
    assert ours["layers.1.attention.scores"].shape == (b, 4, t, t)
    assert ours["layers.1.ffn.activation"].shape == (b, t, 37)
    np.testing.assert_array_equal(ours["layers.1.ffn.norm"], ours["layers.1"])


def test_sub_steps_fit_hfs_stored_attentions_and_hidden_states():
    """HF's own attentions.k and hidden_states.k equal our points of those names (float64, 1e-10)."""
    ours, inputs = _ours("float64")
    with np.load(MASKED_LM / "outputs_float64.npz") as data:
        hf = {k: data[k] for k in data.files}
    report = compare(ours, hf, "float64", where=inputs["attention_mask"], expect="outputs")
    assert report.exit_code == 0 and len(report.points) == 6, format_text(report)
    # probabilities are softmax(scores + mask): recompute them from our scores and HF's convention
    scores = ours["layers.1.attention.scores"]
    masked = np.where(inputs["attention_mask"][:, None, None, :] == 1, scores, -np.inf)
    probs = np.exp(masked - masked.max(-1, keepdims=True))
    np.testing.assert_allclose(probs / probs.sum(-1, keepdims=True), hf["attentions.1"], atol=1e-12)


def test_relative_and_cross_attention_models_trace_their_own_points():
    ours, _ = _ours(case=case_dir("relative_key_query"), cls=XLMRobertaModel)
    assert "embeddings.position" not in ours and "layers.0.attention.scores" in ours
    case, inputs = load_case(case_dir("decoder_cross_attention"))
    from xlmr_np.modeling import MODEL_CLASSES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MODEL_CLASSES[case["class"]].from_pretrained(case_dir("decoder_cross_attention"))
        cross = trace(model, **inputs, **case.get("call", {}))
    assert "layers.0.crossattention.probabilities" in cross and "layers.0.crossattention.norm" in cross
    assert list(cross).index("layers.0.attention.norm") < list(cross).index("layers.0.crossattention.query") \
        < list(cross).index("layers.0.ffn.in_proj")


def test_trace_runs_the_reference_kernels_whatever_the_model_holds():
    def refuse(*args, **kwargs):
        raise AssertionError("a fast path ran during a trace")

    bomb = Kernels("bomb", refuse, lambda name: refuse, refuse, refuse, refuse)
    model = XLMRobertaForMaskedLM.from_pretrained(MASKED_LM, kernels="reference")
    _, inputs = load_case(MASKED_LM)
    expected = trace(model, **inputs)
    model.kernels = bomb
    got = trace(model, **inputs)
    assert model.kernels is bomb and list(got) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    with pytest.raises(AssertionError, match="fast path"):
        model(**inputs)  # the bomb is live outside a trace


def test_hf_aliases_and_the_naming_table():
    assert canonical_name("hidden_states.0") == "embeddings"
    assert canonical_name("hidden_states.3") == "layers.2"
    assert canonical_name("attentions.1") == "layers.1.attention.probabilities"
    assert canonical_name("cross_attentions.0") == "layers.0.crossattention.probabilities"
    assert canonical_name("layers.1.ffn.activation") == "layers.1.ffn.activation"
    table = naming_table()
    assert "layers.{i}.ffn.activation" in table and "hidden_states.{k}" in table
    assert max(len(line) for line in table.splitlines()) <= 100


# --- comparison semantics: every false pass of issue 12 ------------------------------------------------
def test_inf_or_nan_in_theirs_fails_that_point_not_the_next():
    ours, inputs = _ours()
    for bad in (np.inf, np.nan):
        theirs = {k: v.copy() for k, v in ours.items()}
        theirs["layers.0.attention.norm"][0, 2, 5] = bad
        report = compare(ours, theirs, where=inputs["attention_mask"])
        first = report.first_divergence
        assert report.exit_code == 1 and first.name == "layers.0.attention.norm" and first.status == "nonfinite"
        assert first.nonfinite == 1 and first.worst_index == (0, 2, 5)
        assert "first divergence: layers.0.attention.norm (1 NaN/Inf" in format_text(report)
        assert _strict_json(format_json(report))["first_divergence"]["name"] == "layers.0.attention.norm"


def test_pad_garbage_neither_fails_nor_widens_the_tolerance():
    ours, inputs = _ours()
    mask = inputs["attention_mask"]
    assert (mask == 0).any()
    theirs = {k: v.copy() for k, v in ours.items()}
    pads = mask == 0  # [B, T]
    for name, value in theirs.items():  # an uninitialised C buffer at every pad position of every point
        if name.endswith(("query", "key", "value", "probabilities")):
            value[pads[:, None, :].repeat(value.shape[1], 1)] = 1e3
        elif name.endswith("scores"):
            value[np.broadcast_to(pads[:, None, :, None], value.shape)] = 1e3
            value[np.broadcast_to(pads[:, None, None, :], value.shape)] = -1e3
        elif value.ndim >= 2:
            value[pads] = 1e3
    clean = compare(ours, theirs, where=mask)
    assert clean.exit_code == 0, format_text(clean)
    theirs["layers.1.ffn.activation"][0, 1, 2] += 1e-3  # a real bug at a real token, small next to 1e3
    report = compare(ours, theirs, where=mask)
    assert report.exit_code == 1 and report.first_divergence.name == "layers.1.ffn.activation"
    scale = np.abs(ours["layers.1.ffn.activation"][mask == 1]).max()
    assert report.first_divergence.tolerance == max(ABSOLUTE["float32"], SCALED["float32"] * scale)
    unmasked = compare(ours, theirs)  # without the mask the garbage is (rightly) a difference
    assert unmasked.first_divergence.name == "embeddings.word"


def test_the_tolerance_comes_from_ours_not_from_theirs():
    ours = {"layers.0": np.ones((1, 2, 3), np.float32)}
    theirs = {"layers.0": np.full((1, 2, 3), 1e6, np.float32)}  # rtol * max|theirs| would allow 2.0
    report = compare(ours, theirs)
    assert report.exit_code == 1 and report.points[0].tolerance == 1e-5


def test_no_common_names_missing_names_and_extra_names():
    ours, inputs = _ours()
    nothing = compare(ours, {"foo": np.zeros(3)})
    assert nothing.exit_code == 2 and not nothing.points
    assert any("no name in common" in p for p in nothing.usage_problems)
    assert nothing.not_compared == [("foo", "not a point of ours")]
    some = {k: v for k, v in ours.items() if not k.startswith("layers.1.")}
    some["layers.1.ffn.activaton"] = ours["layers.1.ffn.activation"]
    report = compare(ours, some, where=inputs["attention_mask"])
    assert report.exit_code == 2 and "layers.1.attention.query" in report.missing
    assert len(report.missing) == 12
    assert ("layers.1.ffn.activaton", "not a point of ours (did you mean 'layers.1.ffn.activation'?)") \
        in report.not_compared
    text = format_text(report)
    assert "12 expected name(s) missing: layers.1.attention.query" in text and "not compared (1)" in text
    data = _strict_json(format_json(report))
    assert data["exit_code"] == 2 and data["status"] == "usage_error" and len(data["missing"]) == 12
    assert data["not_compared"][0]["name"] == "layers.1.ffn.activaton"
    # the same points, asked only for what HF's outputs hold, are complete
    assert compare(ours, some, where=inputs["attention_mask"], expect="embeddings,layers.0*").exit_code == 0


def test_a_shape_mismatch_shows_both_shapes():
    ours, _ = _ours()
    theirs = dict(ours)
    theirs["layers.0.attention.query"] = ours["layers.0.attention.query"].transpose(0, 2, 1, 3)  # [B, T, H, Dh]
    report = compare(ours, theirs)
    assert report.exit_code == 2
    (problem,) = [p for p in report.usage_problems if "shape" in p]
    assert problem == ("layers.0.attention.query: shape differs, ours [3, 4, 12, 8], theirs [3, 12, 4, 8] (same "
                       "element count: another layout? see the naming table)")
    assert "SHAPE" in format_text(report)


def test_float64_preset_fails_a_float32_accurate_port():
    ours64, inputs = _ours("float64")
    ours32, _ = _ours("float32")
    mask = inputs["attention_mask"]
    assert compare(ours64, ours32, "float64", where=mask).exit_code == 1
    assert compare(ours64, ours32, "float32", where=mask).exit_code == 0
    assert compare(ours64, ours64, "float64", where=mask).exit_code == 0
    loose = [TOLERANCES[n] for n in ("float64", "float32", "float16", "bfloat16", "int8")]
    assert all(a.atol < b.atol and a.rtol < b.rtol for a, b in zip(loose, loose[1:]))
    assert all(t.reason and "measured" in t.reason or t.name == "int8" for t in loose)


def test_statistics_worked_out_by_hand():
    ours = {"layers.0": np.array([[[1.0, -2.0], [4.0, 0.5], [9.0, 9.0]]], np.float32)}  # [B=1, T=3, D=2]
    theirs = {"layers.0": ours["layers.0"].copy()}
    theirs["layers.0"][0, 1, 0] = np.nextafter(np.float32(4.0), np.float32(5.0))  # one ulp of 4 = 4.77e-7
    theirs["layers.0"][0, 0, 1] = -2.5  # |d| = 0.5, at batch 0, token 0
    p = compare(ours, theirs, (0.1, 0.0), where=[[1, 1, 0]]).points[0]  # token 2 is a pad
    assert p.compared == 4 and p.scale == 4.0 and p.max_abs == 0.5 and p.rel_to_scale == 0.125
    assert p.over == 1 and p.over_share == 0.25 and p.status == "diff"
    assert p.worst_index == (0, 0, 1) and p.worst_position == {"batch": 0, "token": 0}
    assert p.ours_at_worst == -2.0 and p.theirs_at_worst == -2.5
    assert np.isclose(p.nmse, (0.25 + (2.0 ** -21) ** 2) / (1 + 4 + 16 + 0.25))
    assert p.ulp_max == 0.5 / np.spacing(np.float32(2.0)) and p.ulp_p50 == 0.5  # zeros, 1 ulp, then 2^21
    heads = compare({"layers.0.attention.probabilities": np.zeros((1, 2, 3, 3))},
                    {"layers.0.attention.probabilities": np.eye(3)[None, None].repeat(2, 1) * [[[[0]], [[1]]]]})
    assert heads.points[0].worst_position == {"batch": 0, "token": 0, "head": 1}


# --- the trace command ------------------------------------------------------------------------------------
TOKEN_TYPES = case_dir("token_types")  # XLMRobertaModel, type_vocab_size 2, padded batch of 3 with types


def _cli(capsys, *argv):
    code = cli.main(["trace", "--model", str(TOKEN_TYPES), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _inputs_file(tmp_path):
    _, inputs = load_case(TOKEN_TYPES)
    path = tmp_path / "inputs.npz"
    np.savez(path, **inputs)
    return path, inputs


def test_trace_with_nothing_to_do_is_a_usage_error(capsys):
    code, out, err = _cli(capsys, "--ids", "0 5 6 2")
    assert code == 2 and out == "" and err.startswith("xlmr-np: error: nothing to do: give --out")
    assert len(err.splitlines()) == 1


def test_trace_inputs_json_and_exit_codes(tmp_path, capsys):
    path, inputs = _inputs_file(tmp_path)
    assert read_inputs(path)["token_type_ids"].any()
    ours = tmp_path / "ours.npz"
    code, out, _ = _cli(capsys, "--inputs", str(path), "--out", str(ours))
    assert code == 0 and "wrote 32 trace points" in out
    code, out, _ = _cli(capsys, "--inputs", str(path), "--against", str(ours), "--format", "json")
    data = _strict_json(out)
    assert code == 0 and data["exit_code"] == 0 and data["first_divergence"] is None and len(data["points"]) == 32
    assert data["points"][0]["name"] == "embeddings.word" and data["tolerance"]["name"] == "float32"
    with np.load(ours) as saved:
        theirs = {k: saved[k] for k in saved.files}
    theirs["layers.1.attention.scores"][1, 2, 3, 4] += 1e-2
    theirs["layers.1.attention.probabilities"] += 1e-4
    broken = tmp_path / "broken.npz"
    np.savez(broken, **theirs)
    code, out, _ = _cli(capsys, "--inputs", str(path), "--against", str(broken), "--format", "json")
    first = _strict_json(out)["first_divergence"]
    assert code == 1 and first["name"] == "layers.1.attention.scores"
    assert first["worst"]["index"] == [1, 2, 3, 4]
    assert first["worst"]["position"] == {"batch": 1, "token": 3, "key": 4, "head": 2}
    theirs["layers.1.attention.scores"][1, 2, 3, 4] = np.inf
    np.savez(broken, **theirs)
    code, out, _ = _cli(capsys, "--inputs", str(path), "--against", str(broken))
    assert code == 1 and "first divergence: layers.1.attention.scores (1 NaN/Inf" in out
    del theirs["layers.0.ffn.norm"]
    np.savez(broken, **theirs)
    code, out, err = _cli(capsys, "--inputs", str(path), "--against", str(broken))
    assert code == 2 and "1 expected name(s) missing: layers.0.ffn.norm" in err and "--expect outputs" in err
    assert len(err.splitlines()) == 1


def test_trace_float64_uses_the_float64_preset(tmp_path, capsys):
    path, _ = _inputs_file(tmp_path)
    dump32 = tmp_path / "f32.npz"
    assert _cli(capsys, "--inputs", str(path), "--out", str(dump32))[0] == 0
    code, out, _ = _cli(capsys, "--inputs", str(path), "--dtype", "float64", "--against", str(dump32))
    assert code == 1 and out.startswith("tolerance float64: max(1e-10, 1e-12 x max|ours|)")
    code, out, _ = _cli(capsys, "--inputs", str(path), "--dtype", "float64", "--against", str(dump32),
                        "--tolerance", "float32")
    assert code == 0, out
    code, out, _ = _cli(capsys, "--inputs", str(path), "--dtype", "float64", "--against", str(dump32),
                        "--atol", "1e-3", "--rtol", "0")
    assert code == 0 and out.startswith("tolerance explicit: max(0.001, 0 x max|ours|)")


def test_trace_usage_errors_are_one_line(tmp_path, capsys):
    path, inputs = _inputs_file(tmp_path)
    np.savez(tmp_path / "floats.npz", input_ids=inputs["input_ids"].astype(np.float32))
    np.savez(tmp_path / "extra.npz", input_ids=inputs["input_ids"], labels=inputs["input_ids"])
    np.savez(tmp_path / "ragged.npz", input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"][:, :3])
    np.savez(tmp_path / "theirs.npz", foo=np.zeros(3))
    ours = tmp_path / "ours.npz"
    _cli(capsys, "--inputs", str(path), "--out", str(ours))
    with np.load(ours) as saved:
        bad_shape = {k: saved[k] for k in saved.files}
    bad_shape["layers.0"] = bad_shape["layers.0"][:, :5]
    np.savez(tmp_path / "shape.npz", **bad_shape)
    for argv, words in (
            (["--inputs", str(tmp_path / "floats.npz"), "--out", str(ours)], "input_ids holds float32 values"),
            (["--inputs", str(tmp_path / "extra.npz"), "--out", str(ours)], "unknown input(s) labels"),
            (["--inputs", str(tmp_path / "ragged.npz"), "--out", str(ours)], "attention_mask has shape [3, 3]"),
            (["--inputs", str(path), "--against", str(tmp_path / "theirs.npz")], "no name in common"),
            (["--inputs", str(path), "--against", str(tmp_path / "shape.npz")],
             "layers.0: shape differs, ours [3, 12, 32], theirs [3, 5, 32]"),
            (["--inputs", str(path), "--against", str(ours), "--tolerance", "fp8"], "unknown tolerance preset"),
            (["--ids", "0 5 2", "--against", str(tmp_path / "missing.npz")], "no such file")):
        code, out, err = _cli(capsys, *argv)
        assert code == 2 and words in err, (argv, err)
        assert err.startswith("xlmr-np: error: ") and len(err.splitlines()) == 1 and "Traceback" not in err


def test_trace_help_prints_the_naming_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        cli.main(["trace", "--help"])
    out = capsys.readouterr().out
    for words in ("layers.{i}.attention.scores", "layers.{i}.ffn.activation", "attentions.{k}",
                  "Exit status: 0 every compared point agrees, 1 a divergence"):
        assert words in out
    assert max(len(line) for line in out.splitlines()) <= 100
