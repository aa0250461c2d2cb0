"""`trace --onnx`: a torch.onnx export of a random Hugging Face model, run by onnxruntime with its intermediates
exposed under our trace names (xlmr_np/audit/points.py), against HF's own activations (forward hooks) and against
ours at every sub-step; a broken export (one LayerNorm epsilon, one weight) is found at the right layer and
sub-step, ours against ONNX and ONNX against ONNX."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from conftest import ROOT  # noqa: E402
from hf_helpers import random_hf_model  # noqa: E402
from xlmr_np import XLMRobertaModel  # noqa: E402
from xlmr_np.audit.compare import compare  # noqa: E402
from xlmr_np.audit.onnx_trace import trace_onnx  # noqa: E402
from xlmr_np.audit.trace import trace  # noqa: E402
from xlmr_np.cli import main  # noqa: E402

CONFIG = dict(vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48,
              max_position_embeddings=40, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-5)
IDS = np.array([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]])
INPUTS = {"input_ids": IDS, "attention_mask": (IDS != 1).astype(np.int64)}


def _tool():
    spec = importlib.util.spec_from_file_location("export_onnx", ROOT / "tools" / "export_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    model = random_hf_model("XLMRobertaModel", CONFIG, seed=11, directory=folder / "ckpt")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        _tool().export(folder / "ckpt", folder / "model.onnx")
    return folder, model


def _hf_points(model):
    """HF's own activations under our names, through forward hooks on the modules the ONNX scopes name (the
    query split per head as XLMRobertaSelfAttention.forward does: view(B, T, H, Dh).transpose(1, 2))."""
    points, hooks = {}, []
    heads = model.config.num_attention_heads

    def per_head(out):
        batch, tokens, width = out.shape
        return out.view(batch, tokens, heads, width // heads).transpose(1, 2)

    for i, layer in enumerate(model.encoder.layer):
        for module, name in ((layer.attention.self.query, "attention.query"), (layer.attention.output.dense,
                             "attention.out_proj"), (layer.intermediate.dense, "ffn.in_proj"),
                             (layer.intermediate.intermediate_act_fn, "ffn.activation"), (layer.output.dense,
                             "ffn.out_proj"), (layer.attention.output.LayerNorm, "attention.norm")):
            hooks.append(module.register_forward_hook(
                lambda m, args, out, key=f"layers.{i}.{name}": points.__setitem__(
                    key, (per_head(out) if key.endswith(".query") else out).detach().numpy())))
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in INPUTS.items()}, output_hidden_states=True)
    for hook in hooks:
        hook.remove()
    points["embeddings"] = out.hidden_states[0].numpy()
    points.update({f"layers.{k - 1}": h.numpy() for k, h in enumerate(out.hidden_states) if k})
    points["last_hidden_state"], points["pooler_output"] = out.last_hidden_state.numpy(), out.pooler_output.numpy()
    return points


def test_onnx_points_are_hf_activations_under_our_names(exported):
    folder, model = exported
    theirs = trace_onnx(folder / "model.onnx", INPUTS)
    hf = _hf_points(model)
    names = list(theirs)
    assert names[:4] == ["embeddings.word", "embeddings.token_type", "embeddings.position", "embeddings"]
    assert names.index("layers.0.attention.query") < names.index("layers.0.ffn.out_proj")
    assert names.index("layers.0") < names.index("layers.1.attention.query") and "pooler_output" in names
    assert set(hf) <= set(theirs)
    keep = INPUTS["attention_mask"].astype(bool)
    for name, value in hf.items():
        got = theirs[name]
        assert got.shape == value.shape, name
        diff = np.abs(got - value)
        diff = diff.transpose(0, 2, 1, 3)[keep] if got.ndim == 4 else diff[keep] if got.ndim == 3 else diff
        assert diff.max() < 1e-5, (name, diff.max())
    assert theirs["layers.0.attention.query"].shape == (2, 4, 6, 8)  # per head, [B, H, T, Dh]
    assert theirs["layers.0.attention.probabilities"].shape == theirs["layers.0.attention.scores"].shape == (2, 4, 6, 6)


def test_every_point_of_ours_is_mapped_and_agrees(exported):
    folder, _ = exported
    ours = trace(XLMRobertaModel.from_pretrained(folder / "ckpt"), **INPUTS)
    theirs = trace_onnx(folder / "model.onnx", INPUTS)
    report = compare(ours, theirs, "float32", where=INPUTS["attention_mask"])
    assert report.missing == [] and report.not_compared == [] and len(report.points) == len(ours) == 45
    assert report.exit_code == 0, [(p.name, p.max_abs, p.tolerance) for p in report.points if not p.ok]


def test_trace_onnx_agrees_with_ours_and_a_broken_export_is_located(exported, tmp_path, capsys):
    folder, _ = exported
    ids = "0 5 6 7 8 2; 0 9 10 2 1 1"
    assert main(["trace", "--model", str(folder / "ckpt"), "--onnx", str(folder / "model.onnx"), "--ids", ids]) == 0
    assert "all 45 compared points agree" in capsys.readouterr().out

    graph = onnx.load(str(folder / "model.onnx"))
    node = next(n for n in graph.graph.node if n.name.startswith("/encoder/layer.1/attention/output/LayerNorm/"))
    epsilon = next(a for a in node.attribute if a.name == "epsilon")
    epsilon.f = 1.0  # their LayerNorm epsilon: 1 instead of 1e-5
    onnx.save(graph, str(tmp_path / "eps.onnx"))
    assert main(["trace", "--model", str(folder / "ckpt"), "--onnx", str(tmp_path / "eps.onnx"), "--ids", ids]) == 1
    out = capsys.readouterr().out
    assert "first divergence: layers.1.attention.norm " in out  # ours against ONNX: the sub-step, not the layer
    assert "\nlayers.1.attention.out_proj " in out and " ok\nlayers.1.attention.norm " in out  # the one before agrees
    good, broken = (trace_onnx(path, INPUTS) for path in (folder / "model.onnx", tmp_path / "eps.onnx"))
    report = compare(good, broken, "float32", where=INPUTS["attention_mask"])  # ONNX against ONNX: the same step
    assert report.first_divergence.name == "layers.1.attention.norm"

    graph = onnx.load(str(folder / "model.onnx"))
    node = next(n for n in graph.graph.node if n.name == "/encoder/layer.0/intermediate/dense/Add")
    bias = next(t for t in graph.graph.initializer if t.name in node.input)
    values = onnx.numpy_helper.to_array(bias).copy()
    values[3] += 0.05  # one weight of their FFN input projection
    bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
    onnx.save(graph, str(tmp_path / "weight.onnx"))
    assert main(["trace", "--model", str(folder / "ckpt"), "--onnx", str(tmp_path / "weight.onnx"), "--ids", ids,
                 "--format", "json"]) == 1
    import json

    first = json.loads(capsys.readouterr().out)["first_divergence"]
    assert first["name"] == "layers.0.ffn.in_proj" and first["worst"]["index"][2] == 3  # the changed bias column
    report = compare(good, trace_onnx(tmp_path / "weight.onnx", INPUTS), "float32", where=INPUTS["attention_mask"])
    assert report.first_divergence.name == "layers.0.ffn.in_proj"


def test_onnx_input_problems_are_named(exported, tmp_path, capsys):
    folder, _ = exported
    with pytest.raises(ValueError, match=r"needs input 'attention_mask', which the inputs lack"):
        trace_onnx(folder / "model.onnx", {"input_ids": IDS})
    (tmp_path / "notes.onnx").write_bytes(b"\x00\x01 not a model")
    assert main(["trace", "--model", str(folder / "ckpt"), "--onnx", str(tmp_path / "notes.onnx"),
                 "--ids", "0 5 2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xlmr-np: error: --onnx ") and "not an ONNX model" in err and err.count("\n") == 1


def test_an_exposed_export_gives_every_point_as_a_graph_output(exported, tmp_path):
    """tools/export_onnx.py --expose: any ONNX runtime returns our points by name, q/k/v already per head."""
    import warnings

    import onnxruntime

    folder, _ = exported
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _tool().export(folder / "ckpt", tmp_path / "exposed.onnx", expose=True)
    session = onnxruntime.InferenceSession(str(tmp_path / "exposed.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    theirs = dict(zip(names, session.run(names, INPUTS)))  # the graph's own outputs only: no name map here
    ours = trace(XLMRobertaModel.from_pretrained(folder / "ckpt"), **INPUTS)
    report = compare(ours, theirs, "float32", where=INPUTS["attention_mask"])
    assert report.exit_code == 0 and report.missing == [] and len(report.points) == len(ours), report.usage_problems
