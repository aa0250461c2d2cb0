"""Fuzzing across implementations: seeded random batches, their program against ours, the smallest failing case.

`python -m xlmr_np fuzz --model DIR --command "THEIR_PROGRAM {inputs} {outputs}" --cases N --seed S` (the command
in xlmr_np/cli/fuzz.py) runs `fuzz(...)` here:

1. `draw_case(cfg, rng, ...)` draws a batch: 1-4 rows, lengths from 1 up to the longest the position table
   allows (max_position_embeddings - pad_token_id - 1, as HF's create_position_ids_from_input_ids counts from
   pad_token_id + 1), token ids from the vocabulary except the pad id, padding on the left or on the right, token
   types (a first and a second segment) when type_vocab_size > 1. Case k of seed S is drawn from
   numpy.random.default_rng([S, k]), so it is the same case on every machine and in every run.
2. `run_program` writes its inputs .npz (input_ids, attention_mask, token_type_ids: int64 [B, T]), runs their
   command with the two paths substituted (split like a shell would, with shlex, and run WITHOUT a shell; with a
   time limit; the whole process group is killed at the limit) and reads their outputs .npz: the final outputs
   under Hugging Face's field names (last_hidden_state, pooler_output, logits, ...), optionally intermediates
   under trace names (hidden_states.k, layers.i, ...).
3. Their outputs are compared with our trace on the same inputs by xlmr_np.audit.compare.compare under the
   preset of --dtype (tolerance from our values, pad positions not compared, NaN/Inf fails), expecting our
   output fields (expect="fields": last_hidden_state, pooler_output, logits, ...); intermediates they add under
   trace names are compared too. A non-zero exit (with their stderr's last lines), a time-out, a missing or
   unreadable outputs file, and outputs that cannot be compared (an output field missing, no name in common, a
   shape that differs) are failures too.
4. At the first failure, `shrink` looks for a smaller case that fails the same way: fewer rows, shorter rows,
   less padding, one at a time, keeping each change that still fails, until none does. The smallest is saved as
   an .npz that `trace --inputs` replays (their outputs beside it, `.theirs.npz`, for `trace --against`):
   `replay_command` is that command line, with the same --expect and tolerance.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .compare import compare
from .trace import read_trace, trace

EXPECT = "fields"  # what their program must write: our output fields (compare.FIELD_NAMES)
PLACEHOLDERS = ("{inputs}", "{outputs}")


# --- drawing cases ----------------------------------------------------------------------------------------------
@dataclass
class Case:
    """A batch as rows of real tokens (and their token types), padded on one side to `width`."""
    rows: list
    types: list
    side: str  # "left" or "right"
    width: int
    pad: int

    def arrays(self) -> dict:
        batch = len(self.rows)
        ids = np.full((batch, self.width), self.pad, dtype=np.int64)  # [B, T]
        mask = np.zeros((batch, self.width), dtype=np.int64)          # [B, T]
        types = np.zeros((batch, self.width), dtype=np.int64)         # [B, T]
        for b, (row, row_types) in enumerate(zip(self.rows, self.types)):
            n = len(row)
            where = slice(self.width - n, self.width) if self.side == "left" else slice(0, n)
            ids[b, where], mask[b, where], types[b, where] = row, 1, row_types
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def size(self) -> tuple:
        return (len(self.rows), self.width, sum(len(r) for r in self.rows))

    def describe(self) -> str:
        lengths = ", ".join(str(len(r)) for r in self.rows)
        return f"{len(self.rows)} row(s) of {self.width} tokens, {self.side} padding, real lengths {lengths}"


def longest_sequence(cfg) -> int:
    """The most tokens a row may have: HF numbers positions pad+1, pad+2, ... and the table has
    max_position_embeddings rows."""
    return int(cfg.max_position_embeddings) - int(cfg.pad_token_id) - 1


def draw_case(cfg, rng, max_length=None, max_batch=4) -> Case:
    limit = longest_sequence(cfg) if max_length is None else min(int(max_length), longest_sequence(cfg))
    if limit < 1:
        raise ValueError(f"no room for a token: max_position_embeddings {cfg.max_position_embeddings} with "
                         f"pad_token_id {cfg.pad_token_id} leaves {limit} positions")
    batch = int(rng.integers(1, max_batch + 1))
    # mostly short batches (fast, and where most bugs already show), sometimes the longest the model takes
    width = limit if rng.random() < 0.15 else int(rng.integers(1, min(limit, 32) + 1))
    lengths = [int(rng.integers(1, width + 1)) for _ in range(batch)]
    lengths[int(rng.integers(batch))] = width  # one row fills the batch
    vocabulary = [t for t in range(int(cfg.vocab_size)) if t != cfg.pad_token_id]
    rows, types = [], []
    for n in lengths:
        rows.append([int(vocabulary[i]) for i in rng.integers(0, len(vocabulary), n)])
        second = int(rng.integers(1, n + 1)) if cfg.type_vocab_size > 1 and n > 1 and rng.random() < 0.6 else n
        types.append([0] * second + [1] * (n - second))  # segment A, then segment B
    return Case(rows, types, "left" if rng.random() < 0.5 else "right", width, int(cfg.pad_token_id))


# --- running their program --------------------------------------------------------------------------------------
def parse_command(command: str) -> list:
    """The command line as arguments (shlex, no shell); ValueError unless it names {inputs} and {outputs}."""
    try:
        words = shlex.split(command)
    except ValueError as err:
        raise ValueError(f"--command {command!r}: cannot split it into words ({err})") from None
    if not words:
        raise ValueError("--command is empty: give e.g. --command \"./my_port {inputs} {outputs}\"")
    joined = " ".join(words)
    absent = [p for p in PLACEHOLDERS if p not in joined]
    if absent:
        raise ValueError(f"--command {command!r} lacks {' and '.join(absent)}: it must name the inputs .npz to read "
                         f"and the outputs .npz to write, e.g. \"./my_port {{inputs}} {{outputs}}\"")
    return words


@dataclass
class Outcome:
    """One case: `kind` is "ok", "diverged" (over tolerance, or NaN/Inf), "unusable" (outputs that cannot be
    compared: the report's usage problems), "crashed", "timeout" or "no-output"; `detail` says why."""
    kind: str
    detail: str = ""
    report: object = None  # the compare.Report, when their outputs were compared
    theirs: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def _tail(text, lines=5) -> str:
    text = (text or b"").decode("utf-8", "replace") if isinstance(text, bytes) else (text or "")
    return " | ".join(line for line in text.strip().splitlines()[-lines:])


def run_program(words: list, inputs: dict, workdir, timeout: float):
    """Write `inputs`, run their program on them, read what it wrote: (Outcome or None, their arrays)."""
    workdir = Path(workdir)
    in_path, out_path = workdir / "inputs.npz", workdir / "outputs.npz"
    if out_path.exists():
        out_path.unlink()
    np.savez(in_path, **inputs)
    args = [w.replace("{inputs}", str(in_path)).replace("{outputs}", str(out_path)) for w in words]
    # Their stdout is dropped and their stderr goes to a file of which only the tail is read: pipes kept all
    # they printed in memory, and a process they left behind holding a pipe made us wait past the timeout.
    with open(workdir / "stderr.txt", "w+b") as stderr_file:
        try:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=stderr_file, start_new_session=True)
        except FileNotFoundError:
            raise ValueError(f"--command: program {args[0]!r} not found") from None
        except PermissionError:
            raise ValueError(f"--command: program {args[0]!r} is not executable") from None
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # their program and whatever it started in its group
            process.wait()
            return Outcome("timeout", f"their program did not finish within {timeout:g} s"), {}
        stderr_file.seek(max(0, stderr_file.seek(0, os.SEEK_END) - 1000))
        stderr = stderr_file.read()
    if process.returncode != 0:
        return Outcome("crashed", f"their program exited with status {process.returncode}"
                                  + (f": {_tail(stderr)}" if _tail(stderr) else "")), {}
    if not out_path.is_file():
        return Outcome("no-output", f"their program exited 0 but wrote no {out_path.name} (the {{outputs}} path)"), {}
    try:
        theirs = read_trace(out_path)
    except ValueError as err:
        return Outcome("no-output", f"their outputs are unreadable: {err}"), {}
    return None, theirs


def run_case(words, case: Case, model, workdir, timeout, dtype) -> Outcome:
    inputs = case.arrays()
    outcome, theirs = run_program(words, inputs, workdir, timeout)
    if outcome is not None:
        return outcome
    ours = trace(model, **inputs)
    try:
        report = compare(ours, theirs, dtype, where=inputs["attention_mask"], expect=EXPECT)
    except (TypeError, ValueError) as err:  # an array of strings or other non-numbers
        return Outcome("unusable", f"their outputs: {err}", theirs=theirs)
    if report.exit_code == 2:
        return Outcome("unusable", "their outputs cannot be compared: " + "; ".join(report.usage_problems),
                       report, theirs)
    first = report.first_divergence
    if first is not None:
        what = (f"{first.nonfinite} NaN/Inf at compared positions" if first.status == "nonfinite" else
                f"max |d| {first.max_abs:.3g} > tolerance {first.tolerance:.2g}")
        return Outcome("diverged", f"{first.name} differs: {what} at {list(first.worst_index)}", report, theirs)
    return Outcome("ok", f"{len(report.points)} arrays agree", report, theirs)


# --- shrinking --------------------------------------------------------------------------------------------------
def smaller_cases(case: Case):
    """Candidates one step smaller than `case`, most promising (smallest) first."""
    if len(case.rows) > 1:
        for b in range(len(case.rows)):  # one row alone
            yield Case([case.rows[b]], [case.types[b]], case.side, case.width, case.pad)
        for b in range(len(case.rows)):  # all rows but one
            keep = [i for i in range(len(case.rows)) if i != b]
            yield Case([case.rows[i] for i in keep], [case.types[i] for i in keep], case.side, case.width, case.pad)
    longest = max(len(r) for r in case.rows)
    for width in sorted({longest, longest + 1, (case.width + longest) // 2, case.width - 1}):  # less padding
        if longest <= width < case.width:
            yield Case(case.rows, case.types, case.side, width, case.pad)
    for b, row in enumerate(case.rows):  # shorter rows, in the same width (the padding may be what matters)
        for n in sorted({1, len(row) // 4, len(row) // 2, len(row) - 1}):
            if 1 <= n < len(row):
                rows, types = list(case.rows), list(case.types)
                rows[b], types[b] = row[:n], case.types[b][:n]
                yield Case(rows, types, case.side, case.width, case.pad)


def shrink(case: Case, failure: Outcome, attempt, budget_runs=60, budget_s=120.0):
    """The smallest case found that fails the same way as `case` (`attempt(case) -> Outcome`), with its outcome
    and the number of runs spent."""
    runs, start = 0, time.monotonic()
    improved = True
    while improved and runs < budget_runs and time.monotonic() - start < budget_s:
        improved = False
        for candidate in smaller_cases(case):
            if candidate.size() >= case.size():
                continue
            runs += 1
            outcome = attempt(candidate)
            if outcome.kind == failure.kind:
                case, failure, improved = candidate, outcome, True
                break
            if runs >= budget_runs or time.monotonic() - start >= budget_s:
                break
    return case, failure, runs


# --- the whole run ----------------------------------------------------------------------------------------------
@dataclass
class FuzzResult:
    cases_run: int
    failure: object = None  # Outcome of the smallest failing case
    first_case: object = None  # the failing case as drawn
    smallest: object = None  # the smallest failing case found
    case_index: int = -1
    shrink_runs: int = 0
    saved: object = None
    lines: list = field(default_factory=list)


def fuzz(model, cfg, command: str, cases=20, seed=0, max_length=None, timeout=60.0, dtype="float32", save=None,
         log=print) -> FuzzResult:
    """Run `cases` seeded cases through their program; stop at the first failure, shrink it and save it."""
    words = parse_command(command)
    with tempfile.TemporaryDirectory(prefix="xlmr-np-fuzz-") as workdir:
        def attempt(case):
            return run_case(words, case, model, workdir, timeout, dtype)

        for k in range(cases):
            case = draw_case(cfg, np.random.default_rng([seed, k]), max_length)
            outcome = attempt(case)
            log(f"case {k + 1}/{cases} (seed {seed}): {case.describe()}: "
                f"{'ok' if outcome.ok else outcome.kind.upper()} - {outcome.detail}")
            if outcome.ok:
                continue
            result = FuzzResult(k + 1, outcome, case, case, k)
            if outcome.kind == "timeout":
                log("not shrinking a time-out (each try would take the whole time limit)")
            else:
                log("shrinking: looking for the smallest case that fails the same way ...")
                result.smallest, result.failure, result.shrink_runs = shrink(case, outcome, attempt)
                log(f"smallest failing case after {result.shrink_runs} more runs: {result.smallest.describe()}: "
                    f"{result.failure.kind.upper()} - {result.failure.detail}")
            if save is not None:
                result.saved = save_case(save, result.smallest, result.failure)
            return result
    return FuzzResult(cases)


def free_path(path: Path) -> Path:
    """`path`, or path with .1, .2, ... before the suffix when it exists (a saved failure is never overwritten)."""
    path = Path(path)
    n = 0
    candidate = path
    while candidate.exists() or candidate.with_suffix(".theirs.npz").exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
    return candidate


def replay_command(model_dir, cls, saved: Path, dtype="float32") -> str:
    """The `trace` command line that replays a saved case: our trace on its inputs against their outputs, with
    the fuzz run's expectations (EXPECT) and dtype preset; paths quoted for a POSIX shell."""
    words = ["python", "-m", "xlmr_np", "trace", "--model", os.fspath(model_dir), "--class", cls,
             "--inputs", os.fspath(saved)]
    theirs = Path(saved).with_suffix(".theirs.npz")
    if theirs.exists():
        words += ["--against", os.fspath(theirs), "--expect", EXPECT]
    if dtype != "float32":
        words += ["--dtype", dtype]
    return " ".join(shlex.quote(w) for w in words)


def save_case(path, case: Case, outcome: Outcome) -> Path:
    """The failing inputs as PATH (an inputs .npz) and their outputs as PATH with .theirs.npz, if any."""
    path = free_path(Path(path))
    np.savez(path, **case.arrays())
    if outcome.theirs:
        np.savez(path.with_suffix(".theirs.npz"), **outcome.theirs)
    return path
