"""`fuzz`: seeded random batches through another implementation's program and ours; the smallest failing case.

It parses options and prints; the work is in xlmr_np.audit.fuzz. Exit status: 0 every case agrees, 1 a failing
case was found (shrunk and saved), 2 usage or input error (a --command without {inputs} and {outputs}, a
program that does not exist, an unreadable model folder).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .common import check_json_files


def register(subparsers):
    fuzz = subparsers.add_parser(
        "fuzz", help="run random batches through another implementation and ours; shrink the first failure",
        description="Run THEIR program (no shell) on seeded random batches written as .npz (left/right padding, "
                    "token types, lengths up to the maximum), compare the .npz it writes with ours, and shrink and "
                    "save the first failing case.",
        epilog="Exit status: 0 every case agrees, 1 a failing case was found, 2 usage or input error.")
    fuzz.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory")
    fuzz.add_argument("--command", required=True, metavar="CMD",
                      help='their program, e.g. "./port {inputs} {outputs}" (split like a shell, run without one): '
                           "it reads input_ids, attention_mask, token_type_ids ([B, T] int64) from {inputs} and "
                           "writes {outputs} with Hugging Face's output names (last_hidden_state, logits, ...), "
                           "intermediates optional (hidden_states.k, layers.i, ...)")
    fuzz.add_argument("--cases", type=int, default=20, help="how many cases to draw (default %(default)s)")
    fuzz.add_argument("--seed", type=int, default=0, help="case k is drawn from (seed, k) (default %(default)s)")
    fuzz.add_argument("--class", dest="cls", default="XLMRobertaModel", help="model class (default %(default)s)")
    fuzz.add_argument("--max-length", type=int, metavar="L",
                      help="longest row (default: max_position_embeddings - pad_token_id - 1)")
    fuzz.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                      help="our side's dtype and the tolerance preset (audit.compare.TOLERANCES; default float32)")
    fuzz.add_argument("--timeout", type=float, default=60.0, help="seconds per run of their program (default 60)")
    fuzz.add_argument("--save", default="fuzz-failure.npz", metavar="NPZ",
                      help="where the smallest failing case goes (an existing file is kept: .1, .2, ... is added)")
    fuzz.set_defaults(run=run_fuzz)


def run_fuzz(args) -> int:
    from ..audit.fuzz import fuzz, parse_command, replay_command
    from ..audit.report import format_text
    from ..audit.trace import model_class

    try:
        cls = model_class(args.cls)
        parse_command(args.command)
    except ValueError as err:
        raise UsageError(str(err) if str(err).startswith("--") else f"--class: {err}") from None
    for option, value, least in (("--cases", args.cases, 1), ("--max-length", args.max_length, 1)):
        if value is not None and value < least:
            raise UsageError(f"{option} {value}: give at least {least}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout}: give a positive number of seconds")
    check_json_files(Path(args.model))
    model = cls.from_pretrained(args.model, dtype=args.dtype)
    result = fuzz(model, model.config, args.command, args.cases, args.seed, args.max_length, args.timeout,
                  args.dtype, save=args.save, log=lambda line: print(line, flush=True))
    if result.failure is None:
        print(f"\nall {result.cases_run} cases agree (seed {args.seed}, {args.dtype} tolerance)")
        return 0
    print(f"\nFAILED at case {result.case_index + 1} of seed {args.seed}: {result.failure.kind}: "
          f"{result.failure.detail}")
    print(f"smallest failing case: {result.smallest.describe()}; saved to {result.saved}")
    print(f"replay: {replay_command(args.model, args.cls, result.saved, args.dtype)}")
    if result.failure.report is not None:
        print(format_text(result.failure.report))
    return 1
