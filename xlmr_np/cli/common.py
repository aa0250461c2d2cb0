"""What the task commands (xlmr_np/cli/pipelines.py, xlmr_np/cli/tokenize.py) share: options, input, output.

- `task_parser`: the options every task command takes (INPUT..., --model, --tokenizer, --format, ...).
- `read_inputs`: the texts, from the arguments or one per line from standard input.
- `default_model`: the shipped demo model used without --model.
- `guarded`: a UsageError becomes one "xlmr-np: error: ..." line on stderr and exit status 2.
- `write`: the results as jsonl, json or a table (stdout); `table_rows` lays out a table.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..errors import UsageError

PROG = "xlmr-np"  # the prefix of every message on stderr
DEMO_MODEL = "xlmr-demo"

# The input conventions, shown in every task command's --help (transformers-cli's `pipe` reads the same lines).
INPUT_CONVENTIONS = (
    'Each runs a pipeline of xlmr_np.pipelines on texts given as arguments, or read from standard input one per '
    'line when there are none (or when the only argument is "-"). `qa` reads "question<TAB>context" lines, or '
    'questions with --context; `classify --pairs` reads "text<TAB>text_pair" lines (transformers-cli\'s `pipe` '
    'convention).')


# --- options and input ------------------------------------------------------------------------------------------
def task_parser(subparsers, name, help_text, input_help, model_only=True):
    """Add command `name` with the shared options; `model_only` adds --batch-size and --dtype (a forward pass)."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text.capitalize() + ". " + INPUT_CONVENTIONS,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help=f"{input_help}; none (or '-') reads standard input, one per line")
    parser.add_argument("--model", metavar="DIR", help="model folder or hub id in the HF cache "
                                                       "(default: the shipped demo model)")
    parser.add_argument("--tokenizer", metavar="DIR", help="folder with sentencepiece.bpe.model (default: the model's)")
    if model_only:
        parser.add_argument("--batch-size", type=int, default=8, help="inputs per forward pass (default 8)")
        parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--format", choices=["table", "json", "jsonl"],
                        help="output format (default: table on a terminal, jsonl otherwise)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: on a terminal, for inputs longer than a batch)")
    return parser


def default_model() -> Path:
    """The shipped demo model: models/xlmr-demo beside the package (source checkout or editable install), or
    <prefix>/share/xlmr_np/models/xlmr-demo where a regular `pip install` puts it (setup.cfg data_files)."""
    package = Path(__file__).resolve().parent.parent  # xlmr_np/
    installed = Path(sys.prefix) / "share" / "xlmr_np" / "models" / DEMO_MODEL
    for candidate in (package.parent / "models" / DEMO_MODEL, package / "models" / DEMO_MODEL, installed):
        if (candidate / "config.json").is_file():
            return candidate
    raise UsageError(f"no --model given and the demo model is not installed (looked for models/{DEMO_MODEL}); "
                     f"pass --model DIR")


def read_inputs(args) -> list:
    """The INPUT arguments, or the non-blank lines of standard input when there are none (or only "-")."""
    items = list(args.inputs)
    if not items or items == ["-"]:
        if sys.stdin is None or sys.stdin.isatty() and not items:
            raise UsageError("no input: give texts as arguments or pipe them on standard input, one per line")
        items = [line.rstrip("\r\n") for line in sys.stdin]
        items = [line for line in items if line.strip()]
    if not items:
        raise UsageError("no input: standard input was empty")
    return items


def positive(value, name):
    """A count option (None = not given) must be at least 1."""
    if value is not None and value < 1:
        raise UsageError(f"{name} must be at least 1, got {value}")


def guarded(function):
    """Turn UsageError into exit status 2 with one message line."""
    def run(args):
        try:
            return function(args)
        except UsageError as err:
            print(f"{PROG}: error: {err}", file=sys.stderr)
            return 2
    return run


# --- output -------------------------------------------------------------------------------------------------------
def output_format(args) -> str:
    """--format, else table on a terminal and jsonl otherwise."""
    return args.format or ("table" if sys.stdout.isatty() else "jsonl")


def plain(value):
    """Pipeline results (NumPy scalars and arrays inside) as JSON values."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write(fmt, items, results, errors, table):
    """One {"input", "result" | "error"} record per item on stdout, as jsonl, json, or (`table(result)` text)
    a block per item headed "> input"."""
    records = []
    for item, result, error in zip(items, results, errors):
        record = {"input": item}
        record.update({"error": error} if error is not None else {"result": plain(result)})
        records.append(record)
    out = sys.stdout
    if fmt == "jsonl":
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif fmt == "json":
        out.write(json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    else:
        for n, record in enumerate(records):
            if n:
                out.write("\n")
            shown = record["input"] if isinstance(record["input"], str) else " | ".join(record["input"])
            out.write(f"> {shown}\n")
            if "error" in record:
                out.write(f"  error: {record['error']}\n")
            else:
                out.write(table(record["result"]))
    out.flush()


def table_rows(header, body):
    """Left-aligned columns, indented by two spaces, one line per row of `body` under the header."""
    widths = [max(len(str(x)) for x in column) for column in zip(header, *body)] if body else [len(h) for h in header]
    lines = ["  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip()]
    for row in body:
        lines.append("  " + "  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    return "\n".join(lines) + "\n"
