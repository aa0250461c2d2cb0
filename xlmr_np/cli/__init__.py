"""`python -m xlmr_np` / `xlmr-np`: the command line (argparse).

`main(argv)` builds the parser, runs the chosen command and returns its exit status:
    0  success: every check passed, every input answered
    1  a check failed (verify, trace) or some input could not be processed (the task commands)
    2  bad usage or input: options argparse rejects (it exits with 2 itself), no command (the help is
       printed), no input, no golden cases, a model that cannot serve the command, or a ValueError /
       OSError raised by a command (printed as one "error: ..." line on stderr)

Each family of commands is a module of this package with `register(subparsers)`: audit (verify, trace),
files (convert), pipelines (fill-mask, classify, ner, qa, embed, zero-shot), tokenize. They are imported like
any module: one that fails to import is a bug, and it stops the command line instead of vanishing from it.
"""
from __future__ import annotations

import argparse
import sys

from . import audit, files, pipelines, tokenize

COMMAND_FAMILIES = (audit, files, pipelines, tokenize)  # in the order --help lists their commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xlmr_np",
                                     description="XLM-RoBERTa in plain NumPy, checked against Hugging Face")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for family in COMMAND_FAMILIES:
        family.register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
