"""The golden cases behind `python -m xlmr_np verify`: load them, run them, compare under one tolerance policy.

Reference behaviour: `forward` (and `generate`) of the Hugging Face class each case names, XLMRobertaModel ...
XLMRobertaForQuestionAnswering. `verify_cases` gives the rows that the `verify` command (xlmr_np/cli/audit.py)
prints with `format_table` and `tolerance_summary`.

A golden case is a directory with config.json + weights, `case.json` (class, mode, call flags), `inputs.npz`
and `outputs_float32.npz` / `outputs_float64.npz` written by tools/make_reference_outputs.py with
transformers 4.57.6 (format described in reference_outputs/README.md). For your own checkpoint,
tools/make_user_golden.py writes such a case whose case.json points at the checkpoint ("model"). Modes:
- "forward":  one call; every stored output is compared (tuples are stored as "hidden_states.0", ...).
- "cache":    the full sequence, then the first `split` tokens with use_cache=True and the rest fed with the
              returned past_key_values (as one block, "step2.logits", and token by token, "steps.logits").
- "generate": greedy continuation compared token for token ("sequences").
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..modeling import MODEL_CLASSES

# Tolerances, one place, with their reasons (tests/conftest.py imports these). An output passes when
#     max |ours - HF| <= max(ABSOLUTE[dtype], SCALED[dtype] * max |HF|).
# float32: both sides round every sum (BLAS blocking, LayerNorm, softmax) at eps = 1.2e-7 relative, and the
#   error grows with the size of the numbers: HF's own float32 logits differ from its float64 logits by up to
#   9.6e-6 on logits of magnitude 11.7 (case act_relu2), i.e. 8e-7 of the scale. 1e-5 absolute covers
#   outputs of magnitude ~1 (hidden states, probabilities); 2e-6 x scale covers larger ones with a 2x margin.
# float64: the same computation at eps = 2.2e-16; measured gaps are ~2e-14, so 1e-10 is a wide bar that
#   still catches any real difference (a missing term moves outputs by >1e-3 on these random weights).
ABSOLUTE = {"float32": 1e-5, "float64": 1e-10}
SCALED = {"float32": 2e-6, "float64": 1e-12}


def tolerance_for(reference, dtype) -> float:
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    return max(ABSOLUTE[dtype], SCALED[dtype] * scale)


@dataclass
class Row:
    case: str
    cls: str
    output: str
    max_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(self.max_diff <= self.tolerance)


def _flatten(name, value, into):
    """Output field -> flat {"hidden_states.0": array, ...} like the golden files."""
    if value is None:
        return
    if isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _flatten(f"{name}.{i}", item, into)
    else:
        into[name] = to_numpy(value)


def _compare(case, cls, expected: dict, actual: dict, dtype, rows):
    for name, reference in expected.items():
        tolerance = tolerance_for(reference, dtype) if dtype else 0.0
        if name not in actual:
            rows.append(Row(case, cls, name + " (missing)", float("inf"), tolerance))
            continue
        ours = np.asarray(actual[name])
        if ours.shape != reference.shape:
            rows.append(Row(case, cls, f"{name} shape {list(ours.shape)} != {list(reference.shape)}",
                            float("inf"), tolerance))
            continue
        diff = float(np.max(np.abs(ours.astype(np.float64) - reference.astype(np.float64)))) if ours.size else 0.0
        rows.append(Row(case, cls, name, diff, tolerance))


def load_case(case_dir):
    case_dir = Path(case_dir)
    with open(case_dir / "case.json", encoding="utf-8") as handle:
        case = json.load(handle)
    with np.load(case_dir / "inputs.npz") as data:
        inputs = {k: data[k] for k in data.files}
    return case, inputs


def run_case(case_dir, dtype="float32", device="cpu"):
    """Run one golden case; returns a list of Rows (one per compared output)."""
    case_dir = Path(case_dir)
    case, inputs = load_case(case_dir)
    name, cls_name = case_dir.name, case["class"]
    golden = case_dir / f"outputs_{dtype}.npz"
    if not golden.exists():
        return []
    with np.load(golden) as data:
        expected = {k: data[k] for k in data.files}
    model_dir = case_dir / case["model"] if "model" in case else case_dir  # tools/make_user_golden.py points at it
    model = MODEL_CLASSES[cls_name].from_pretrained(model_dir, dtype=dtype, device=device)
    call = dict(case.get("call", {}))
    rows: list = []
    mode = case.get("mode", "forward")
    if mode == "forward":
        out = model(**inputs, **call)
        actual = {}
        for key in out.keys():
            _flatten(key, out[key], actual)
        _compare(name, cls_name, expected, actual, dtype, rows)
    elif mode == "cache":
        actual = _run_cache(model, inputs, call, int(case["split"]), expected)
        _compare(name, cls_name, {k: v for k, v in expected.items() if k in actual or k.endswith("logits")},
                 actual, dtype, rows)
    elif mode == "generate":
        prompt = inputs["input_ids"]
        sequences = model.generate(prompt, max_new_tokens=int(case["max_new_tokens"]),
                                   eos_token_id=case.get("eos_token_id"))
        actual = {"sequences": to_numpy(sequences)}
        _compare(name, cls_name, {"sequences": expected["sequences"]}, actual, None, rows)  # token ids: exact
    else:
        raise ValueError(f"{case_dir}: unknown mode {mode!r}")
    return rows


def _run_cache(model, inputs, call, split, expected):
    """Full pass, then prefix + cached continuation (one block, and token by token)."""
    extra = {k: v for k, v in inputs.items() if k.startswith("encoder_")}
    ids, mask = inputs["input_ids"], inputs.get("attention_mask")
    if mask is None:
        mask = np.ones_like(ids)
    actual = {"logits": to_numpy(model(ids, attention_mask=mask, **extra, **call).logits)}
    first = model(ids[:, :split], attention_mask=mask[:, :split], use_cache=True, **extra)
    actual["step1.logits"] = to_numpy(first.logits)
    second = model(ids[:, split:], attention_mask=mask, past_key_values=first.past_key_values, use_cache=True,
                   **extra)
    actual["step2.logits"] = to_numpy(second.logits)
    if "steps.logits" in expected:
        past, steps = first.past_key_values, []
        for t in range(split, ids.shape[1]):
            out = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=past, use_cache=True,
                        **extra)
            past = out.past_key_values
            steps.append(to_numpy(out.logits)[:, 0])
        actual["steps.logits"] = np.stack(steps, axis=1)
    return actual


def find_cases(root):
    root = Path(root)
    if (root / "case.json").exists():
        return [root]
    return sorted(p.parent for p in root.glob("**/case.json"))


# The case a regular install leaves out (setup.cfg data_files): xlm-roberta-base's width, 20 MB of weights.
REPOSITORY_ONLY = ("real_width",)


def default_root() -> Path:
    """$XLMR_NP_REFERENCE, else reference_outputs/cases beside the package (a source checkout or an editable
    install), else <prefix>/share/xlmr_np/reference_outputs/cases, where a regular `pip install` puts every
    case but REPOSITORY_ONLY."""
    if os.environ.get("XLMR_NP_REFERENCE"):
        return Path(os.environ["XLMR_NP_REFERENCE"])
    checkout = Path(__file__).resolve().parents[2] / "reference_outputs" / "cases"
    installed = Path(sys.prefix) / "share" / "xlmr_np" / "reference_outputs" / "cases"
    return checkout if checkout.is_dir() or not installed.is_dir() else installed


def describe_root(root, cases) -> str:
    """Which set of goldens a run used, for the foot of verify's table."""
    missing = [name for name in REPOSITORY_ONLY if name not in {c.name for c in cases}]
    if Path(root) == default_root() and missing:
        return (f"the {len(cases)} installed golden cases in {root} ({', '.join(missing)} is in the repository "
                f"only: run from a checkout for all)")
    return f"{len(cases)} golden cases in {root}"


def format_table(rows) -> str:
    header = f"{'case':28} {'class':38} {'output':22} {'max |diff|':>11} {'tolerance':>9}  ok"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.case:28} {r.cls:38} {r.output:22} {r.max_diff:11.2e} {r.tolerance:9.1e}  "
                     f"{'ok' if r.ok else 'FAIL'}")
    return "\n".join(lines)


def summarise(rows):
    """Collapse the layers of a tuple output (hidden_states.0, .1, ...) into its worst one."""
    worst = {}
    for r in rows:
        key = (r.case, r.output.rsplit(".", 1)[0] if r.output.rsplit(".", 1)[-1].isdigit() else r.output)
        if key not in worst or r.max_diff > worst[key].max_diff:
            worst[key] = r
    return list(worst.values())


# What a golden case may warn about by design (a regular expression matched against the start of the message).
EXPECTED_WARNING = r"If you want to use `XLMRobertaForCausalLM` as a standalone"


def verify_cases(cases, dtypes, device="cpu", all_outputs=False) -> list:
    """Every case in every dtype, as the rows `verify` prints: one per output field (its worst layer), or one per
    stored array with `all_outputs`, named "output [32]" / "output [64]". A case that cannot even run is one
    failing row with its reason."""
    rows = []
    for dtype in dtypes:
        for case_dir in cases:
            try:
                with warnings.catch_warnings():
                    # the case causal_lm_not_decoder builds that model on purpose: its warning is expected
                    warnings.filterwarnings("ignore", message=EXPECTED_WARNING)
                    case_rows = run_case(case_dir, dtype, device)
            except Exception as err:  # a case that cannot even run is a failure with its reason
                case_rows = [Row(case_dir.name, "?", f"error: {type(err).__name__}: {err}"[:60], float("inf"), 0.0)]
            for r in (case_rows if all_outputs else summarise(case_rows)):
                if not all_outputs and r.output.rsplit(".", 1)[-1].isdigit():
                    r.output = r.output.rsplit(".", 1)[0] + ".*"
                r.output = f"{r.output} [{dtype[5:]}]"
                rows.append(r)
    return rows


def tolerance_summary() -> str:
    """The policy in one line, for the foot of the table."""
    return (f"tolerance = max(absolute, scaled x max|HF|): "
            f"float32 {ABSOLUTE['float32']:.0e} / {SCALED['float32']:.0e}, "
            f"float64 {ABSOLUTE['float64']:.0e} / {SCALED['float64']:.0e}; reasons in xlmr_np/audit/goldens.py")
