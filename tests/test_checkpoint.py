"""Loading and saving weights: the HF key table, prefixes, legacy names, tying, shape checks, zero-copy."""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from conftest import case_dir, tolerance_for
from xlmr_np import XLMRobertaForMaskedLM, XLMRobertaForSequenceClassification, XLMRobertaModel
from xlmr_np.config import XLMRobertaConfig
from xlmr_np.errors import WeightsError
from xlmr_np.modeling import MODEL_CLASSES
from xlmr_np.audit.goldens import load_case
from xlmr_np.weights import key_table, load_file, save_file


def _golden(name, key, dtype="float32"):
    with np.load(case_dir(name) / f"outputs_{dtype}.npz") as data:
        return data[key]


def _copy_with_state(tmp_path, name, transform):
    """A copy of golden case `name` whose state dict went through `transform(dict) -> dict`."""
    src = case_dir(name)
    dst = tmp_path / name
    shutil.copytree(src, dst)
    state = {k: np.array(v) for k, v in load_file(src / "model.safetensors").items()}
    (dst / "model.safetensors").unlink()
    save_file(transform(state), dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_table_covers_every_key_hf_saves():
    for name in ["model_base", "masked_lm", "sequence_classification", "multiple_choice", "token_classification",
                 "question_answering", "relative_key_query", "decoder_cross_attention", "masked_lm_untied"]:
        path = case_dir(name)
        case, _ = load_case(path)
        cls = MODEL_CLASSES[case["class"]]
        cfg = XLMRobertaConfig.from_pretrained(path)
        table = key_table(cfg, cls.head, cls.with_pooler)
        saved = {k.removeprefix("roberta.") for k in load_file(path / "model.safetensors")}
        assert saved <= set(table), (name, saved - set(table))
        optional = {"lm_head.decoder.weight"} if cfg.tie_word_embeddings else set()
        assert set(table) - saved <= optional, (name, set(table) - saved)


def test_float32_weights_are_zero_copy_memory_maps():
    model = XLMRobertaForMaskedLM.from_pretrained(case_dir("masked_lm"))
    word = model.params["embeddings.word"]
    assert not word.flags.owndata and not word.flags.writeable  # a read-only view of the mapped file
    assert model.params["lm.decoder.weight"] is word  # tied, not copied


def test_head_checkpoint_into_base_model_strips_prefix():
    with pytest.warns(UserWarning, match="do.* not use|no pooler"):
        base = XLMRobertaModel.from_pretrained(case_dir("masked_lm"))
    _, inputs = load_case(case_dir("masked_lm"))
    out = base(**inputs)
    expected = _golden("masked_lm", "hidden_states.2")
    assert out.pooler_output is None  # the MLM checkpoint has no pooler; HF would invent a random one
    assert np.abs(out.last_hidden_state - expected).max() <= tolerance_for(expected, "float32")


def test_bare_base_checkpoint_into_head_model_adds_prefix(tmp_path):
    path = _copy_with_state(tmp_path, "masked_lm", lambda s: {k.removeprefix("roberta."): v for k, v in s.items()})
    _, inputs = load_case(path)
    logits = XLMRobertaForMaskedLM.from_pretrained(path)(**inputs).logits
    expected = _golden("masked_lm", "logits")
    assert np.abs(logits - expected).max() <= tolerance_for(expected, "float32")


def test_legacy_gamma_beta_and_position_ids_buffer(tmp_path):
    def legacy(state):
        out = {}
        for k, v in state.items():
            k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
            out[k] = v
        out["roberta.embeddings.position_ids"] = np.arange(40, dtype=np.int64)[None]
        out["lm_head.decoder.weight"] = state["roberta.embeddings.word_embeddings.weight"]  # as the hub file has it
        return out

    path = _copy_with_state(tmp_path, "masked_lm", legacy)
    _, inputs = load_case(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # buffers and the tied decoder copy are not "unexpected"
        logits = XLMRobertaForMaskedLM.from_pretrained(path)(**inputs).logits
    expected = _golden("masked_lm", "logits")
    assert np.abs(logits - expected).max() <= tolerance_for(expected, "float32")


def test_missing_weights_are_listed(tmp_path):
    path = _copy_with_state(tmp_path, "masked_lm", lambda s: {k: v for k, v in s.items() if "layer.1." not in k})
    with pytest.raises(WeightsError, match=r"lacks 16 weight\(s\).*encoder\.layer\.1\.attention"):
        XLMRobertaForMaskedLM.from_pretrained(path)
    with pytest.raises(WeightsError, match=r"classifier\.dense\.bias.*classifier\.out_proj"):
        XLMRobertaForSequenceClassification.from_pretrained(case_dir("masked_lm"))


def test_unexpected_weights_warn(tmp_path):
    path = _copy_with_state(tmp_path, "masked_lm", lambda s: {**s, "extra.thing": np.zeros(3, np.float32)})
    with pytest.warns(UserWarning, match=r"1 weight\(s\) this model does not use.*extra\.thing"):
        XLMRobertaForMaskedLM.from_pretrained(path)


def test_shape_mismatch_names_key(tmp_path):
    def bad(state):
        state["lm_head.bias"] = state["lm_head.bias"][:-1]
        return state

    path = _copy_with_state(tmp_path, "masked_lm", bad)
    with pytest.raises(WeightsError, match=r"lm_head\.bias has shape \[98\] but the config implies \[99\]"):
        XLMRobertaForMaskedLM.from_pretrained(path)


def test_integer_weights_refused(tmp_path):
    def bad(state):
        state["lm_head.bias"] = state["lm_head.bias"].astype(np.int32)
        return state

    with pytest.raises(WeightsError, match="lm_head.bias holds int32"):
        XLMRobertaForMaskedLM.from_pretrained(_copy_with_state(tmp_path, "masked_lm", bad))


@pytest.mark.parametrize("name", ["model_base", "masked_lm", "masked_lm_untied", "causal_lm", "sequence_classification",
                                  "multiple_choice", "token_classification", "question_answering", "relative_key",
                                  "decoder_cross_attention"])
def test_save_pretrained_round_trip(tmp_path, name):
    path = case_dir(name)
    case, inputs = load_case(path)
    cls = MODEL_CLASSES[case["class"]]
    model = cls.from_pretrained(path, dtype="float64")
    model.save_pretrained(tmp_path / "saved")
    again = cls.from_pretrained(tmp_path / "saved", dtype="float64")
    assert again.params.keys() == model.params.keys()
    for key in model.params:
        np.testing.assert_array_equal(again.params[key], model.params[key])


@pytest.mark.parametrize("name", ["model_base", "masked_lm", "masked_lm_untied", "sequence_classification",
                                  "multiple_choice", "token_classification", "question_answering",
                                  "decoder_cross_attention", "checkpoint_bf16"])
def test_hf_loads_what_we_save(tmp_path, name):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    path = case_dir(name)
    case, inputs = load_case(path)
    model = MODEL_CLASSES[case["class"]].from_pretrained(path)
    model.save_pretrained(tmp_path)
    hf_model, info = getattr(transformers, case["class"]).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    hf_model.eval()
    with torch.no_grad():
        as_torch = {k: torch.tensor(v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in inputs.items()}
        out = hf_model(**as_torch, **case.get("call", {}))
    ours = model(**inputs, **case.get("call", {}))
    for key in ("logits", "last_hidden_state", "start_logits"):
        if key in ours:
            expected = out[key].numpy()
            assert np.abs(ours[key] - expected).max() <= tolerance_for(expected, "float32"), key
