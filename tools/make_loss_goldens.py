"""Record the `loss` Hugging Face transformers 4.57.6 computes for every XLM-R head, for tests/test_losses.py.

The models are the golden cases' own (reference_outputs/cases/{masked_lm, causal_lm, sequence_classification,
token_classification, multiple_choice, question_answering}: their config.json, model.safetensors and
inputs.npz), loaded into HF with tools/make_reference_outputs.load, plus one new small random model with
num_labels=1 for regression (every parameter random: make_reference_outputs.randomize_). Labels are drawn
from numpy.random.default_rng(SEED): -100 entries, an all-ignored row for the masked LM, question-answering
positions below 0 and beyond T (so that HF's clamp to [0, T] and its ignore index T both matter). Each case is
run on a freshly loaded model in float32 and float64 (`.to(float64)`, float labels cast likewise), eval mode.

Written (nothing here comes from xlmr_np):
    reference_outputs/losses/<case>.npz         the labels (`labels`, or `start_positions` / `end_positions`;
                                                float labels are float64 holding float32-exact values) and
                                                HF's losses `loss_float32`, `loss_float64`, each in the dtype HF
                                                returns (the causal LM's is float32 in both: ForCausalLMLoss
                                                calls logits.float())
    reference_outputs/losses/regression_model/  config.json + model.safetensors (HF save_pretrained), inputs.npz
    reference_outputs/losses/MANIFEST.json      versions, seed, date, per case the model, class, problem_type
                                                set before the call and the one the config holds after it,
                                                and the sha256 of every other file
    reference_outputs/losses/README.md          the cases, one line each

Usage: python tools/make_loss_goldens.py   (a few seconds; torch on one thread; files are byte-identical on rerun
except MANIFEST.json's date)
"""

import datetime
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from transformers import XLMRobertaConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_reference_outputs import (CLASSES, EXPECTED_VERSIONS, TINY, f32_exact, load, padded_ids,  # noqa: E402
                                    randomize_, sha256, versions)

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "reference_outputs" / "cases"
OUT = ROOT / "reference_outputs" / "losses"
REGRESSION_DIR = OUT / "regression_model"
SEED = 2024
REGRESSION_SEED = 301
REGRESSION_CONFIG = dict(TINY, hidden_size=16, num_attention_heads=2, intermediate_size=24, num_labels=1)


# ----------------------------------------------------------------------------- labels

def lm_labels(rng, inputs, vocab, keep=0.4):
    """Random ids at a random 40% of the real tokens, -100 elsewhere; the last row entirely -100."""
    mask = inputs["attention_mask"].astype(bool)
    labels = rng.integers(0, vocab, mask.shape)
    labels[~mask | (rng.random(mask.shape) > keep)] = -100
    labels[-1] = -100
    return {"labels": labels}


def all_ignored(rng, inputs):
    return {"labels": np.full(inputs["input_ids"].shape, -100, dtype=np.int64)}


def causal_labels(rng, inputs):
    """The input ids themselves (the usual causal-LM labels), padding and a few random tokens set to -100."""
    labels = inputs["input_ids"].copy()
    labels[(inputs["attention_mask"] == 0) | (rng.random(labels.shape) < 0.2)] = -100
    return {"labels": labels}


def single_labels(rng, inputs, classes=3):
    labels = rng.integers(0, classes, len(inputs["input_ids"]))
    labels[1] = -100
    return {"labels": labels}


def multi_labels(rng, inputs, classes=3):
    """Soft targets in [0, 1], with some exact 0s and 1s."""
    labels = f32_exact(rng.random((len(inputs["input_ids"]), classes)))
    labels[0, 0], labels[1, 2] = 0.0, 1.0
    return {"labels": labels}


def regression_targets(shape):
    def make(rng, inputs):
        return {"labels": f32_exact(rng.normal(0.0, 1.5, shape))}
    return make


def token_labels(rng, inputs, classes=5):
    mask = inputs["attention_mask"].astype(bool)
    labels = rng.integers(0, classes, mask.shape)
    labels[~mask | (rng.random(mask.shape) < 0.15)] = -100
    return {"labels": labels}


def choice_labels(rng, inputs, choices=3):
    return {"labels": rng.integers(0, choices, len(inputs["input_ids"]))}


def answer_positions(rng, inputs):
    """start [B] and end [B, 1] (HF squeezes the 2-D one); T = 12: 15 and 40 are clamped to 12 and ignored,
    -3 is clamped to 0 and counts."""
    return {"start_positions": np.array([3, 15, -3], dtype=np.int64),
            "end_positions": np.array([[7], [40], [2]], dtype=np.int64)}


# name -> (model folder, HF class, problem_type set before the call, labels, description)
CASES = {
    "masked_lm": ("cases/masked_lm", "XLMRobertaForMaskedLM", None, lambda r, i: lm_labels(r, i, 99),
                  "CrossEntropyLoss over [B*T, V]; 40% of the real tokens labelled, the last row all -100"),
    "masked_lm_all_ignored": ("cases/masked_lm", "XLMRobertaForMaskedLM", None, all_ignored,
                              "every label -100: torch's mean over nothing, nan"),
    "causal_lm": ("cases/causal_lm", "XLMRobertaForCausalLM", None, causal_labels,
                  "ForCausalLMLoss: labels = input ids (pads and 20% of the tokens -100), shifted by one; "
                  "float32 in both runs (logits.float())"),
    "single_label": ("cases/sequence_classification", "XLMRobertaForSequenceClassification", None, single_labels,
                     "3 labels, int64 labels [B] (one -100): problem_type inferred single_label_classification"),
    "multi_label": ("cases/sequence_classification", "XLMRobertaForSequenceClassification", None, multi_labels,
                    "3 labels, float labels [B, 3] in [0, 1]: problem_type inferred multi_label_classification"),
    "regression_one": ("losses/regression_model", "XLMRobertaForSequenceClassification", None,
                       regression_targets((4,)),
                       "num_labels=1, float labels [B]: problem_type inferred regression, MSE of squeezed logits"),
    "regression_three": ("cases/sequence_classification", "XLMRobertaForSequenceClassification", "regression",
                         regression_targets((3, 3)), "3 labels with config.problem_type='regression': MSE over [B, 3]"),
    "token_classification": ("cases/token_classification", "XLMRobertaForTokenClassification", None, token_labels,
                             "5 labels, labels [B, T] with -100 at the pads and 15% of the tokens"),
    "multiple_choice": ("cases/multiple_choice", "XLMRobertaForMultipleChoice", None, choice_labels,
                        "3 choices, labels [B]"),
    "question_answering": ("cases/question_answering", "XLMRobertaForQuestionAnswering", None, answer_positions,
                           "start_positions [B], end_positions [B, 1]; positions -3, 15 and 40 with T = 12"),
}


# ----------------------------------------------------------------------------- the new regression model

def build_regression_model():
    """A small XLMRobertaForSequenceClassification with num_labels=1, every parameter random, and its inputs."""
    REGRESSION_DIR.mkdir(parents=True, exist_ok=True)
    config = XLMRobertaConfig(**REGRESSION_CONFIG)
    config._attn_implementation = "eager"
    torch.manual_seed(REGRESSION_SEED)
    model = CLASSES["XLMRobertaForSequenceClassification"](config).eval()
    randomize_(model, REGRESSION_SEED)  # raises if any parameter kept HF's init
    model.save_pretrained(REGRESSION_DIR, safe_serialization=True)
    ids, mask = padded_ids(np.random.default_rng(REGRESSION_SEED), (9, 6, 9, 4), 9, config.vocab_size)
    write_npz(REGRESSION_DIR / "inputs.npz", {"input_ids": ids, "attention_mask": mask})


# ----------------------------------------------------------------------------- running HF

def hf_loss(folder, cls_name, problem_type, inputs, labels, dtype):
    """(HF's loss as a 0-d array in the dtype HF returns it, config.problem_type after the call)."""
    model = load(ROOT / "reference_outputs" / folder, cls_name, dtype)
    if problem_type is not None:
        model.config.problem_type = problem_type

    def tensor(a):
        return torch.from_numpy(a).to(dtype if a.dtype.kind == "f" else torch.int64)
    with torch.no_grad():
        out = model(**{k: tensor(v) for k, v in inputs.items()}, **{k: tensor(v) for k, v in labels.items()},
                    return_dict=True)
    return out.loss.detach().numpy().copy(), model.config.problem_type


def write_npz(path, arrays):
    """make_reference_outputs.write_npz (np.savez_compressed layout, fixed zip timestamps), but 0-d arrays stay
    0-d (np.ascontiguousarray there makes them [1])."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def read_npz(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def main():
    found = {"torch": torch.__version__.split("+")[0], "transformers": versions()["transformers"]}
    if found != EXPECTED_VERSIONS:
        raise SystemExit(f"expected {EXPECTED_VERSIONS}, found {found}")
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    build_regression_model()
    rng = np.random.default_rng(SEED)  # one stream, drawn in CASES order
    cases = {}
    for name, (folder, cls_name, problem_type, make_labels, description) in CASES.items():
        inputs = read_npz(ROOT / "reference_outputs" / folder / "inputs.npz")
        labels = make_labels(rng, inputs)
        arrays, after = dict(labels), {}
        for dtype in (torch.float32, torch.float64):
            key = str(dtype).replace("torch.", "")
            arrays[f"loss_{key}"], after[key] = hf_loss(folder, cls_name, problem_type, inputs, labels, dtype)
        write_npz(OUT / f"{name}.npz", arrays)
        cases[name] = {"model": folder, "class": cls_name, "problem_type": problem_type,
                       "problem_type_after": after["float32"], "description": description,
                       "loss": {k: float(arrays[f"loss_{k}"]) for k in after},
                       "loss_dtype": {k: arrays[f"loss_{k}"].dtype.name for k in after}}
        print(f"{name:22s} {cases[name]['loss']}")
    write_readme()
    files = {p.relative_to(OUT).as_posix(): sha256(p) for p in sorted(OUT.rglob("*"))
             if p.is_file() and p.name != "MANIFEST.json"}
    manifest = {
        "generator": "tools/make_loss_goldens.py",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions(),
        "seed": SEED,
        "regression_model": {"seed": REGRESSION_SEED, "config": REGRESSION_CONFIG},
        "torch_num_threads": torch.get_num_threads(),
        "cases": cases,
        "sha256": files,
    }
    (OUT / "MANIFEST.json").write_text(json.dumps(_no_nan(manifest), indent=2) + "\n")
    print(f"{len(cases)} cases; reference_outputs/losses holds "
          f"{sum(p.stat().st_size for p in OUT.rglob('*') if p.is_file()) / 1024:.0f} KiB")


def write_readme():
    lines = ["# reference_outputs/losses: Hugging Face's `loss` for every head", "",
             "Written by `python tools/make_loss_goldens.py` with transformers 4.57.6 and torch 2.13 (how, and the",
             "file layout: that script's docstring; versions, seed and sha256: MANIFEST.json). Compared by",
             "tests/test_losses.py. Nothing here comes from xlmr_np.", "",
             "| case | model | HF class | what it covers |", "|---|---|---|---|"]
    for name, (folder, cls_name, problem_type, _, description) in CASES.items():
        lines.append(f"| `{name}` | `{folder}` | {cls_name} | {description} |")
    (OUT / "README.md").write_text("\n".join(lines) + "\n")


def _no_nan(value):
    """nan -> the string "nan", so MANIFEST.json stays strict JSON."""
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    main()
