"""The checking commands: `verify` (every golden case against Hugging Face's outputs) and `trace` (per-layer
activations, and the first divergence from another implementation's).

They parse options and print; what they print is computed in xlmr_np.audit.goldens and xlmr_np.audit.trace.
Exit status: 0 all within tolerance, 1 something is not, 2 no golden cases (verify), bad options or an
unreadable --against file, or a golden (case with manifest.json, bundle) recorded on a checkpoint that has
changed since, each with one "xlmr-np: error: ..." line on stderr.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UsageError
from .common import check_json_files, notice

CHECK_EPILOG = "Exit status: 0 everything within tolerance, 1 something is not, 2 usage or input error."


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
        "trace", help="dump per-layer activations, or compare them with another implementation's",
        description="Run a checkpoint on token ids and write every layer's output to an .npz (--out), or compare "
                    "with an .npz from another implementation (--against) and report the first divergence.",
        epilog=CHECK_EPILOG)
    trace.add_argument("--model", required=True, metavar="DIR",
                       help="checkpoint directory (required: there is no default model for trace)")
    trace.add_argument("--class", dest="cls", default="XLMRobertaModel", help="model class (default XLMRobertaModel)")
    trace.add_argument("--ids", help='token ids, e.g. "0 581 10269 2"; several sequences of one length with ";" '
                                     '(required unless --bundle gives the inputs)')
    trace.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    trace.add_argument("--out", help="write our trace to this .npz")
    trace.add_argument("--against", help="an .npz with the other implementation's activations")
    # golden bundles and ONNX (xlmr_np/audit/bundle.py, onnx_trace.py)
    trace.add_argument("--bundle", metavar="BUNDLE",
                       help="a golden bundle (golden export): its checkpoint hashes are checked first, its inputs "
                            "are used (unless --ids), and its recorded --dtype trace is compared (unless --against "
                            "or --onnx); --against BUNDLE does the same")
    trace.add_argument("--onnx", metavar="FILE", help="an ONNX model to run on the same inputs (onnxruntime, "
                                                      "pip install 'xlmr_np[onnx]') and compare with ours")
    trace.add_argument("--atol", type=float, default=1e-5)
    trace.add_argument("--rtol", type=float, default=2e-6)
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


def run_trace(args) -> int:
    from ..audit.trace import (compare, first_divergence, format_report, model_class, read_trace, token_ids,
                               trace_checkpoint, write_trace)

    from ..audit import bundle

    if args.against and bundle.is_bundle(args.against) and not args.bundle:
        args.bundle, args.against = args.against, None  # --against BUNDLE: compare with what it recorded
    if args.onnx and args.against:
        raise UsageError("--onnx and --against are both the other implementation: give one")
    if args.ids is None and not args.bundle:
        raise UsageError('--ids is required (token ids, e.g. --ids "0 581 10269 2"), unless --bundle gives inputs')
    try:
        cls = model_class(args.cls)
        rows = token_ids(parse_ids(args.ids)).tolist() if args.ids is not None else None
    except ValueError as err:
        option = "--class" if str(err).startswith("unknown class") else "--ids"
        raise UsageError(f"{option}: {str(err).removeprefix('ids: ')}") from None
    theirs = inputs = None
    if args.bundle:  # the hashes first: a golden of other weights is not a divergence
        try:
            recorded, inputs, points = bundle.read_bundle(args.bundle, args.dtype)
        except bundle.ProvenanceError:
            raise
        except ValueError as err:
            raise UsageError(f"--bundle {err}") from None
        bundle.check_checkpoint(recorded["checkpoint"], args.model, what=f"the golden {args.bundle}")
        theirs = points[args.dtype] if rows is None else None
        if rows is not None:
            inputs = None  # --ids replaces the bundle's inputs; its recorded trace no longer applies
    if args.against:
        try:
            theirs = read_trace(args.against)  # before the model runs: a wrong file fails at once
        except ValueError as err:
            raise UsageError(f"--against {err}") from None
    check_json_files(Path(args.model))
    if inputs is not None:  # a bundle's inputs: every array it holds (mask, token types, positions)
        ours = bundle._trace(cls.from_pretrained(args.model, dtype=args.dtype), inputs)
        mask = bundle.mask_of(inputs)
    else:
        ours, mask = trace_checkpoint(cls, args.model, rows, args.dtype)
        inputs = {"input_ids": token_ids(rows), "attention_mask": mask}
    if args.onnx:  # their side: the ONNX model on the same inputs
        from ..audit.onnx_trace import trace_onnx

        try:
            theirs = trace_onnx(args.onnx, inputs)
        except ValueError as err:
            raise UsageError(f"--onnx {err}") from None
    if args.out:
        write_trace(args.out, ours)
        print(f"wrote {len(ours)} activations to {args.out}: {', '.join(ours)}")
    if theirs is not None:
        report = compare(ours, theirs, args.atol, args.rtol, where=mask)
        if not report:
            raise UsageError(f"--against {args.against or args.onnx or args.bundle}: none of its arrays ({', '.join(sorted(theirs)[:8])}) is "
                             f"named like ours ({', '.join(list(ours)[:3])}, ..., or HF's hidden_states.N)")
        print(format_report(report))
        return 1 if first_divergence(report) else 0
    return 0
