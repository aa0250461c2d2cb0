"""`labels=` and the `loss` of every head, against closed forms, HF goldens and HF itself.

1. The primitives of xlmr_np/core/losses.py against straightforward float64 math written here (math.exp, math.log,
   Python loops), not against the code under test; extreme logits must stay finite.
2. Goldens: reference_outputs/losses (tools/make_loss_goldens.py: HF 4.57.6's loss on the golden case models),
   float32 and float64, under the project's tolerance policy (tolerance_for), chosen by the dtype HF returns the
   loss in (the causal LM's is float32 in both runs: HF's ForCausalLMLoss calls logits.float()).
3. Live: two random configs per head, our loss against HF's on the same weights and labels (skipped, with the
   reason shown, where torch or transformers do not import).
4. What the calls do around the loss: its place in the outputs, the problem_type HF writes into the config,
   use_cache turned off by causal labels, and the InputErrors for labels torch would refuse (or misread).
"""
from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import case_dir, tolerance_for
from device_standin import DeviceArray, device
from xlmr_np import backend
from xlmr_np.config import XLMRobertaConfig
from xlmr_np.core import losses
from xlmr_np.errors import ConfigError, InputError
from xlmr_np.modeling import MODEL_CLASSES

ROOT = Path(__file__).resolve().parent.parent
LOSS_DIR = ROOT / "reference_outputs" / "losses"
MANIFEST = json.loads((LOSS_DIR / "MANIFEST.json").read_text())
backend.register_array_module(DeviceArray, device)


# --- 1. primitives against closed forms -------------------------------------------------------------------
def reference_log_softmax(row):
    top = max(row)
    total = sum(math.exp(v - top) for v in row)
    return [v - top - math.log(total) for v in row]


def reference_cross_entropy(logits, labels, ignore_index=-100):
    terms = [-reference_log_softmax(list(map(float, row)))[int(label)]
             for row, label in zip(logits, labels) if label != ignore_index]
    return sum(terms) / len(terms) if terms else float("nan")


def reference_bce(x, t):
    """-(t log s + (1 - t) log(1 - s)), s = 1 / (1 + e^-x), evaluated where it is exact in float64 (|x| <= 30)."""
    s = 1.0 / (1.0 + math.exp(-x))
    return -(t * math.log(s) + (1.0 - t) * math.log(1.0 - s))


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_log_softmax_matches_the_closed_form_and_survives_huge_logits(rng):
    x = rng.normal(0, 3, (5, 7))
    expected = np.array([reference_log_softmax(list(row)) for row in x])
    np.testing.assert_allclose(losses.log_softmax(x), expected, rtol=0, atol=1e-13)
    huge = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = losses.log_softmax(huge)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [[0.0, -1000.0, -2000.0]], rtol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_is_the_mean_over_kept_rows(rng, dtype):
    logits = rng.normal(0, 4, (9, 6)).astype(dtype)
    labels = rng.integers(0, 6, 9)
    labels[[1, 4, 5]] = -100
    got = losses.cross_entropy(logits, labels)
    assert got.shape == () and got.dtype == dtype
    expected = reference_cross_entropy(logits, labels)
    assert abs(float(got) - expected) <= (1e-6 if dtype == "float32" else 1e-13) * max(1.0, expected)


def test_cross_entropy_with_another_ignore_index_and_nothing_kept(rng):
    logits = rng.normal(0, 1, (4, 3))
    labels = np.array([2, 3, 0, 3])
    assert abs(float(losses.cross_entropy(logits, labels, ignore_index=3))
               - reference_cross_entropy(logits, labels, ignore_index=3)) < 1e-13
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 RuntimeWarning: the nan is torch's answer, not an accident
        nothing = losses.cross_entropy(logits, np.full(4, -100))
    assert np.isnan(nothing) and nothing.dtype == np.float64
    assert np.isnan(losses.cross_entropy(logits.astype(np.float32), np.full(4, -100)))


def test_cross_entropy_stays_finite_for_confident_wrong_logits():
    logits = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=np.float32)
    assert float(losses.cross_entropy(logits, np.array([1, 1]))) == pytest.approx(1e4, rel=1e-6)  # (2e4 + 0) / 2


def test_mse_is_the_mean_square(rng):
    p, t = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    expected = sum((float(a) - float(b)) ** 2 for a, b in zip(p.ravel(), t.ravel())) / 12
    assert abs(float(losses.mse(p, t)) - expected) < 1e-14


def test_bce_with_logits_matches_the_closed_form_and_is_stable(rng):
    x = rng.normal(0, 5, (4, 5))
    t = rng.random((4, 5))
    t[0, 0], t[1, 1] = 0.0, 1.0
    expected = sum(reference_bce(float(a), float(b)) for a, b in zip(x.ravel(), t.ravel())) / x.size
    assert abs(float(losses.bce_with_logits(x, t)) - expected) < 1e-13
    # |x| = 1000: the naive form takes log(0); the loss is |x| on the wrong side, 0 on the right one.
    x = np.array([1000.0, -1000.0, 1000.0, -1000.0], dtype=np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = losses.bce_with_logits(x, t)
    assert got.dtype == np.float32 and float(got) == pytest.approx(500.0, rel=1e-7)


def test_causal_loss_shifts_by_one_and_is_float32_even_for_float64_logits(rng):
    logits = rng.normal(0, 2, (2, 5, 7))
    labels = rng.integers(0, 7, (2, 5))
    labels[1, 3] = -100
    got = losses.causal_lm_loss(logits, labels)
    assert got.dtype == np.float32  # HF's logits.float()
    rows = [(logits.astype(np.float32)[b, t], labels[b, t + 1]) for b in range(2) for t in range(4)]
    expected = reference_cross_entropy([r for r, _ in rows], [label for _, label in rows])
    assert abs(float(got) - expected) < 2e-6 * expected


def test_question_answering_clamps_and_ignores_the_length(rng):
    start, end = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    got = losses.question_answering_loss(start, end, np.array([2, 9, -4]), np.array([[6], [1], [3]]))
    # 9 -> 6 = T (ignored), -4 -> 0; end 6 is T itself (ignored)
    expected = (reference_cross_entropy(start, [2, 6, 0], ignore_index=6)
                + reference_cross_entropy(end, [6, 1, 3], ignore_index=6)) / 2
    assert abs(float(got) - expected) < 1e-13


def test_problem_type_inference_follows_hf():
    assert losses.infer_problem_type(1, True) == "regression"
    assert losses.infer_problem_type(1, False) == "regression"
    assert losses.infer_problem_type(3, True) == "single_label_classification"
    assert losses.infer_problem_type(3, False) == "multi_label_classification"


def test_regression_with_one_label_squeezes_both_sides(rng):
    logits, labels = rng.normal(size=(4, 1)), rng.normal(size=4)
    expected = sum((float(a) - float(b)) ** 2 for a, b in zip(logits[:, 0], labels)) / 4
    for shaped in (labels, labels[:, None]):
        assert abs(float(losses.sequence_classification_loss(logits, shaped, "regression")) - expected) < 1e-14


# --- 2. goldens -----------------------------------------------------------------------------------------------
def test_loss_golden_files_match_their_manifest():
    assert MANIFEST["versions"]["transformers"] == "4.57.6"
    for name, digest in MANIFEST["sha256"].items():
        assert hashlib.sha256((LOSS_DIR / name).read_bytes()).hexdigest() == digest, f"losses/{name} changed"
    assert {f"{case}.npz" for case in MANIFEST["cases"]} <= set(MANIFEST["sha256"])


def load_golden(name):
    entry = MANIFEST["cases"][name]
    with np.load(LOSS_DIR / f"{name}.npz") as data:
        arrays = {k: data[k] for k in data.files}
    with np.load(ROOT / "reference_outputs" / entry["model"] / "inputs.npz") as data:
        inputs = {k: data[k] for k in data.files}
    return entry, inputs, arrays


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(MANIFEST["cases"]))
def test_loss_matches_the_hf_golden(name, dtype):
    entry, inputs, arrays = load_golden(name)
    model = MODEL_CLASSES[entry["class"]].from_pretrained(ROOT / "reference_outputs" / entry["model"], dtype=dtype)
    if entry["problem_type"]:
        model.config.problem_type = entry["problem_type"]
    labels = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in arrays.items() if not k.startswith("loss_")}
    out = model(**inputs, **labels)
    reference = arrays[f"loss_{dtype}"]
    assert out.loss.shape == () and out.loss.dtype == reference.dtype
    assert model.config.problem_type == entry["problem_type_after"]
    if np.isnan(reference):
        assert np.isnan(out.loss)
        return
    diff = abs(float(out.loss) - float(reference))
    # the tolerance of the dtype the loss is computed in: float32 for the causal LM's in both runs
    assert diff <= tolerance_for(reference, reference.dtype.name), f"{name} {dtype}: |diff| {diff:.3g}"


# --- 3. live against HF ---------------------------------------------------------------------------------------
LIVE_CONFIGS = [
    dict(vocab_size=41, hidden_size=12, num_hidden_layers=1, num_attention_heads=3, intermediate_size=20,
         max_position_embeddings=24, type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5, num_labels=4),
    dict(vocab_size=57, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
         max_position_embeddings=30, type_vocab_size=2, pad_token_id=0, layer_norm_eps=1e-6, num_labels=2,
         position_embedding_type="relative_key", hidden_act="gelu_new"),
]
# loss case -> (HF class, config changes, problem_type set on the config before the call)
LIVE_CASES = {
    "masked_lm": ("XLMRobertaForMaskedLM", {}, None),
    "causal_lm": ("XLMRobertaForCausalLM", {"is_decoder": True}, None),
    "single_label": ("XLMRobertaForSequenceClassification", {}, None),
    "multi_label": ("XLMRobertaForSequenceClassification", {}, None),
    "regression_one": ("XLMRobertaForSequenceClassification", {"num_labels": 1}, None),
    "regression_many": ("XLMRobertaForSequenceClassification", {}, "regression"),
    "token_classification": ("XLMRobertaForTokenClassification", {}, None),
    "multiple_choice": ("XLMRobertaForMultipleChoice", {}, None),
    "question_answering": ("XLMRobertaForQuestionAnswering", {"num_labels": 2}, None),
}


@pytest.fixture(scope="module")
def hf():
    torch = pytest.importorskip("torch", reason="torch is not installed: live loss parity against HF skipped")
    pytest.importorskip("transformers", reason="transformers is not installed: live loss parity against HF skipped")
    import hf_helpers

    torch.set_num_threads(1)
    return hf_helpers


def live_inputs(rng, config, multiple_choice=False):
    batch, length = 3, 7
    shape = (batch, 2, length) if multiple_choice else (batch, length)
    ids = rng.integers(3, config["vocab_size"], shape)
    mask = np.ones(shape, dtype=np.int64)
    mask[..., -2:] = rng.random(shape[:-1] + (2,)) < 0.5  # some padding at the end of some rows
    ids[mask == 0] = config["pad_token_id"]
    return {"input_ids": ids, "attention_mask": mask}


def live_labels(name, rng, config, inputs):
    batch, length = inputs["input_ids"].shape[0], inputs["input_ids"].shape[-1]
    classes = config["num_labels"]
    if name in ("masked_lm", "causal_lm", "token_classification"):
        high = config["vocab_size"] if name != "token_classification" else classes
        labels = rng.integers(0, high, (batch, length))
        labels[rng.random((batch, length)) < 0.3] = -100
        return {"labels": labels}
    if name == "single_label":
        return {"labels": rng.integers(0, classes, batch)}
    if name == "multi_label":
        return {"labels": rng.random((batch, classes)).astype(np.float32).astype(np.float64)}
    if name in ("regression_one", "regression_many"):
        return {"labels": rng.normal(0, 2, (batch, classes)).astype(np.float32).astype(np.float64)}
    if name == "multiple_choice":
        return {"labels": rng.integers(0, 2, batch)}
    return {"start_positions": rng.integers(-2, length + 3, batch), "end_positions": rng.integers(-2, length + 3, batch)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config_index", range(len(LIVE_CONFIGS)))
@pytest.mark.parametrize("name", sorted(LIVE_CASES))
def test_loss_matches_hf_live(hf, tmp_path, name, config_index, dtype):
    import torch

    cls_name, changes, problem_type = LIVE_CASES[name]
    config = dict(LIVE_CONFIGS[config_index], **changes)
    seed = 1000 * config_index + sorted(LIVE_CASES).index(name)
    theirs = hf.random_hf_model(cls_name, config, seed, directory=tmp_path)
    torch_dtype = getattr(torch, dtype)
    theirs = theirs.to(torch_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "add is_decoder=True" and similar, expected
        ours = MODEL_CLASSES[cls_name].from_pretrained(tmp_path, dtype=dtype)
    if problem_type:
        theirs.config.problem_type = ours.config.problem_type = problem_type
    rng = np.random.default_rng(seed)
    inputs = live_inputs(rng, config, multiple_choice=name == "multiple_choice")
    labels = live_labels(name, rng, config, inputs)
    with torch.no_grad():
        reference = theirs(**{k: hf.to_torch(v, torch_dtype) for k, v in {**inputs, **labels}.items()}).loss.numpy()
    got = ours(**inputs, **{k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in labels.items()}).loss
    assert got.dtype == reference.dtype and ours.config.problem_type == theirs.config.problem_type
    diff = abs(float(got) - float(reference))
    assert diff <= tolerance_for(reference, reference.dtype.name), f"{name}: |diff| {diff:.3g}"


def test_all_ignored_and_clamped_positions_live(hf, tmp_path):
    import torch

    config = dict(LIVE_CONFIGS[0], num_labels=2)
    theirs = hf.random_hf_model("XLMRobertaForTokenClassification", config, 5, directory=tmp_path)
    ours = MODEL_CLASSES["XLMRobertaForTokenClassification"].from_pretrained(tmp_path)
    ids = np.random.default_rng(5).integers(3, 41, (2, 6))
    labels = np.full((2, 6), -100)
    with torch.no_grad():
        reference = theirs(input_ids=torch.from_numpy(ids), labels=torch.from_numpy(labels)).loss
    assert torch.isnan(reference) and np.isnan(ours(ids, labels=labels).loss)


# --- 4. around the loss ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden_models():
    made = {}
    for name in ("masked_lm", "causal_lm", "token_classification", "multiple_choice", "question_answering"):
        path = case_dir(name)
        made[name] = (MODEL_CLASSES[json.loads((path / "case.json").read_text())["class"]].from_pretrained(path),
                      dict(np.load(path / "inputs.npz")))
    return made


def fresh_classifier():
    return MODEL_CLASSES["XLMRobertaForSequenceClassification"].from_pretrained(case_dir("sequence_classification"))


def classifier_inputs():
    return dict(np.load(case_dir("sequence_classification") / "inputs.npz"))


def test_loss_comes_first_only_when_labels_are_given(golden_models):
    model, inputs = golden_models["masked_lm"]
    plain = model(**inputs)
    labelled = model(**inputs, labels=inputs["input_ids"])
    assert plain.loss is None and plain.keys() == ["logits"] and plain[0] is plain.logits
    assert labelled.keys() == ["loss", "logits"] and labelled[0] is labelled.loss and labelled[1] is labelled.logits
    assert len(labelled.to_tuple()) == len(plain.to_tuple()) + 1
    np.testing.assert_array_equal(labelled.logits, plain.logits)


def test_causal_labels_turn_the_cache_off(golden_models):
    model, inputs = golden_models["causal_lm"]
    assert model(**inputs, use_cache=True).past_key_values is not None
    out = model(**inputs, use_cache=True, labels=inputs["input_ids"])
    assert out.past_key_values is None and out.loss.dtype == np.float32  # HF: use_cache = False with labels


def test_causal_loss_is_float32_for_a_float64_model():
    model = MODEL_CLASSES["XLMRobertaForCausalLM"].from_pretrained(case_dir("causal_lm"), dtype="float64")
    inputs = dict(np.load(case_dir("causal_lm") / "inputs.npz"))
    out = model(**inputs, labels=inputs["input_ids"])
    assert out.logits.dtype == np.float64 and out.loss.dtype == np.float32


def test_problem_type_is_written_into_the_config_as_hf_does():
    model, inputs = fresh_classifier(), classifier_inputs()
    assert model.config.problem_type is None
    model(**inputs)  # no labels: nothing written
    assert model.config.problem_type is None
    model(**inputs, labels=np.array([0, 2, 1], dtype=np.int32))
    assert model.config.problem_type == "single_label_classification"
    # Later multi-label targets are refused: the config decides now (HF: torch refuses them too).
    with pytest.raises(InputError, match=r"problem_type single_label_classification.*got shape \[3, 3\]"):
        model(**inputs, labels=np.full((3, 3), 0.5))
    with pytest.raises(InputError, match="integer class ids"):
        model(**inputs, labels=np.full(3, 0.5))
    other = fresh_classifier()
    other(**inputs, labels=[[1.0, 0.0, 0.5]] * 3)  # nested lists work as arrays do
    assert other.config.problem_type == "multi_label_classification"


def test_an_unknown_problem_type_is_a_config_error():
    with pytest.raises(ConfigError, match="problem_type"):
        XLMRobertaConfig(problem_type="ranking")


@pytest.mark.parametrize("model_name, labels, message", [
    ("masked_lm", np.full((3, 12), 99), r"labels contains 99, outside \[0, 99\)"),
    ("token_classification", np.full((3, 12), -5), r"labels contains -5, outside \[0, 5\)"),
    ("multiple_choice", np.array([0, 3]), r"labels contains 3, outside \[0, 3\)"),
])
def test_a_label_out_of_range_is_named(golden_models, model_name, labels, message):
    model, inputs = golden_models[model_name]
    with pytest.raises(InputError, match=message):
        model(**inputs, labels=labels)


@pytest.mark.parametrize("model_name, labels, message", [
    ("masked_lm", np.zeros((3, 11), dtype=np.int64), r"\[3, 12\] for logits of shape \[3, 12, 99\], got shape \[3, 11\]"),
    ("causal_lm", np.zeros(36, dtype=np.int64), r"\[3, 12\] for logits of shape \[3, 12, 99\], got shape \[36\]"),
    ("multiple_choice", np.zeros((2, 1), dtype=np.int64), r"\[2\] for logits of shape \[2, 3\], got shape \[2, 1\]"),
    ("token_classification", np.zeros((12, 3), dtype=np.int64), r"got shape \[12, 3\]"),
])
def test_labels_of_the_wrong_shape_name_both_shapes(golden_models, model_name, labels, message):
    model, inputs = golden_models[model_name]
    with pytest.raises(InputError, match=message):
        model(**inputs, labels=labels)


def test_sequence_label_shapes_and_dtypes():
    inputs = classifier_inputs()
    with pytest.raises(InputError, match=r"got shape \[3, 2\]"):
        fresh_classifier()(**inputs, labels=np.zeros((3, 2)))  # multi-label needs [3, 3]
    with pytest.raises(InputError, match=r"= \[3\] or \[3, 1\].*got shape \[4\]"):
        fresh_classifier()(**inputs, labels=np.zeros(4, dtype=np.int64))
    # booleans are not integers, for HF either: multi-label, which needs [3, 3] (and then takes them as 0 / 1)
    with pytest.raises(InputError, match=r"problem_type multi_label_classification\) = \[3, 3\].*got shape \[3\]"):
        fresh_classifier()(**inputs, labels=np.zeros(3, dtype=bool))
    hot = np.eye(3, dtype=bool)
    np.testing.assert_array_equal(fresh_classifier()(**inputs, labels=hot).loss,
                                  fresh_classifier()(**inputs, labels=hot.astype(np.float32)).loss)
    model = fresh_classifier()
    model.config.problem_type = "regression"
    with pytest.raises(InputError, match="real numbers"):
        model(**inputs, labels=np.full((3, 3), "a"))
    single = fresh_classifier()
    flat = single(**inputs, labels=np.array([0, 1, 2])).loss
    np.testing.assert_array_equal(single(**inputs, labels=np.array([[0], [1], [2]])).loss, flat)  # HF's view(-1)


def test_question_answering_needs_both_positions(golden_models):
    model, inputs = golden_models["question_answering"]
    assert model(**inputs, start_positions=np.array([1, 2, 3])).loss is None  # HF: no loss, no error
    with pytest.raises(InputError, match="integer token positions"):
        model(**inputs, start_positions=np.array([1.0, 2, 3]), end_positions=np.array([1, 2, 3]))
    with pytest.raises(InputError, match=r"end_positions must be \[batch\] or \[batch, 1\]"):
        model(**inputs, start_positions=np.array([1, 2, 3]), end_positions=np.ones((3, 2), dtype=np.int64))
    both = model(**inputs, start_positions=np.array([1, 2, 3]), end_positions=np.array([[4], [5], [6]]))
    assert both.keys()[0] == "loss" and both.loss.shape == ()


def test_the_bare_encoder_takes_no_labels():
    model = MODEL_CLASSES["XLMRobertaModel"].from_pretrained(case_dir("model_base"))
    with pytest.raises(TypeError):
        model(np.array([[0, 5, 2]]), labels=np.array([[0, 5, 2]]))


@pytest.mark.parametrize("name", ["masked_lm", "causal_lm", "token_classification", "multiple_choice",
                                  "question_answering", "single_label", "multi_label"])
def test_losses_run_on_the_device_standin(name):
    """No label check or loss leaks to NumPy: the stand-in refuses implicit host conversion (tests/test_backend.py)."""
    entry, inputs, arrays = load_golden(name)
    host = MODEL_CLASSES[entry["class"]].from_pretrained(ROOT / "reference_outputs" / entry["model"])
    on_device = type(host)(host.config, {k: device.asarray(v) for k, v in host.params.items()})
    labels = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in arrays.items()
              if not k.startswith("loss_")}
    expected = host(**inputs, **labels).loss
    got = on_device(**{k: device.asarray(v) for k, v in {**inputs, **labels}.items()}).loss
    assert isinstance(got, DeviceArray)
    np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=1e-6)
