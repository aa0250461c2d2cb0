"""`python -m xlmr_np verify`: run every class on stored Hugging Face goldens and print how far we are.

A golden case is a directory with config.json + weights, `case.json` (class, mode, call flags), `inputs.npz`
and `outputs_float32.npz` / `outputs_float64.npz` written by tools/make_reference_outputs.py with
transformers 4.57.6 (format described in reference_outputs/README.md). Modes:
- "forward":  one call; every stored output is compared (tuples are stored as "hidden_states.0", ...).
- "cache":    the full sequence, then the first `split` tokens with use_cache=True and the rest fed with the
              returned past_key_values (as one block, "step2.logits", and token by token, "steps.logits").
- "generate": greedy continuation compared token for token ("sequences").
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backend import to_numpy

# Tolerances (absolute), one place, with their reasons; tests/conftest.py imports these.
TOLERANCE = {
    # float32 against HF float32: both round differently in every sum (BLAS blocking, LayerNorm, softmax);
    # on the small random checkpoints the measured gap is ~1e-6, so 1e-5 leaves a 10x margin.
    "float32": 1e-5,
    # float64 against HF float64: the only differences are summation order, ~1e-15 relative per op.
    "float64": 1e-10,
}
# The 768-wide, 512-token case sums 3072 products per output and its values reach |x| ~ 10; float32
# accumulation error grows ~ sqrt(n) eps |x|, measured at ~2e-5, so it gets a wider float32 bar.
WIDE_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


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


def _compare(case, cls, expected: dict, actual: dict, tolerance, rows):
    for name, reference in expected.items():
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
    from .modeling import MODEL_CLASSES

    case_dir = Path(case_dir)
    case, inputs = load_case(case_dir)
    name, cls_name = case_dir.name, case["class"]
    golden = case_dir / f"outputs_{dtype}.npz"
    if not golden.exists():
        return []
    with np.load(golden) as data:
        expected = {k: data[k] for k in data.files}
    tolerance = (WIDE_TOLERANCE if case.get("wide") or "real_width" in name else TOLERANCE)[dtype]
    model = MODEL_CLASSES[cls_name].from_pretrained(case_dir, dtype=dtype, device=device)
    call = dict(case.get("call", {}))
    rows: list = []
    mode = case.get("mode", "forward")
    if mode == "forward":
        out = model(**inputs, **call)
        actual = {}
        for key in out.keys():
            _flatten(key, out[key], actual)
        _compare(name, cls_name, {k: v for k, v in expected.items() if k != "past_key_values"}, actual,
                 tolerance, rows)
    elif mode == "cache":
        actual = _run_cache(model, inputs, call, int(case["split"]), expected)
        _compare(name, cls_name, {k: v for k, v in expected.items() if k in actual or k.endswith("logits")},
                 actual, tolerance, rows)
    elif mode == "generate":
        prompt = inputs["input_ids"]
        sequences = model.generate(prompt, max_new_tokens=int(case["max_new_tokens"]),
                                   eos_token_id=case.get("eos_token_id"))
        actual = {"sequences": to_numpy(sequences)}
        _compare(name, cls_name, {"sequences": expected["sequences"]}, actual, 0.0, rows)
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


def default_root() -> Path:
    """reference_outputs/cases next to the package (a source checkout or an editable install)."""
    here = Path(__file__).resolve().parent.parent / "reference_outputs" / "cases"
    return Path(os.environ.get("XLMR_NP_REFERENCE", here))


def format_table(rows) -> str:
    header = f"{'case':28} {'class':38} {'output':22} {'max |diff|':>11} {'tolerance':>9}  ok"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.case:28} {r.cls:38} {r.output:22} {r.max_diff:11.2e} {r.tolerance:9.0e}  "
                     f"{'ok' if r.ok else 'FAIL'}")
    return "\n".join(lines)


def summarise(rows, dtype):
    """Collapse many outputs of a case into its worst one, for a readable table."""
    worst = {}
    for r in rows:
        key = (r.case, r.output.split(".")[0])
        if key not in worst or r.max_diff > worst[key].max_diff:
            worst[key] = r
    return list(worst.values())
