"""`python -m xlmr_np` / `xlmr-np`: the command line (argparse).

`main(argv)` builds the parser, runs the chosen command and returns its exit status:
    0    success: every check passed, every input answered
    1    a check failed (verify, trace), or some input of a task command could not be processed: it gets an
         {"input", "error"} record in its place and an error line, and the other inputs are still answered
    2    bad usage or input: options argparse rejects, no command (the help is printed), no input, an unreadable
         file (--against, --context-file, a model folder's JSON), no golden cases, a model that cannot serve
         the command
    130  interrupted (Ctrl-C): what was written stays written (a json list is closed), and one line says so
    141  standard output was closed by its reader (`| head -1`): the command stops at once, without a message

Messages: every one is a single line on stderr, `xlmr-np: error: ...` or `xlmr-np: warning: ...`, in the command
line's words (--overwrite, not overwrite=True); inputs are numbered from 1 in errors and warnings alike
("input 3", with "(line 5)" when standard input had blank lines before it). Python warnings and xlmr_np's log
records are shown the same way, each text once.

Streaming: the task commands (fill-mask, classify, ner, qa, embed, zero-shot, tokenize) read standard input
lazily and write each batch's results (--batch-size inputs; one line for tokenize) as soon as it is done, flushed,
in input order — jsonl and table line by line, json as one list written element by element.

Each family of commands is a module of this package with `register(subparsers)`: audit (verify, trace),
golden (export, check), fuzz, files (convert), pipelines (fill-mask, classify, ner, qa, embed, zero-shot),
tokenize. They are imported like any module: one that fails to import is a bug, and it stops the command line instead of vanishing from it.
The shared machinery (parser class, messages, input, streaming output, progress) is in common.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UsageError
from . import audit, files, fuzz, golden, pipelines, tokenize
from .common import INTERRUPTED, PIPE_CLOSED, PROG, Parser, messages, notice, silence_stdout

COMMAND_FAMILIES = (audit, golden, fuzz, files, pipelines, tokenize)  # in the order --help lists their commands


def build_parser() -> Parser:
    prog = PROG if Path(sys.argv[0] or "").name == PROG else "python -m xlmr_np"
    parser = Parser(prog=prog, description="XLM-RoBERTa in plain NumPy, checked against Hugging Face",
                    epilog="Exit status: 0 success, 1 a check or some input failed, 2 usage or input error, "
                           "130 interrupted, 141 standard output closed. '%(prog)s COMMAND --help' for each command.")
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
        with messages():
            return int(args.run(args) or 0)
    except BrokenPipeError:  # the reader went away: stop quietly, as a tool killed by SIGPIPE would
        silence_stdout()
        return PIPE_CLOSED
    except KeyboardInterrupt as err:
        notice("error", str(err) or "interrupted")
        return INTERRUPTED
    except UsageError as err:
        notice("error", err)
        return 2
    except (ValueError, OSError) as err:
        notice("error", err)
        return 2
