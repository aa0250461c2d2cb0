"""`python -m xlmr_np` / `xlmr-np`: the command line.

Each command lives in the module that implements it and registers itself with `add_subparser`; this file
only collects them. Exit status: 0 success, 1 a check failed, 2 bad usage or input.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# module names under xlmr_np that provide add_subparser(subparsers); optional ones are skipped if absent
COMMAND_MODULES = ("verify", "compare", "weights.convert", "commands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xlmr_np",
                                     description="XLM-RoBERTa in plain NumPy, checked against Hugging Face")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"xlmr_np.{name}")
        except ImportError:
            continue
        module.add_subparser(subparsers)
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


if __name__ == "__main__":
    sys.exit(main())
