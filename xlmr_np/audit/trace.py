"""Where do two implementations first diverge? Per-layer traces and a comparison report.

`trace(model, input_ids, ...)` runs a model and returns its activations in order: "embeddings",
"layers.0" ... "layers.{L-1}", then the head's outputs ("logits", "pooler_output", ...). A port to C, Rust,
ONNX or a quantised model dumps the same names to an .npz file (Hugging Face's `hidden_states` tuple is
accepted too: "hidden_states.0" is the embeddings, "hidden_states.{i+1}" layer i), and `compare` reports,
for each activation in order, max |diff|, max relative diff, the worst index, and the first one outside the
tolerance — which points at the first layer (or head) that computes something different. The `trace`
command (xlmr_np/cli/audit.py) runs `trace_checkpoint` and prints `format_report`.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np

from ..backend import to_numpy
from ..modeling import MODEL_CLASSES


def trace(model, input_ids=None, **kwargs) -> dict:
    """Activations of one forward pass, in order, as NumPy arrays (float64 if the model runs in float64)."""
    steps: dict = {}
    out = model(input_ids, trace=steps, **kwargs)
    result = {name: to_numpy(value) for name, value in steps.items()}
    for key in out.keys():
        value = out[key]
        if not isinstance(value, tuple):
            result[key] = to_numpy(value)
    return result


def canonical_name(name: str) -> str:
    """HF's hidden_states.k -> our embeddings / layers.{k-1}."""
    if name.startswith("hidden_states."):
        index = int(name.split(".")[1])
        return "embeddings" if index == 0 else f"layers.{index - 1}"
    return name


@dataclass
class Comparison:
    name: str
    shape: tuple
    max_abs: float
    max_rel: float
    worst_index: tuple
    ours: float
    theirs: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs <= self.tolerance


def compare(ours: dict, theirs: dict, atol: float = 1e-5, rtol: float = 2e-6, where=None):
    """Compare two traces name by name (in `ours`' order). Tolerance per array: max(atol, rtol * max|theirs|).

    `where` is an optional [B, T] mask: only those token positions are compared (e.g. the attention mask, since
    pad rows carry numbers that implementations may legitimately differ on).
    """
    theirs = {canonical_name(k): np.asarray(v) for k, v in theirs.items()}
    rows = []
    for name, a in ours.items():
        name = canonical_name(name)
        if name not in theirs:
            continue
        a, b = np.asarray(a, dtype=np.float64), np.asarray(theirs[name], dtype=np.float64)
        if a.shape != b.shape:
            rows.append(Comparison(name, a.shape, float("inf"), float("inf"), (), np.nan, np.nan, atol))
            continue
        diff = np.abs(a - b)
        if where is not None and a.ndim >= 2 and a.shape[:2] == np.shape(where):
            keep = np.asarray(where, dtype=bool).reshape(np.shape(where) + (1,) * (a.ndim - 2))
            diff = np.where(keep, diff, 0.0)
        worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
        rel = diff / np.maximum(np.abs(b), 1e-30)
        tolerance = max(atol, rtol * float(np.max(np.abs(b)))) if b.size else atol
        rows.append(Comparison(name, a.shape, float(diff.max()) if diff.size else 0.0,
                               float(rel.max()) if rel.size else 0.0, tuple(int(i) for i in worst),
                               float(a[worst]) if diff.size else np.nan, float(b[worst]) if diff.size else np.nan,
                               tolerance))
    return rows


def first_divergence(rows):
    """The first comparison outside its tolerance, or None."""
    return next((row for row in rows if not row.ok), None)


def format_report(rows) -> str:
    lines = [f"{'activation':20} {'shape':18} {'max |diff|':>11} {'max rel':>9} {'worst index':>16} "
             f"{'ours':>11} {'theirs':>11}  status"]
    for r in rows:
        status = "OK" if r.ok else "DIFF"
        lines.append(f"{r.name:20} {str(list(r.shape)):18} {r.max_abs:11.2e} {r.max_rel:9.1e} "
                     f"{str(list(r.worst_index)):>16} {r.ours:11.4g} {r.theirs:11.4g}  {status}")
    first = first_divergence(rows)
    lines.append("" if first is None else f"\nfirst divergence: {first.name} (max |diff| {first.max_abs:.2e} > "
                                          f"{first.tolerance:.1e}); everything before it agrees")
    if first is None:
        lines.append(f"\nall {len(rows)} activations agree within tolerance")
    return "\n".join(lines)


def model_class(name: str):
    """The xlmr_np class called `name` (HF's class names: XLMRobertaModel, XLMRobertaForMaskedLM, ...)."""
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown class {name!r}; choose from {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[name]


def trace_checkpoint(cls, model_dir, ids, dtype="float32"):
    """Load `cls` from `model_dir` and trace it on `ids` ([B, T] token ids, padded with the pad id).

    Returns (trace, attention mask): the mask is 1 wherever ids is not the config's pad_token_id; it is the
    `where` that keeps pad rows out of `compare`.
    """
    ids = token_ids(ids)
    model = cls.from_pretrained(model_dir, dtype=dtype)
    mask = (ids != model.config.pad_token_id).astype(np.int64)
    return trace(model, ids, attention_mask=mask), mask


def token_ids(ids):
    """`ids` (sequences of token ids, all of one length) as an int64 array [B, T]; a ValueError says what is wrong."""
    rows = [ids] if isinstance(ids, np.ndarray) and ids.ndim == 1 else list(ids)
    if not rows:
        raise ValueError("ids: no sequence given; pass token ids as [[0, 581, 2], ...]")
    rows = [list(row) if isinstance(row, (list, tuple, np.ndarray)) else row for row in rows]
    if not all(isinstance(row, list) for row in rows):
        rows = [rows]  # one flat sequence
    for n, row in enumerate(rows, 1):
        if not row:
            raise ValueError(f"ids: sequence {n} is empty")
        bad = next((t for t in row if isinstance(t, bool) or not isinstance(t, (int, np.integer))), None)
        if bad is not None:
            raise ValueError(f"ids: sequence {n} holds {bad!r}, which is not a token id (an integer)")
    lengths = [len(row) for row in rows]
    if len(set(lengths)) > 1:
        n = next(i for i, length in enumerate(lengths, 1) if length != lengths[0])
        raise ValueError(f"ids: sequence {n} has {lengths[n - 1]} tokens but sequence 1 has {lengths[0]}: all must "
                         f"have one length; pad the shorter ones with the pad id (1 for XLM-R)")
    return np.array(rows, dtype=np.int64)


def read_trace(path) -> dict:
    """An .npz of activations (another implementation's trace) as {name: array}; a ValueError names the file and
    what is wrong with it (not an .npz archive, or an array of Python objects rather than numbers)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        kind = "an .npy file (one array)" if path.endswith(".npy") else "not an .npz archive"
        raise ValueError(f"{path}: {kind}; the trace to compare with is an .npz with one array per activation name "
                         f"(numpy.savez(path, embeddings=..., **{{'layers.0': ...}}))")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {}
            for name in data.files:
                try:
                    arrays[name] = data[name]
                except ValueError:  # numpy's advice is to load it unsafely; the fix is to store numbers
                    raise ValueError(f"{path}: array {name!r} holds Python objects (pickled), not numbers; save "
                                     f"numeric arrays (e.g. float32)") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: cannot read it as an .npz archive ({err})") from None
    if not arrays:
        raise ValueError(f"{path}: the archive holds no arrays")
    return arrays


def write_trace(path, activations: dict):
    """Save a trace as an .npz, one array per activation name (what `read_trace` and other ports read)."""
    np.savez(path, **activations)
