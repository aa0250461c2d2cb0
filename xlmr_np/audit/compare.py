"""Comparing two traces point by point: the semantics, the statistics and the tolerance presets.

    report = compare(ours, theirs, tolerance="float32", where=attention_mask)
    report.exit_code        # 0 every compared point agrees, 1 a divergence (or NaN/Inf), 2 a usage problem
    report.first_divergence # the earliest failing point in forward order (ours' order), or None

Semantics (each one closes a way a broken port used to pass):
- `ours` is the reference. The allowed error of a point is max(atol, rtol * max |ours|), the maximum taken over
  the compared positions only: it does not grow with the implementation under test, nor with pad garbage.
- Positions where `where` (the [B, T] attention mask; [B, C, T] for multiple choice) is 0 are not compared:
  their numbers never reach a real token's output, and a port may leave them uninitialised. Which axes of a
  point index tokens is points.token_axes (scores: queries and keys; probabilities: queries only).
- NaN or Inf at a compared position, on either side, fails the point ("nonfinite").
- Usage problems give exit code 2 whatever else happened: no name in common, expected names missing (listed),
  shapes that differ (both printed). Their names that we do not have are listed as "not compared".

Statistics per point (over the compared positions): max |d|, max |d| / max |ours| (the error relative to the
reference's scale), |d| in units in the last place of the reference value in the compared dtype (p50, p99,
max; the spacing is np.spacing(|ours|) in that dtype, |ours| floored at the dtype's eps so that an exact zero
does not make a difference infinitely many ulps; the compared dtype is the narrower of the two arrays' float
dtypes, so a float16 dump is measured in float16 ulps), NMSE = sum d^2 / sum ours^2, the count and share of
elements over the tolerance, and the worst element's index with its (batch, token[, head]) position. The text
and JSON forms of a report are in report.py.
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field

import numpy as np

from .goldens import ABSOLUTE, SCALED
from .points import canonical_name, token_axes


@dataclass(frozen=True)
class Tolerance:
    """A point passes when max |ours - theirs| <= max(atol, rtol * max |ours|) over its compared positions."""

    name: str
    atol: float
    rtol: float
    reason: str

    def allowed(self, scale: float) -> float:
        return max(self.atol, self.rtol * scale)


# The presets, one place, with their reasons. The numbers come from tools/measure_tolerances.py (transformers
# 4.57.6, torch 2.13.0 CPU; random models with every parameter drawn, 2-4 layers, batch 3 with padding and
# token types), which prints, per dtype, the largest error of HF in that dtype against HF in float64 at any
# trace point, as max |d| / max |reference|. float32 and float64 are the project's golden policy
# (xlmr_np/audit/goldens.py, ABSOLUTE and SCALED, where their reasons are written out).
TOLERANCES = {
    "float64": Tolerance("float64", ABSOLUTE["float64"], SCALED["float64"],
                         "float64 against the float64 oracle: both round at eps 2.2e-16; xlmr_np float64 differs "
                         "from HF float64 by at most 2.5e-15 of a point's scale (measured), so 1e-12 of the scale "
                         "(1e-10 absolute) catches any real difference and any float32-accurate step (~1e-7)"),
    "float32": Tolerance("float32", ABSOLUTE["float32"], SCALED["float32"],
                         "float32 rounding (eps 1.2e-7) in another summation order: HF float32 differs from HF "
                         "float64 by at most 1.1e-6 of a point's scale (measured, median 3.7e-7): 0.25 of what this "
                         "allows (4x margin); the project's golden policy (audit/goldens.py)"),
    "float16": Tolerance("float16", 1e-2, 1e-2,
                         "float16 (eps 9.8e-4) throughout: HF in float16 differs from HF float64 by at most "
                         "3.8e-3 of a point's scale (measured, median 1.1e-3); 1e-2 leaves a 2.6x margin"),
    "bfloat16": Tolerance("bfloat16", 6e-2, 6e-2,
                          "bfloat16 (eps 7.8e-3) throughout: HF in bfloat16 differs from HF float64 by at most "
                          "2.2e-2 of a point's scale (measured, median 8.7e-3); 6e-2 leaves a 2.7x margin"),
    "int8": Tolerance("int8", 2e-1, 2e-1,
                      "a coarse screen, not a proof: 20% of a point's scale. torch's dynamic int8 quantisation "
                      "of every Linear differs from HF float64 by at most 9.6e-2 of the scale (measured, median "
                      "3.3e-2); static activation scales lose more; judge an int8 port on task metrics too"),
}


def resolve_tolerance(tolerance) -> Tolerance:
    """A preset name, a Tolerance, or an (atol, rtol) pair -> Tolerance; a ValueError names the choices."""
    if isinstance(tolerance, Tolerance):
        return tolerance
    if isinstance(tolerance, str):
        if tolerance not in TOLERANCES:
            raise ValueError(f"unknown tolerance preset {tolerance!r}; choose from {', '.join(TOLERANCES)} "
                             f"or give (atol, rtol)")
        return TOLERANCES[tolerance]
    try:
        atol, rtol = (float(value) for value in tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be a preset name ({', '.join(TOLERANCES)}) or (atol, rtol), "
                         f"got {tolerance!r}") from None
    if not (atol >= 0 and rtol >= 0 and np.isfinite(atol) and np.isfinite(rtol)):
        raise ValueError(f"atol and rtol must be finite and >= 0, got {atol}, {rtol}")
    return Tolerance("explicit", atol, rtol, "given explicitly (--atol/--rtol)")


@dataclass
class Point:
    """One compared trace point. status: "ok", "diff" (over tolerance), "nonfinite" (NaN/Inf), "shape", "dtype"
    (theirs is not real numbers: complex, text, dates, records)."""

    name: str
    their_name: str
    shape: tuple
    their_shape: tuple
    dtype: str
    status: str
    tolerance: float = float("nan")
    compared: int = 0
    scale: float = float("nan")  # max |ours| over the compared positions
    max_abs: float = float("nan")
    rel_to_scale: float = float("nan")
    ulp_p50: float = float("nan")
    ulp_p99: float = float("nan")
    ulp_max: float = float("nan")
    nmse: float = float("nan")
    over: int = 0
    nonfinite: int = 0
    worst_index: tuple = ()
    worst_position: dict = field(default_factory=dict)
    ours_at_worst: float = float("nan")
    theirs_at_worst: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def over_share(self) -> float:
        return self.over / self.compared if self.compared else 0.0


@dataclass
class Report:
    points: list  # Point, in ours' (forward) order
    missing: list  # expected names of ours that theirs lacks, in forward order
    not_compared: list  # (their name, why) for names of theirs that were not compared
    tolerance: Tolerance
    expect: str = "all"

    @property
    def shape_errors(self) -> list:
        return [p for p in self.points if p.status == "shape"]

    @property
    def first_divergence(self):
        return next((p for p in self.points if p.status in ("diff", "nonfinite")), None)

    @property
    def usage_problems(self) -> list:
        """Why the comparison cannot be trusted as a whole (exit code 2), as sentences."""
        problems = []
        if not self.points:
            problems.append("no name in common with ours: nothing was compared (see the naming table)")
        if self.missing:
            shown = ", ".join(self.missing[:12]) + (f", ... ({len(self.missing)} in all)"
                                                    if len(self.missing) > 12 else "")
            problems.append(f"{len(self.missing)} expected name(s) missing: {shown}")
        empty = [p.name for p in self.points if p.status not in ("shape", "dtype") and p.compared == 0]
        if empty:
            problems.append(f"no position compared at {', '.join(empty[:6])}{' ...' if len(empty) > 6 else ''} "
                            f"(the mask leaves none, or the array is empty)")
        for p in self.points:
            if p.status == "dtype":
                problems.append(f"{p.name}: theirs holds {p.dtype} values, not real numbers; dump floats "
                                f"(float32 or float64)" + (f" (as {p.their_name!r})" if p.their_name != p.name else ""))
        for p in self.shape_errors:
            problems.append(f"{p.name}: shape differs, ours {list(p.shape)}, theirs {list(p.their_shape)}"
                            + (" (same element count: another layout? see the naming table)"
                               if np.prod(p.shape) == np.prod(p.their_shape) else ""))
        return problems

    @property
    def exit_code(self) -> int:
        if self.usage_problems:
            return 2
        return 1 if self.first_divergence is not None else 0


FIELD_NAMES = ("last_hidden_state", "pooler_output", "logits", "start_logits", "end_logits")
OUTPUT_PATTERNS = ("embeddings", "layers.*[0-9]", "layers.*.attention.probabilities",
                   "layers.*.crossattention.probabilities") + FIELD_NAMES


def expected_names(ours, expect) -> list:
    """The names of ours that theirs must have: "all" (every point), "outputs" (what HF's outputs hold:
    hidden states, attentions and the output fields), "fields" (the output fields only: last_hidden_state,
    pooler_output, logits, ...; what a fuzzed program writes), or glob patterns ("embeddings,layers.*")."""
    names = list(ours)
    if expect in (None, "all"):
        return names
    patterns = {"outputs": OUTPUT_PATTERNS, "fields": FIELD_NAMES}.get(expect) if isinstance(expect, str) else None
    if patterns is None:
        patterns = [p.strip() for p in (expect.split(",") if isinstance(expect, str) else expect) if p.strip()]
        unmatched = [p for p in patterns if not fnmatch.filter(names, p)]
        if unmatched:  # a typo ("layer.*") would require nothing
            raise ValueError(f"--expect: {', '.join(map(repr, unmatched))} matches none of our points; use all, "
                             f"outputs, fields or globs over the names of `trace --help` (e.g. \"layers.*.ffn.*\")")
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def compare(ours: dict, theirs: dict, tolerance="float32", where=None, expect="all") -> Report:
    """Compare their trace with ours (the reference), point by point in ours' order; see the module docstring.

    tolerance: a preset name (TOLERANCES), a Tolerance or (atol, rtol). where: the attention mask [B, T] (or
    [B, C, T]), None to compare every position. expect: which of our names theirs must have (expected_names).
    """
    tolerance = resolve_tolerance(tolerance)
    by_name, not_compared = {}, []
    for their_name, value in theirs.items():
        name = canonical_name(their_name)
        if name not in ours:
            close = difflib.get_close_matches(name, list(ours), n=1)
            not_compared.append((their_name, "not a point of ours" + (f" (did you mean {close[0]!r}?)"
                                                                       if close else "")))
        else:  # two of their names for one point (layers.0 and hidden_states.1): each is compared
            by_name.setdefault(name, []).append((their_name, value))
    if where is not None:
        where = np.asarray(where).astype(bool)
        where = where.reshape(-1, where.shape[-1]) if where.ndim == 3 else where
    points = [compare_point(name, ours[name], value, their_name, tolerance, where)
              for name in ours for their_name, value in by_name.get(name, ())]
    missing = [name for name in expected_names(ours, expect) if name not in by_name]
    return Report(points, missing, not_compared, tolerance, expect if isinstance(expect, str) else ",".join(expect))


def _keep(name, shape, where):
    """A boolean array broadcastable to `shape`: True where the position is compared."""
    if where is None or where.ndim != 2 or not shape or shape[0] != where.shape[0]:
        return np.ones((1,) * len(shape), dtype=bool)
    keep = np.ones((1,) * len(shape), dtype=bool)
    for axis in token_axes(name, len(shape)):
        if axis < len(shape) and shape[axis] == where.shape[1]:
            layout = [1] * len(shape)
            layout[0], layout[axis] = where.shape
            keep = keep & where.reshape(layout)
    return keep


def _position(name, index, ndim) -> dict:
    if not index:
        return {}
    position = {"batch": int(index[0])}
    axes = token_axes(name, ndim)
    if axes:
        position["token"] = int(index[axes[0]])
        if len(axes) == 2:
            position["key"] = int(index[axes[1]])
        if axes[0] == 2:  # [B, H, T, ...]
            position["head"] = int(index[1])
    return position


def compare_point(name, ours, theirs, their_name, tolerance: Tolerance, where=None) -> Point:
    """The statistics of one point (see the module docstring); `ours` is the reference."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if theirs.dtype.kind not in "fiub":  # complex, text, dates, records: astype(float64) would drop or invent values
        return Point(name, their_name, tuple(ours.shape), tuple(theirs.shape), str(theirs.dtype), "dtype")
    floats = [x.dtype for x in (ours, theirs) if x.dtype.kind == "f"] or [np.dtype(np.float64)]
    dtype = max(floats, key=lambda t: np.finfo(t).eps)  # the compared dtype: the narrower of the two
    point = Point(name, their_name, tuple(ours.shape), tuple(theirs.shape), dtype.name, "ok")
    if ours.shape != theirs.shape:
        point.status = "shape"
        return point
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    keep = np.broadcast_to(_keep(name, ours.shape, where), ours.shape)
    finite = np.isfinite(a) & np.isfinite(b)
    bad = keep & ~finite
    use = keep & finite
    point.compared = int(keep.sum())
    point.nonfinite = int(bad.sum())
    ref, d = a[use], np.abs(a - b)[use]
    point.scale = float(np.abs(ref).max()) if ref.size else 0.0
    point.tolerance = tolerance.allowed(point.scale)
    if d.size:
        point.max_abs = float(d.max())
        point.rel_to_scale = point.max_abs / point.scale if point.scale > 0 else \
            (0.0 if point.max_abs == 0 else float("inf"))
        spacing = np.spacing(np.maximum(np.abs(ref), np.finfo(dtype).eps).astype(dtype)).astype(np.float64)
        ulps = d / spacing
        point.ulp_p50, point.ulp_p99 = (float(v) for v in np.percentile(ulps, [50, 99]))
        point.ulp_max = float(ulps.max())
        energy = float(np.sum(ref * ref))
        point.nmse = float(np.sum(d * d)) / energy if energy > 0 else (0.0 if point.max_abs == 0 else float("inf"))
        point.over = int((d > point.tolerance).sum())
    else:
        point.max_abs = 0.0 if not point.nonfinite else float("nan")
    point.over += point.nonfinite
    if point.nonfinite:
        worst = np.unravel_index(int(np.argmax(bad)), bad.shape)
        point.status = "nonfinite"
    elif d.size:
        errors = np.where(use, np.abs(a - b), -1.0)
        worst = np.unravel_index(int(np.argmax(errors)), errors.shape)
        point.status = "diff" if point.max_abs > point.tolerance else "ok"
    else:
        worst = ()
    if worst:
        point.worst_index = tuple(int(i) for i in worst)
        point.worst_position = _position(name, point.worst_index, ours.ndim)
        point.ours_at_worst, point.theirs_at_worst = float(a[worst]), float(b[worst])
    return point


def first_divergence(report: Report):
    """The earliest failing point in forward order, or None (kept for callers of the old list-of-rows API)."""
    return report.first_divergence


__all__ = ["TOLERANCES", "FIELD_NAMES", "Tolerance", "Point", "Report", "compare", "compare_point", "expected_names",
           "resolve_tolerance", "first_divergence"]
