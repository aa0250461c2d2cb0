"""A comparison report (compare.Report) as text for people and as JSON for CI.

`format_text(report)` is what `python -m xlmr_np trace --against ...` prints; `format_json(report)` is what it
prints with `--format json`, one JSON object (schema "xlmr_np.trace.report/1", docs/verification.md):

    {"schema": "xlmr_np.trace.report/1", "exit_code": 0 | 1 | 2, "status": "agree" | "diverge" | "usage_error",
     "tolerance": {"name", "atol", "rtol", "reason"}, "expect": "all" | "outputs" | patterns,
     "first_divergence": null | <point>, "points": [<point>, ...] (forward order), "missing": [name, ...],
     "not_compared": [{"name", "reason"}, ...], "problems": [sentence, ...]}
    <point> = {"name", "their_name", "shape", "their_shape", "dtype", "status" ("ok" | "diff" | "nonfinite" |
     "shape" | "dtype"), "compared", "tolerance", "scale", "max_abs", "rel_to_scale", "ulp": {"p50", "p99", "max"},
     "nmse", "over", "over_share", "nonfinite", "worst": {"index", "position": {"batch", "token", ["key"],
     ["head"]}, "ours", "theirs"}}

Numbers that are not finite (an Inf in theirs, a statistic of nothing) are written as null: strict JSON.
"""
from __future__ import annotations

import json
import math

from .compare import Point, Report

STATUS = {0: "agree", 1: "diverge", 2: "usage_error"}


def _number(value):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def point_dict(p: Point) -> dict:
    return {
        "name": p.name, "their_name": p.their_name, "shape": list(p.shape), "their_shape": list(p.their_shape),
        "dtype": p.dtype, "status": p.status, "compared": p.compared, "tolerance": _number(p.tolerance),
        "scale": _number(p.scale), "max_abs": _number(p.max_abs), "rel_to_scale": _number(p.rel_to_scale),
        "ulp": {"p50": _number(p.ulp_p50), "p99": _number(p.ulp_p99), "max": _number(p.ulp_max)},
        "nmse": _number(p.nmse), "over": p.over, "over_share": _number(p.over_share), "nonfinite": p.nonfinite,
        "worst": {"index": list(p.worst_index), "position": p.worst_position,
                  "ours": _number(p.ours_at_worst), "theirs": _number(p.theirs_at_worst)},
    }


def report_dict(report: Report) -> dict:
    first = report.first_divergence
    t = report.tolerance
    return {
        "schema": "xlmr_np.trace.report/1", "exit_code": report.exit_code, "status": STATUS[report.exit_code],
        "tolerance": {"name": t.name, "atol": t.atol, "rtol": t.rtol, "reason": t.reason},
        "expect": report.expect, "first_divergence": None if first is None else point_dict(first),
        "points": [point_dict(p) for p in report.points], "missing": list(report.missing),
        "not_compared": [{"name": name, "reason": why} for name, why in report.not_compared],
        "problems": report.usage_problems,
    }


def format_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=1, allow_nan=False)


def usage_error_json(problem: str, expect="all") -> str:
    """The JSON report of a trace that stopped before comparing anything (a bad option, an unreadable file, a
    changed checkpoint): the same keys, exit_code 2, nothing compared, `problem` as the one sentence."""
    return json.dumps({"schema": "xlmr_np.trace.report/1", "exit_code": 2, "status": STATUS[2], "tolerance": None,
                       "expect": expect, "first_divergence": None, "points": [], "missing": [], "not_compared": [],
                       "problems": [problem]}, indent=1)


def _e(value, width=8, digits=1) -> str:
    return f"{value:{width}.{digits}e}" if math.isfinite(value) else f"{'-' if math.isnan(value) else value!s:>{width}}"


def _where(p: Point) -> str:
    if not p.worst_index:
        return ""
    pos = p.worst_position
    words = [f"{key} {pos[key]}" for key in ("batch", "head", "token", "key") if key in pos]
    return f"{list(p.worst_index)} ({', '.join(words)})"


def format_text(report: Report) -> str:
    """The table of compared points, then the verdict: the first divergence, missing and uncompared names."""
    t = report.tolerance
    lines = [f"tolerance {t.name}: max({t.atol:g}, {t.rtol:g} x max|ours|) over unmasked positions ({t.reason})",
             ""]
    width = max([len(p.name) for p in report.points] + [5])
    lines.append(f"{'point':{width}} {'shape':16} {'max|d|':>8} {'/scale':>8} {'ulp p50':>8} {'p99':>8} "
                 f"{'max':>8} {'NMSE':>8} {'over':>6}  status")
    for p in report.points:
        if p.status == "shape":
            lines.append(f"{p.name:{width}} {str(list(p.shape)):16} theirs {list(p.their_shape)}  SHAPE")
            continue
        if p.status == "dtype":
            lines.append(f"{p.name:{width}} {str(list(p.shape)):16} theirs {p.dtype} values  DTYPE")
            continue
        status = {"ok": "ok", "diff": "DIFF", "nonfinite": "NaN/Inf"}[p.status]
        lines.append(f"{p.name:{width}} {str(list(p.shape)):16} {_e(p.max_abs)} {_e(p.rel_to_scale)} "
                     f"{_e(p.ulp_p50)} {_e(p.ulp_p99)} {_e(p.ulp_max)} {_e(p.nmse)} {p.over:6d}  {status}")
    lines.append("")
    first = report.first_divergence
    if first is not None:
        what = (f"{first.nonfinite} NaN/Inf at compared positions" if first.status == "nonfinite"
                else f"max |d| {first.max_abs:.2e} > {first.tolerance:.2e} allowed")
        lines.append(f"first divergence: {first.name} ({what}; {first.over} of {first.compared} elements "
                     f"({100 * first.over_share:.1f}%) over; worst at {_where(first)}: ours "
                     f"{first.ours_at_worst:.6g}, theirs {first.theirs_at_worst:.6g}); every point before it agrees")
    for problem in report.usage_problems:
        lines.append(f"problem: {problem}")
    if report.not_compared:
        lines.append(f"not compared ({len(report.not_compared)}): "
                     + "; ".join(f"{name} ({why})" for name, why in report.not_compared))
    if report.exit_code == 0:
        lines.append(f"all {len(report.points)} compared points agree within tolerance")
    return "\n".join(lines)
