"""The checking commands: `verify` (every golden case against Hugging Face's outputs) and `trace` (every
trace point of a forward pass, and the first divergence from another implementation's).

They parse options and print; what they print is computed in xlmr_np.audit.goldens and xlmr_np.audit.trace
(compare.py, report.py; bundle.py and onnx_trace.py for the other side). Exit status: 0 all within tolerance,
1 something is not, 2 no golden cases (verify), bad options, an unreadable --against/--inputs/--bundle/--onnx
file, trace with nothing to do, a golden recorded on a checkpoint that has changed since, or a comparison that
cannot be trusted (no name in common, expected names missing, shapes that differ: the report is printed and one
"xlmr-np: error: ..." line on stderr says why).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..errors import UsageError
from .common import check_json_files, notice

CHECK_EPILOG = "Exit status: 0 everything within tolerance, 1 something is not, 2 usage or input error."
TOLERANCE_NAMES = ("float64", "float32", "float16", "bfloat16", "int8")  # audit.compare.TOLERANCES (not imported here)


def trace_epilog() -> str:
    """The naming table and the exit codes (audit.points is numpy-only: --help stays light)."""
    from ..audit.points import naming_table

    return (naming_table() + "\n\nA point passes when max |ours - theirs| <= max(atol, rtol x max |ours|) over "
            "unmasked positions;\nNaN or Inf there fails it. Presets and their reasons: docs/verification.md.\n"
            "Exit status: 0 every compared point agrees, 1 a divergence (or NaN/Inf), 2 usage or input error:\n"
            "not exactly one of --ids/--inputs/--bundle, no --out and no other side, unreadable file, a\n"
            "checkpoint changed since its golden, no name in common, expected names missing, shapes differ.")


def register(subparsers):
    verify = subparsers.add_parser(
        "verify", help="run every class on stored Hugging Face goldens and print a diff table",
        description="Compare xlmr_np with Hugging Face outputs stored by tools/make_reference_outputs.py (or, for "
                    "your own checkpoint, tools/make_user_golden.py): one row per case and output, max |diff| "
                    "against its tolerance.", epilog=CHECK_EPILOG)
    verify.add_argument("--model", metavar="DIR",
                        help="a golden case directory (config.json, weights, case.json, inputs.npz, outputs_*.npz) "
                             "or a folder of them; default: the bundled reference_outputs/cases (not the demo model)")
    verify.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    verify.add_argument("--device", default="cpu", help="cpu (default) or gpu (needs CuPy)")
    verify.add_argument("--all-outputs", action="store_true", help="one row per stored array instead of per field")
    verify.set_defaults(run=run_verify)

    trace = subparsers.add_parser(
        "trace", help="dump every trace point of a forward pass, or compare them with another implementation's",
        description="Trace a checkpoint on --ids, --inputs or a --bundle's inputs: write every trace point\n"
                    "(--out), or compare them with --against NPZ, --onnx MODEL or the bundle's; report the\n"
                    "first divergence.",
        epilog=trace_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    trace.add_argument("--model", required=True, metavar="DIR",
                       help="checkpoint directory (required: there is no default model for trace)")
    trace.add_argument("--class", dest="cls", help="model class (default: a bundle's, else XLMRobertaModel)")
    given = trace.add_mutually_exclusive_group()
    given.add_argument("--ids", help='token ids, e.g. "0 581 10269 2"; several sequences of one length with ";" '
                                     '(the mask is ids != pad id)')
    given.add_argument("--inputs", metavar="NPZ", help="an .npz with input_ids [B, T] (multiple choice [B, C, T]) and "
                                                       "optionally attention_mask, token_type_ids, position_ids")
    given.add_argument("--bundle", metavar="BUNDLE",
                       help="a golden bundle (golden export): its checkpoint hashes are checked first, its inputs "
                            "are used, and its --dtype trace is the other side unless --against or --onnx is given")
    trace.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                       help="our compute dtype (default float32)")
    trace.add_argument("--out", metavar="NPZ", help="write our trace to this .npz")
    theirs = trace.add_mutually_exclusive_group()
    theirs.add_argument("--against", metavar="NPZ|BUNDLE",
                        help="the other implementation's trace points: an .npz, or a golden bundle (= --bundle)")
    theirs.add_argument("--onnx", metavar="FILE", help="an ONNX model run by onnxruntime on the same inputs "
                                                       "(pip install 'xlmr_np[onnx]')")
    trace.add_argument("--format", choices=["text", "json"], default="text", help="report format (default text)")
    trace.add_argument("--tolerance", metavar="NAME", help="a preset: " + ", ".join(TOLERANCE_NAMES)
                                                            + " (default: the one of --dtype)")
    trace.add_argument("--atol", type=float, help="absolute tolerance (overrides the preset's)")
    trace.add_argument("--rtol", type=float, help="tolerance relative to max |ours| (overrides the preset's)")
    trace.add_argument("--expect", default="all", metavar="WHICH",
                       help='names theirs must have: "all" (default), "outputs" (hidden states, attentions, '
                            'output fields), "fields" (output fields only) or globs "embeddings,layers.*"')
    trace.set_defaults(run=run_trace)


# The model side is imported when a command runs, not when the parser is built (--help stays light). These
# imports point one way, cli -> audit -> modeling: nothing under xlmr_np.audit imports xlmr_np.cli.
def run_verify(args) -> int:
    from ..audit import bundle
    from ..audit.goldens import (default_root, describe_root, find_cases, format_table, tolerance_summary,
                                 verify_cases)

    root = Path(args.model) if args.model else default_root()
    cases = find_cases(root)
    if not cases and args.model and bundle.is_bundle(root):
        raise UsageError(f"{root} is a golden bundle, not a golden case: check a checkpoint against it with "
                         f"trace --model DIR --bundle {root} (or golden check --bundle {root} --model DIR)")
    for case_dir in cases:  # user goldens (tools/make_user_golden.py) record the checkpoint's hashes: check first
        case = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
        if "model" in case or (case_dir / "manifest.json").is_file():
            note = bundle.case_manifest_check(case_dir, Path(os.path.normpath(case_dir / case.get("model", "."))))
            if note:
                notice("warning", note)
    if not cases:
        raise UsageError(f"no golden cases (case.json) under {root}: pass --model with a case directory or a "
                         f"folder of them (tools/make_user_golden.py writes one for your checkpoint)")
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    rows = verify_cases(cases, dtypes, args.device, args.all_outputs)
    print(format_table(rows))
    failed = [r for r in rows if not r.ok]
    print(f"\n{len(cases)} cases, {len(rows)} comparisons, {len(failed)} outside tolerance ({tolerance_summary()})")
    print(f"ran {describe_root(root, cases)}")
    return 1 if failed else 0


def parse_ids(text: str):
    """--ids "0 5 6 2; 0 8 9 2" as lists of ints; a UsageError names what is wrong."""
    rows = []
    for n, part in enumerate((p for p in text.split(";") if p.strip()), 1):
        row = []
        for token in part.split():
            try:
                row.append(int(token))
            except ValueError:
                raise UsageError(f"--ids: {token!r} in sequence {n} is not a token id (give integers separated by "
                                 f"spaces, sequences separated by ';')") from None
        rows.append(row)
    if not rows:
        raise UsageError('--ids has no token id: give e.g. --ids "0 581 10269 2"')
    return rows


def trace_inputs(args) -> dict:
    """The model's input arrays from exactly one of --ids, --inputs, --bundle (a UsageError names the option).
    A bundle's checkpoint hashes are checked before anything else is read: a golden of other weights is not a
    divergence (ProvenanceError: "the checkpoint changed since ...")."""
    from ..audit import bundle
    from ..audit.trace import read_inputs, token_ids
    from ..errors import ProvenanceError

    given = [option for option, value in (("--ids", args.ids), ("--inputs", args.inputs), ("--bundle", args.bundle))
             if value is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of --ids, --inputs, --bundle (a golden bundle carries its inputs)"
                         + (f", not {' and '.join(given)}" if given else ""))
    if args.bundle:
        try:
            bundle.check_bundle(args.bundle, args.model)
            return bundle.read_bundle_inputs(args.bundle)[1]
        except ProvenanceError:
            raise
        except ValueError as err:
            raise UsageError(f"--bundle {err}") from None
    if args.inputs:
        try:
            return read_inputs(args.inputs)
        except ValueError as err:
            raise UsageError(f"--inputs {err}") from None
    try:
        return {"input_ids": token_ids(parse_ids(args.ids))}
    except ValueError as err:
        raise UsageError(f"--ids: {str(err).removeprefix('ids: ')}") from None


def their_trace(args, inputs: dict, cfg):
    """Their trace points, {name: array}, or None when nothing is to be compared: the one place that says what
    "theirs" is. --against FILE.npz (another implementation's dump), --onnx FILE (an ONNX model run by
    onnxruntime on `inputs`, which carry the attention mask), or, with --bundle and neither of those, the
    bundle's recorded --dtype trace. Called before our model runs, so that a wrong file fails at once."""
    from ..audit.trace import read_trace

    if args.against:
        try:
            return read_trace(args.against)
        except ValueError as err:
            raise UsageError(f"--against {err}") from None
    if args.onnx:
        from ..audit.onnx_trace import trace_onnx

        try:
            return trace_onnx(args.onnx, inputs, num_heads=cfg.num_attention_heads)
        except ValueError as err:
            raise UsageError(f"--onnx {err}") from None
    if args.bundle:
        from ..audit import bundle

        try:
            return bundle.read_bundle(args.bundle, args.dtype)[2][args.dtype]
        except bundle.ProvenanceError:
            raise
        except ValueError as err:
            raise UsageError(f"--bundle {err}") from None
    return None


def trace_tolerance(args):
    from ..audit.compare import Tolerance, resolve_tolerance

    try:
        preset = resolve_tolerance(args.tolerance or args.dtype)
    except ValueError as err:
        raise UsageError(f"--tolerance: {err}") from None
    if args.atol is None and args.rtol is None:
        return preset
    atol = preset.atol if args.atol is None else args.atol
    rtol = preset.rtol if args.rtol is None else args.rtol
    try:
        explicit = resolve_tolerance((atol, rtol))
    except ValueError as err:
        raise UsageError(f"--atol/--rtol: {err}") from None
    return Tolerance("explicit", explicit.atol, explicit.rtol, f"--atol/--rtol over the {preset.name} preset")


def run_trace(args) -> int:
    """The trace command; with --format json, a usage error before the comparison prints a JSON report too
    (exit_code 2, the error as its one problem), so that CI always reads a JSON object from stdout."""
    try:
        return _run_trace(args)
    except (UsageError, ValueError, OSError) as err:
        if args.format == "json":
            from ..audit.report import usage_error_json
            from .common import one_line

            print(usage_error_json(one_line(str(err)), args.expect))
        raise


def _run_trace(args) -> int:
    import json

    from ..audit import bundle
    from ..audit.trace import compare, format_json, format_text, model_class, trace_checkpoint, with_attention_mask
    from ..audit.trace import write_trace
    from ..config import XLMRobertaConfig

    if args.against and bundle.is_bundle(args.against):  # --against BUNDLE is --bundle BUNDLE
        if args.bundle or args.ids is not None or args.inputs:
            raise UsageError(f"--against {args.against} is a golden bundle, which brings its inputs: give it alone "
                             f"(or as --bundle, with --against THEIR.npz for another implementation's dump)")
        args.bundle, args.against = args.against, None
    inputs = trace_inputs(args)
    if args.cls is None:
        args.cls = bundle.read_manifest(args.bundle).get("class", "XLMRobertaModel") if args.bundle else \
            "XLMRobertaModel"
    try:
        cls = model_class(args.cls)
    except ValueError as err:
        raise UsageError(f"--class: {err}") from None
    check_json_files(Path(args.model))
    cfg = XLMRobertaConfig.from_pretrained(args.model)
    inputs = with_attention_mask(inputs, cfg.pad_token_id)
    theirs = their_trace(args, inputs, cfg)
    if theirs is None and not args.out:
        raise UsageError("nothing to do: give --out FILE to write our trace, --against FILE to compare it with "
                         "another implementation's (or --onnx MODEL, --bundle BUNDLE), or both")
    tolerance = trace_tolerance(args)
    ours, mask = trace_checkpoint(cls, args.model, dtype=args.dtype, inputs=inputs)
    if args.out:
        write_trace(args.out, ours)
        if args.format == "text":
            print(f"wrote {len(ours)} trace points to {args.out}")
        elif theirs is None:
            print(json.dumps({"out": str(args.out), "points": list(ours)}, indent=1))
    if theirs is None:
        return 0
    report = compare(ours, theirs, tolerance, where=mask, expect=args.expect)
    print(format_json(report) if args.format == "json" else format_text(report))
    if report.usage_problems:
        hint = ("; to check only what HF's outputs hold (hidden states, attentions, output fields) pass --expect "
                "outputs" if report.missing and args.expect == "all" else "")
        notice("error", "; ".join(report.usage_problems) + hint)
    return report.exit_code
