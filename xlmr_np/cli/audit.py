"""The checking commands: `verify` (every golden case against Hugging Face's outputs) and `trace` (per-layer
activations, and the first divergence from another implementation's).

They parse options and print; what they print is computed in xlmr_np.audit.goldens and xlmr_np.audit.trace.
Exit status: 0 all within tolerance, 1 something is not, 2 no golden cases (verify) or bad options.
"""
from __future__ import annotations

from pathlib import Path


def register(subparsers):
    verify = subparsers.add_parser(
        "verify", help="run every class on stored Hugging Face goldens and print a diff table",
        description="Compare xlmr_np with Hugging Face outputs stored by tools/make_reference_outputs.py. "
                    "Exit status 1 if any output is outside its tolerance.")
    verify.add_argument("--model", metavar="DIR",
                        help="a golden case directory (config.json, weights, case.json, inputs.npz, outputs_*.npz) "
                             "or a folder of them; default: the bundled reference_outputs/cases")
    verify.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    verify.add_argument("--device", default="cpu", help="cpu (default) or gpu (needs CuPy)")
    verify.add_argument("--all-outputs", action="store_true", help="one row per stored array instead of per field")
    verify.set_defaults(run=run_verify)

    trace = subparsers.add_parser(
        "trace", help="dump per-layer activations, or compare them with another implementation's",
        description="Run a checkpoint on token ids and write every layer's output to an .npz (--out), or compare "
                    "with an .npz from another implementation (--against) and report the first divergence.")
    trace.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory")
    trace.add_argument("--class", dest="cls", default="XLMRobertaModel", help="model class (default XLMRobertaModel)")
    trace.add_argument("--ids", required=True, help='token ids, e.g. "0 581 10269 2"; several sequences with ";"')
    trace.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    trace.add_argument("--out", help="write our trace to this .npz")
    trace.add_argument("--against", help="an .npz with the other implementation's activations")
    trace.add_argument("--atol", type=float, default=1e-5)
    trace.add_argument("--rtol", type=float, default=2e-6)
    trace.set_defaults(run=run_trace)


# The model side is imported when a command runs, not when the parser is built (--help stays light). These
# imports point one way, cli -> audit -> modeling: nothing under xlmr_np.audit imports xlmr_np.cli.
def run_verify(args) -> int:
    from ..audit.goldens import (default_root, describe_root, find_cases, format_table, tolerance_summary,
                                 verify_cases)

    root = Path(args.model) if args.model else default_root()
    cases = find_cases(root)
    if not cases:
        print(f"no golden cases (case.json) under {root}")
        return 2
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    rows = verify_cases(cases, dtypes, args.device, args.all_outputs)
    print(format_table(rows))
    failed = [r for r in rows if not r.ok]
    print(f"\n{len(cases)} cases, {len(rows)} comparisons, {len(failed)} outside tolerance ({tolerance_summary()})")
    print(f"ran {describe_root(root, cases)}")
    return 1 if failed else 0


def run_trace(args) -> int:
    from ..audit.trace import (compare, first_divergence, format_report, model_class, read_trace, trace_checkpoint,
                               write_trace)

    cls = model_class(args.cls)
    rows = [[int(t) for t in part.split()] for part in args.ids.split(";") if part.strip()]
    if len({len(r) for r in rows}) != 1:
        raise ValueError("all sequences in --ids must have the same length (pad them with the pad id)")
    ours, mask = trace_checkpoint(cls, args.model, rows, args.dtype)
    if args.out:
        write_trace(args.out, ours)
        print(f"wrote {len(ours)} activations to {args.out}: {', '.join(ours)}")
    if args.against:
        report = compare(ours, read_trace(args.against), args.atol, args.rtol, where=mask)
        print(format_report(report))
        return 1 if first_divergence(report) else 0
    return 0
