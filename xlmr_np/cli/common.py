"""What the commands share: the parser class, messages on stderr, and for the task commands (xlmr_np/cli/pipelines.py,
xlmr_np/cli/tokenize.py) their options, their input, their output and their progress line.

- `Parser`: argparse with this command line's error line (`xlmr-np: error: ...`, exit status 2).
- `notice` / `messages`: every message on stderr is one `xlmr-np: error: ...` or `xlmr-np: warning: ...` line;
  inside `messages()` Python warnings and xlmr_np's log records become such lines (each text once).
- `task_parser`: the options every task command takes (INPUT..., --model, --tokenizer, --format, ...).
- `read_inputs`: the inputs, numbered from 1, from the arguments or lazily, line by line, from standard input.
  Text is UTF-8; a line or argument that is not gets its own error (or U+FFFD with --encoding-errors replace).
- `serve`: runs the inputs through a command batch by batch, writing each batch's results (`Writer`: jsonl,
  json or a table on stdout) and errors (stderr) as soon as it is done; one failing input fails alone.
- `Progress`: count, rate and time left on stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import stat
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

PROG = "xlmr-np"  # the prefix of every message on stderr
DEMO_MODEL = "xlmr-demo"
ENCODING = "utf-8"  # of standard input and of the arguments, whatever the locale says
INTERRUPTED, PIPE_CLOSED = 130, 141  # exit statuses: 128 + SIGINT, 128 + SIGPIPE, as a shell reports them


class Parser(argparse.ArgumentParser):
    """argparse, with its complaint as one `xlmr-np: error: ...` line naming the command's --help (status 2)."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see: {self.prog} --help)\n")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while a task command runs; its text says what was written before."""


# --- messages on stderr -----------------------------------------------------------------------------------------
_state = {"progress": None, "said": set()}


def one_line(text) -> str:
    return re.sub(r"\s*\n\s*", " ", str(text).strip())


def notice(kind, message, once=False):
    """Print `xlmr-np: KIND: message` on stderr (over the progress line, which is redrawn after the next batch)."""
    message = one_line(message)
    if once:
        if (kind, message) in _state["said"]:
            return
        _state["said"].add((kind, message))
    if _state["progress"] is not None:
        _state["progress"].clear()
    try:
        sys.stderr.write(f"{PROG}: {kind}: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr itself is gone: nothing to tell anyone
        pass


class _LogLines(logging.Handler):
    def emit(self, record):
        notice("warning", record.getMessage(), once=True)


@contextlib.contextmanager
def messages():
    """Within: warnings and xlmr_np's log records of WARNING and above are `xlmr-np: warning: ...` lines, each
    text once (no file names, no source lines)."""
    _state["said"] = set()
    logger = logging.getLogger("xlmr_np")
    handler, propagate = _LogLines(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *rest, **kw: notice("warning", message, once=True)
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def silence_stdout():
    """After the reader of stdout went away: point stdout at /dev/null so that the exit's flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture): nothing to flush
        pass


# --- options ------------------------------------------------------------------------------------------------------
INPUT_EPILOG = ("Input: the INPUT arguments, or standard input read line by line (UTF-8, blank lines skipped) when "
                "there are none or the only one is '-'. Output: one result per input, in input order, written as "
                "soon as its batch is done. Exit status: 0 all answered, 1 some input failed (it gets an error "
                "record and an error line; the others are answered), 2 usage or input error, 130 interrupted, "
                "141 standard output closed. More: docs/pipelines.md.")

DEMO_SERVES = "the default, the shipped demo model models/xlmr-demo, serves this command"


def task_parser(subparsers, name, summary, description, input_help, model_help=DEMO_SERVES, model_only=True):
    """Add command `name` with the shared options; `model_only` adds --batch-size and --dtype (a forward pass).

    `summary` is its line in the list of commands, `description` the top of its --help, `model_help` what its
    --model must be (and whether the demo model serves it)."""
    parser = subparsers.add_parser(name, help=summary, description=description, epilog=INPUT_EPILOG)
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help=f"{input_help}; none (or '-') reads standard input, one per line")
    parser.add_argument("--model", metavar="DIR", help=f"model folder, or hub id in the local Hugging Face cache; "
                                                       f"{model_help}")
    parser.add_argument("--tokenizer", metavar="DIR", help="folder with sentencepiece.bpe.model (default: the model's)")
    if model_only:
        parser.add_argument("--batch-size", type=int, default=8,
                            help="inputs per forward pass, and per block of output (default 8)")
        parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--format", choices=["table", "json", "jsonl"],
                        help="output format (default: table on a terminal, jsonl otherwise)")
    parser.add_argument("--encoding-errors", choices=["strict", "replace"], default="strict",
                        help="text that is not UTF-8: strict (default) makes that input fail with an error naming "
                             "it; replace reads the bad bytes as U+FFFD")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="count, rate and time left on stderr (default: on a terminal, for inputs longer than "
                             "a batch)")
    return parser


def default_model(task: str = "fill-mask") -> Path:
    """The shipped model that serves `task` without --model (xlmr_np.pipelines.base.SHIPPED_MODELS: the demo
    masked LM, the language identifier for classify), found beside the package or where a regular `pip install`
    puts it; otherwise a usage error that says what the task needs."""
    from ..pipelines.base import default_model as shipped_for  # not a cycle: pipelines never import cli

    try:
        return shipped_for(task)
    except ValueError as err:
        raise UsageError(str(err).replace("pass model=DIR", "pass --model DIR")) from None


def positive(value, name):
    """A count option (None = not given) must be at least 1."""
    if value is not None and value < 1:
        raise UsageError(f"{name} must be at least 1, got {value}")


# --- the model folder's small JSON files, checked before a loader trips on them -----------------------------------
JSON_OBJECTS = ("config.json", "sentence_bert_config.json", "1_Pooling/config.json", "tokenizer_config.json",
                "special_tokens_map.json", "added_tokens.json")


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except RecursionError:
        raise UsageError(f"{path}: JSON nested too deeply to read (over {sys.getrecursionlimit()} levels; no model "
                         f"file needs that): replace it with the model's own {path.name}") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"{path}: not valid JSON ({err})") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot be read ({err.strerror or err})") from None


def check_json_files(*directories):
    """The JSON files a model or tokenizer folder may hold must parse, and have the shape their readers expect:
    an object each, and modules.json a list of {"type", "path"} objects (as sentence-transformers writes it)."""
    for directory in directories:
        if directory is None or not Path(directory).is_dir():
            continue
        directory = Path(directory)
        found = [(directory / name, "an object") for name in JSON_OBJECTS if (directory / name).is_file()]
        modules_file = directory / "modules.json"
        if modules_file.is_file():
            modules = _read_json(modules_file)
            shape = ('a list of modules ([{"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}, '
                     '...], as sentence-transformers writes it)')
            if not isinstance(modules, list):
                raise UsageError(f"{modules_file}: expected {shape}, got a JSON {_json_kind(modules)}: fix or remove "
                                 f"modules.json")
            for n, module in enumerate(modules, 1):
                if not isinstance(module, dict) or not all(isinstance(module.get(k, ""), str) for k in ("type", "path")):
                    raise UsageError(f"{modules_file}: module {n} is not a {{\"type\": ..., \"path\": ...}} object of "
                                     f"strings: expected {shape}")
                config = directory / module.get("path", "") / "config.json"
                if module.get("path") and config.is_file():
                    found.append((config, "an object"))
        for path, _ in dict.fromkeys(found):
            value = _read_json(path)
            if not isinstance(value, dict):
                raise UsageError(f"{path}: expected a JSON object ({{...}}), got a JSON {_json_kind(value)}")


def _json_kind(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


# --- input ----------------------------------------------------------------------------------------------------------
@dataclass
class Item:
    """One input: its number (from 1, in input order), the standard-input line it came from, its text, and (once
    read or served) the value passed to the command, the result, or why there is none."""

    number: int
    text: str
    line: int | None = None  # None: an argument
    error: str | None = None
    value: object = None
    result: object = None
    consumed: int = 0  # bytes of standard input read up to the end of this line

    @property
    def label(self) -> str:
        where = f" (line {self.line})" if self.line is not None and self.line != self.number else ""
        return f"input {self.number}{where}"


def decode(data: bytes, errors: str, where: str):
    """(text, None) for UTF-8 `data`, else (the text with U+FFFD, the reason and the fix); "replace" never fails."""
    try:
        return data.decode(ENCODING), None
    except UnicodeDecodeError as err:
        shown = data.decode(ENCODING, "replace")
        if errors == "replace":
            return shown, None
        return shown, (f"{where} is not valid UTF-8: byte {err.start + 1} is 0x{data[err.start]:02x} ({err.reason}); "
                       f"convert the text to UTF-8 (e.g. iconv -f latin1 -t utf-8) or pass --encoding-errors replace")


def clean(text: str, errors: str, where: str):
    """(text, None) for text that can be encoded, else as `decode` on its bytes: an argument or line that is not
    UTF-8 arrives as surrogate escapes (\\udce9 for the byte 0xe9), and a lone surrogate is no text either."""
    try:
        text.encode(ENCODING)
        return text, None
    except UnicodeEncodeError:
        pass
    try:
        data = os.fsencode(text)  # the bytes the shell passed (surrogateescape undone)
    except UnicodeEncodeError:
        data = text.encode(ENCODING, "surrogatepass")  # a surrogate no decoding made: invalid UTF-8 bytes
    return decode(data, errors, where)


class Inputs:
    """The items of a task command, lazily; `total` (the count) when known, `size` (bytes) for a regular file on
    standard input."""

    def __init__(self, args):
        self.errors = args.encoding_errors
        self.total = self.size = None
        given = list(args.inputs)
        self.stdin = not given or given == ["-"]
        if self.stdin:
            if sys.stdin is None or (not given and sys.stdin.isatty()):
                raise UsageError("no input: give texts as arguments or pipe them on standard input, one per line")
            self.size = _file_size(sys.stdin)
            self._items = self._read_stdin()
        else:
            self.total = len(given)
            self._items = (self._argument(n, text) for n, text in enumerate(given, 1))
        self._first = next(self._items, None)
        if self._first is None:
            raise UsageError("no input: standard input was empty")

    def __iter__(self):
        yield self._first
        yield from self._items

    def _argument(self, n, text):
        text, error = clean(text, self.errors, f"argument {n}")
        return Item(n, text, error=error)

    def _read_stdin(self):
        binary = getattr(sys.stdin, "buffer", None)
        number = consumed = 0
        for line, raw in enumerate(binary if binary is not None else sys.stdin, 1):
            where = f"line {line} of standard input"
            if isinstance(raw, bytes):
                consumed += len(raw)
                text, error = decode(raw.rstrip(b"\r\n"), self.errors, where)
            else:  # a text stream without a byte layer (a test's StringIO)
                consumed += len(raw)
                text, error = clean(raw.rstrip("\r\n"), self.errors, where)
            if error is None and not text.strip():
                continue
            number += 1
            yield Item(number, text, line=line, error=error, consumed=consumed)


def _file_size(stream):
    """Bytes left in `stream` when it is a regular file (`< file`), else None (a pipe or a terminal)."""
    try:
        fd = stream.fileno()
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            return max(info.st_size - os.lseek(fd, 0, os.SEEK_CUR), 0)
    except (OSError, ValueError, AttributeError):
        pass
    return None


# --- serving: batch by batch, each written as soon as it is done -------------------------------------------------
_INDEXED = re.compile(r"^(input|sequence|example)( (\d+))?\b")


def renumber(message: str, items) -> str:
    """A pipeline's message about its "input 0" / "sequence 2" / "example 1" (counted from 0 within one call on
    `items`) told with the command's own numbering: "input 7 (line 9)"."""
    match = _INDEXED.match(message)
    if match is None:
        return message
    if match.group(3) is not None:
        index = int(match.group(3))
        if index >= len(items):
            return message
    elif len(items) == 1:
        index = 0
    else:
        return message
    return items[index].label + message[match.end():]


def _without_own_label(message: str, item) -> str:
    """An error message renumbered for `item`, with its leading "input N: " dropped (the error line has it)."""
    message = renumber(message, [item])
    prefix = item.label + ": "
    return message[len(prefix):] if message.startswith(prefix) else message


def _call(run_batch, items):
    """run_batch on the items' values, its warnings told once each in the command's numbering."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return run_batch([item.value for item in items])
        finally:
            for warning in caught:
                notice("warning", renumber(one_line(warning.message), items), once=True)


def serve(inputs, run_batch, writer, batch_size=1, prepare=None, progress=None) -> int:
    """Run every input through `run_batch(values) -> results`, `batch_size` inputs at a time, writing each batch's
    records and error lines as soon as it is done. `prepare(text) -> value` may raise ValueError/UsageError for an
    input that cannot be served; so may run_batch, and then the batch is retried one input at a time, so that only
    the bad ones fail. Returns the exit status (0, or 1 when some input failed)."""
    failed = done = 0

    def finish_batch(batch):
        nonlocal failed, done
        ready = [item for item in batch if item.error is None]
        if ready:
            try:
                for item, result in zip(ready, _call(run_batch, ready)):
                    item.result = result
            except ValueError:  # one bad input: serve the others one by one, report the bad ones
                for item in ready:
                    try:
                        (item.result,) = _call(run_batch, [item])
                    except ValueError as err:
                        item.error = _without_own_label(one_line(err), item)
        for item in batch:
            if item.error is not None:
                failed += 1
                notice("error", f"{item.label}: {item.error}")
            writer.record(item)
        writer.flush()
        done += len(batch)
        if progress is not None:
            progress.update(done, batch[-1].consumed)

    batch, ready = [], 0
    try:
        for item in inputs:
            if item.error is None:
                try:
                    item.value = prepare(item.text) if prepare is not None else item.text
                except (ValueError, UsageError) as err:
                    item.error = one_line(err)
            batch.append(item)
            ready += item.error is None
            if ready >= batch_size:
                finish_batch(batch)
                batch, ready = [], 0
        if batch:
            finish_batch(batch)
    except KeyboardInterrupt:
        writer.close()
        written = writer.count
        raise Interrupted(f"interrupted; the results of the first {written} input(s) were written" if written else
                          "interrupted before any result was written") from None
    finally:
        if progress is not None:
            progress.finish()
    writer.close()
    return 1 if failed else 0


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


class Writer:
    """One {"input", "result" | "error"} record per item on stdout: a jsonl line, an element of one json list
    (opened with the first record, closed by `close`), or a block headed "> input" (`table(result)` lays it out)."""

    def __init__(self, fmt, table, out=None):
        self.fmt, self.table, self.out = fmt, table, out if out is not None else sys.stdout
        self.count, self.closed = 0, False

    def record(self, item):
        shown = item.value if item.value is not None else item.text
        record = {"input": plain(shown)}
        record.update({"error": item.error} if item.error is not None else {"result": plain(item.result)})
        first = self.count == 0
        self.count += 1  # counted before the write: once its text can be read, the record is counted
        if self.fmt == "jsonl":
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif self.fmt == "json":  # the text json.dumps(records, indent=1) gives, one record at a time
            body = "\n".join(" " + line for line in json.dumps(record, ensure_ascii=False, indent=1).split("\n"))
            self.out.write(("[\n" if first else ",\n") + body)
        else:
            if not first:
                self.out.write("\n")
            self.out.write(f"> {shown if isinstance(shown, str) else ' | '.join(shown)}\n")
            self.out.write(f"  error: {item.error}\n" if item.error is not None else self.table(record["result"]))

    def flush(self):
        self.out.flush()

    def close(self):
        if not self.closed:
            self.closed = True
            if self.fmt == "json":
                self.out.write("\n]\n" if self.count else "[]\n")
            self.out.flush()


def table_rows(header, body):
    """Left-aligned columns, indented by two spaces, one line per row of `body` under the header."""
    widths = [max(len(str(x)) for x in column) for column in zip(header, *body)] if body else [len(h) for h in header]
    lines = ["  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip()]
    for row in body:
        lines.append("  " + "  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    return "\n".join(lines) + "\n"


# --- progress -----------------------------------------------------------------------------------------------------
def duration(seconds) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """`[#####.....] 600/2000  41.3/s  0:34 left` redrawn in place on stderr after each batch.

    The fraction done is counted in inputs when their number is known (arguments), in bytes when standard input
    is a regular file (`< file`), and not at all on a pipe (then only the count and the rate are shown). With
    `after` > 0 (the automatic mode) nothing is drawn until that many inputs are done: short runs stay silent.
    """

    def __init__(self, total=None, size=None, after=0, width=24, stream=None, clock=time.monotonic):
        self.total, self.size, self.after, self.width = total, size, after, width
        self.stream = stream if stream is not None else sys.stderr
        self.clock, self.start, self.shown = clock, clock(), 0
        self.drawn, self.last, self.pending = float("-inf"), None, False
        _state["progress"] = self

    def line(self, done, consumed=0) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = done / elapsed
        if self.total:
            fraction, count = done / self.total, f"{done}/{self.total}"
        elif self.size:
            fraction, count = min(consumed / self.size, 1.0), f"{done} inputs, {min(consumed / self.size, 1):.0%}"
        else:
            fraction, count = None, f"{done} inputs"
        parts = [count, f"{rate:.1f}/s" if rate < 100 else f"{rate:.0f}/s"]
        if fraction is not None:
            filled = int(self.width * fraction)
            parts.insert(0, f"[{'#' * filled}{'.' * (self.width - filled)}]")
            if 0 < fraction < 1:
                parts.append(f"{duration(elapsed * (1 - fraction) / fraction)} left")
            elif fraction >= 1:
                parts.append(f"done in {duration(elapsed)}")
        return "  ".join(parts)

    def update(self, done, consumed=0):
        self.last = (done, consumed)
        if done <= self.after:
            return
        if self.clock() - self.drawn < 0.1:  # at most ten redraws a second; finish() draws the last count
            self.pending = True
            return
        self.draw(done, consumed)

    def draw(self, done, consumed):
        self.drawn, self.pending = self.clock(), False
        text = self.line(done, consumed)
        try:
            self.stream.write("\r" + text.ljust(self.shown))
            self.stream.flush()
        except (OSError, ValueError):
            return
        self.shown = len(text)

    def clear(self):
        if self.shown:
            try:
                self.stream.write("\r" + " " * self.shown + "\r")
            except (OSError, ValueError):
                pass
            self.shown = 0

    def finish(self):
        if self.pending:
            self.draw(*self.last)
        if self.shown:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self.shown = 0
        _state["progress"] = None


def progress_for(args, inputs: Inputs, batch_size: int):
    """The progress line --progress asks for (default: on a terminal, once more than one batch is done)."""
    if args.progress is False or (args.progress is None and not sys.stderr.isatty()):
        return None
    if args.progress is None and inputs.total is not None and inputs.total <= batch_size:
        return None
    return Progress(inputs.total, inputs.size, after=0 if args.progress else batch_size)
