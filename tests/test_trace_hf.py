"""trace_hf against our trace on live transformers models, and six bugs injected into HF found at the right
layer and sub-step (live tier: skipped without torch and transformers).

Every model is random in every parameter (tests/hf_helpers.py); inputs are a padded batch of 3 with token
types. Our trace must agree with trace_hf at EVERY point (expect="all": no name missing, none extra) for
each class, in float32 and float64. Each injected bug must be the first divergence, by name.
"""
from __future__ import annotations

import json
import types
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import xlmr_np  # noqa: E402
from hf_helpers import HF_CLASSES, random_hf_model  # noqa: E402
from xlmr_np.audit.compare import compare  # noqa: E402
from xlmr_np.audit.hf_trace import trace_hf  # noqa: E402
from xlmr_np.audit.report import format_json, format_text  # noqa: E402
from xlmr_np.audit.trace import trace  # noqa: E402

CONFIG = dict(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=37,
              max_position_embeddings=40, type_vocab_size=2, layer_norm_eps=1e-5, num_labels=3)
IDS = np.array([[0, 5, 6, 7, 8, 9, 2], [0, 8, 9, 10, 2, 1, 1], [0, 11, 2, 1, 1, 1, 1]])
MASK = (IDS != 1).astype(np.int64)
TYPES = np.array([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0, 0]])


def _inputs(cls):
    if cls == "XLMRobertaForMultipleChoice":  # [B, C, T]: two choices per row
        return dict(input_ids=np.stack([IDS, IDS[::-1]], 1), attention_mask=np.stack([MASK, MASK[::-1]], 1),
                    token_type_ids=np.stack([TYPES, TYPES[::-1]], 1))
    return dict(input_ids=IDS, attention_mask=MASK, token_type_ids=TYPES)


def _pair(tmp_path, cls, config=CONFIG, seed=7):
    hf = random_hf_model(cls, config, seed, tmp_path)
    return hf, tmp_path


@pytest.mark.parametrize("cls", HF_CLASSES)
def test_every_point_agrees_with_trace_hf(tmp_path, cls):
    config = dict(CONFIG, num_labels=2) if cls == "XLMRobertaForQuestionAnswering" else CONFIG
    config = dict(config, is_decoder=True) if cls == "XLMRobertaForCausalLM" else config
    hf, directory = _pair(tmp_path, cls, config)
    inputs = _inputs(cls)
    for dtype in ("float32", "float64"):
        hf = hf.to(torch.float64 if dtype == "float64" else torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no pooler weights in head checkpoints: HF's random pooler, unused
            ours = trace(getattr(xlmr_np, cls).from_pretrained(directory, dtype=dtype), **inputs,
                         **({"use_cache": False} if cls == "XLMRobertaForCausalLM" else {}))
        theirs = trace_hf(hf, **inputs, **({"use_cache": False} if cls == "XLMRobertaForCausalLM" else {}))
        report = compare(ours, theirs, dtype, where=inputs["attention_mask"])
        assert report.exit_code == 0 and not report.not_compared, format_text(report)
        assert len(report.points) == len(ours) >= 4 + 13 * 3 + 1
        assert all(p.compared > 0 for p in report.points)


def test_relative_positions_and_cross_attention_agree_with_trace_hf(tmp_path):
    config = dict(CONFIG, position_embedding_type="relative_key_query")
    hf, directory = _pair(tmp_path / "relative", "XLMRobertaModel", config)
    ours = trace(xlmr_np.XLMRobertaModel.from_pretrained(directory, dtype="float64"), **_inputs("x"))
    report = compare(ours, trace_hf(hf.double(), **_inputs("x")), "float64", where=MASK)
    assert report.exit_code == 0 and "embeddings.position" not in ours, format_text(report)
    config = dict(CONFIG, is_decoder=True, add_cross_attention=True)
    hf, directory = _pair(tmp_path / "cross", "XLMRobertaForCausalLM", config)
    encoder = np.random.default_rng(0).normal(size=(3, 5, 32))
    call = dict(_inputs("x"), encoder_hidden_states=encoder, encoder_attention_mask=np.array([[1] * 5, [1] * 3 + [0] * 2,
                                                                                               [1] * 5]),
                use_cache=False)
    ours = trace(xlmr_np.XLMRobertaForCausalLM.from_pretrained(directory, dtype="float64"), **call)
    report = compare(ours, trace_hf(hf.double(), **call), "float64", where=MASK)
    assert report.exit_code == 0 and "layers.2.crossattention.scores" in ours, format_text(report)


# --- six bugs injected into HF, each found first at its layer and sub-step --------------------------------
def _eps(hf, monkeypatch):
    monkeypatch.setattr(hf.encoder.layer[1].output.LayerNorm, "eps", 1e-2)


def _tanh_gelu(hf, monkeypatch):
    from transformers.activations import ACT2FN

    monkeypatch.setattr(hf.encoder.layer[2].intermediate, "intermediate_act_fn", ACT2FN["gelu_pytorch_tanh"])


def _zero_based_positions(hf, monkeypatch):
    from transformers.models.xlm_roberta import modeling_xlm_roberta

    def positions(input_ids, padding_idx, past_key_values_length=0):  # 0, 1, 2, ... without padding_idx + 1
        real = input_ids.ne(padding_idx).int()
        return ((torch.cumsum(real, dim=1) - 1) * real).long()

    monkeypatch.setattr(modeling_xlm_roberta, "create_position_ids_from_input_ids", positions)


def _one_over_dh(hf, monkeypatch):
    from transformers.models.xlm_roberta import modeling_xlm_roberta

    attention = hf.encoder.layer[1].attention.self
    real_math = modeling_xlm_roberta.math

    def enter(module, args):  # this layer divides by Dh instead of sqrt(Dh)
        modeling_xlm_roberta.math = types.SimpleNamespace(sqrt=lambda x: x)

    def leave(module, args, output):
        modeling_xlm_roberta.math = real_math

    attention.register_forward_pre_hook(enter)
    attention.register_forward_hook(leave)
    monkeypatch.setattr(modeling_xlm_roberta, "math", real_math)  # put back at teardown, whatever happens


def _float16_value(hf, monkeypatch):
    hf.encoder.layer[0].attention.self.value.register_forward_hook(lambda m, a, out: out.half().float())


def _mask_zero(hf, monkeypatch):
    real = hf.get_extended_attention_mask

    def zero_for_pads(attention_mask, input_shape, *args, **kwargs):  # 0 instead of a large negative number
        return real(attention_mask, input_shape, *args, **kwargs) * 0.0

    monkeypatch.setattr(hf, "get_extended_attention_mask", zero_for_pads)


BUGS = [
    (_eps, "layers.1.ffn.norm"),
    (_tanh_gelu, "layers.2.ffn.activation"),
    (_zero_based_positions, "embeddings.position"),
    (_one_over_dh, "layers.1.attention.scores"),
    (_float16_value, "layers.0.attention.value"),
    (_mask_zero, "layers.0.attention.probabilities"),
]


@pytest.mark.parametrize("inject, expected", BUGS, ids=[b[0].__name__.strip("_") for b in BUGS])
def test_an_injected_bug_is_the_first_divergence(tmp_path, monkeypatch, inject, expected):
    hf, directory = _pair(tmp_path, "XLMRobertaModel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = trace(xlmr_np.XLMRobertaModel.from_pretrained(directory), **_inputs("x"))
    clean = compare(ours, trace_hf(hf, **_inputs("x")), "float32", where=MASK)
    assert clean.exit_code == 0, format_text(clean)
    inject(hf, monkeypatch)
    report = compare(ours, trace_hf(hf, **_inputs("x")), "float32", where=MASK)
    text, data = format_text(report), json.loads(format_json(report))
    assert report.exit_code == 1 and report.first_divergence.name == expected, text
    assert f"first divergence: {expected} (" in text
    assert data["first_divergence"]["name"] == expected and data["exit_code"] == 1
    before = [p for p in report.points[:report.points.index(report.first_divergence)]]
    assert before and all(p.ok for p in before)


def test_the_dump_tool_writes_what_trace_accepts(tmp_path, capsys):
    """tools/dump_hf_trace.py on a stored golden checkpoint, then the trace command against its .npz."""
    import importlib.util

    from conftest import ROOT, case_dir

    spec = importlib.util.spec_from_file_location("dump_hf_trace", ROOT / "tools" / "dump_hf_trace.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    case = case_dir("token_types")
    out = tmp_path / "hf.npz"
    assert tool.main(["--model", str(case), "--inputs", str(case / "inputs.npz"), "--out", str(out)]) == 0
    code = xlmr_np.cli.main(["trace", "--model", str(case), "--inputs", str(case / "inputs.npz"), "--against",
                             str(out), "--format", "json"])
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])  # after the tool's "wrote ..." line
    assert code == 0 and report["exit_code"] == 0 and len(report["points"]) == 32 and not report["missing"]
