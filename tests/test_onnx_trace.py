"""`trace --onnx`: a torch.onnx export of a random Hugging Face model, run by onnxruntime with its intermediates
exposed under our trace names, against HF's own activations (forward hooks) and against ours; a broken export
(one LayerNorm epsilon, one weight) is found at the right layer and sub-step."""
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
from xlmr_np.audit import bundle  # noqa: E402
from xlmr_np.audit.onnx_trace import trace_onnx  # noqa: E402
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
    """HF's own activations under our names, through forward hooks on the modules the ONNX scopes name."""
    points, hooks = {}, []
    for i, layer in enumerate(model.encoder.layer):
        for module, name in ((layer.attention.self.query, "attention.query"), (layer.attention.output.dense,
                             "attention.out"), (layer.intermediate.dense, "ffn.in"),
                             (layer.intermediate.intermediate_act_fn, "ffn.activation"), (layer.output.dense,
                             "ffn.out"), (layer.attention.output.LayerNorm, "attention.norm")):
            hooks.append(module.register_forward_hook(
                lambda m, args, out, key=f"layers.{i}.{name}": points.__setitem__(key, out.detach().numpy())))
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
    assert names[0] == "embeddings" and names.index("layers.0.attention.query") < names.index("layers.0.ffn.out")
    assert names.index("layers.0") < names.index("layers.1.attention.query") and "pooler_output" in names
    assert set(hf) <= set(theirs)
    keep = INPUTS["attention_mask"].astype(bool)
    for name, value in hf.items():
        got = theirs[name]
        assert got.shape == value.shape, name
        diff = np.abs(got - value)[keep] if got.ndim == 3 else np.abs(got - value)
        assert diff.max() < 1e-5, (name, diff.max())
    assert theirs["layers.0.attention.probs"].shape == (2, 4, 6, 6)


def test_trace_onnx_agrees_with_ours_and_a_broken_export_is_located(exported, tmp_path, capsys):
    folder, _ = exported
    ids = "0 5 6 7 8 2; 0 9 10 2 1 1"
    assert main(["trace", "--model", str(folder / "ckpt"), "--onnx", str(folder / "model.onnx"), "--ids", ids]) == 0
    assert "all 6 activations agree" in capsys.readouterr().out

    graph = onnx.load(str(folder / "model.onnx"))
    node = next(n for n in graph.graph.node if n.name.startswith("/encoder/layer.1/attention/output/LayerNorm/"))
    epsilon = next(a for a in node.attribute if a.name == "epsilon")
    epsilon.f = 1.0  # their LayerNorm epsilon: 1 instead of 1e-5
    onnx.save(graph, str(tmp_path / "eps.onnx"))
    assert main(["trace", "--model", str(folder / "ckpt"), "--onnx", str(tmp_path / "eps.onnx"), "--ids", ids]) == 1
    assert "first divergence: layers.1 " in capsys.readouterr().out
    good, broken = (trace_onnx(path, INPUTS) for path in (folder / "model.onnx", tmp_path / "eps.onnx"))
    verdict = bundle._compare(good, broken, INPUTS["attention_mask"], "float32")
    assert verdict.first.name == "layers.1.attention.norm"  # the sub-step, not just the layer

    graph = onnx.load(str(folder / "model.onnx"))
    node = next(n for n in graph.graph.node if n.name == "/encoder/layer.0/intermediate/dense/Add")
    bias = next(t for t in graph.graph.initializer if t.name in node.input)
    values = onnx.numpy_helper.to_array(bias).copy()
    values[3] += 0.05  # one weight of their FFN input projection
    bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
    onnx.save(graph, str(tmp_path / "weight.onnx"))
    assert main(["trace", "--model", str(folder / "ckpt"), "--onnx", str(tmp_path / "weight.onnx"), "--ids", ids]) == 1
    assert "first divergence: layers.0 " in capsys.readouterr().out
    verdict = bundle._compare(good, trace_onnx(tmp_path / "weight.onnx", INPUTS), INPUTS["attention_mask"], "float32")
    assert verdict.first.name == "layers.0.ffn.in"


def test_onnx_input_problems_are_named(exported, tmp_path, capsys):
    folder, _ = exported
    with pytest.raises(ValueError, match=r"needs input 'attention_mask', which the inputs lack"):
        trace_onnx(folder / "model.onnx", {"input_ids": IDS})
    (tmp_path / "notes.onnx").write_bytes(b"\x00\x01 not a model")
    assert main(["trace", "--model", str(folder / "ckpt"), "--onnx", str(tmp_path / "notes.onnx"),
                 "--ids", "0 5 2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xlmr-np: error: --onnx ") and "not an ONNX model" in err and err.count("\n") == 1
