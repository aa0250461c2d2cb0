"""Re-execute the teaching notebooks in notebooks/ and save them WITH their outputs (dev tool).

The notebooks are stored executed so that they read well where .ipynb files are rendered; this script
refreshes those outputs after a change to a notebook or to xlmr_np. tests/test_notebooks.py executes the
same notebooks (without saving) and fails when a stored output differs from the fresh run (`compare`).

Each notebook runs in a fresh `python3` kernel (ipykernel) whose working directory is notebooks/ and whose
PYTHONPATH starts with the repository root, so an uninstalled checkout works too. The kernel gets ONE BLAS
thread whatever the caller's environment says: float32 sums depend on how BLAS splits them across threads,
and the stored numbers must be the ones a fresh run prints. Execution timestamps are not recorded, so
re-running on unchanged code and data rewrites the same cells.

    python tools/run_notebooks.py                       # all notebooks, in place
    python tools/run_notebooks.py notebooks/03_attention.ipynb
    python tools/run_notebooks.py --check               # execute, compare with the stored outputs, write nothing
    python tools/run_notebooks.py --student DIR         # copies without the solution cells and outputs, for a class

Needs nbclient, nbformat, ipykernel and matplotlib (pip install nbclient nbformat ipykernel matplotlib).
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT_S = 120  # per cell; the slowest cell takes a few seconds on a laptop
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "XLMR_NP_THREADS": "1"}


def kernel_environment() -> dict:
    """The environment the kernel inherits: the checkout importable, one BLAS thread, no GUI backend."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(ONE_THREAD)  # forced, not defaulted: CI runs with OMP_NUM_THREADS=2 and the outputs must not move
    env["PYTHONHASHSEED"] = "0"  # set and dict orders of strings fixed between runs
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return env


def execute(path: Path, timeout: int = CELL_TIMEOUT_S):
    """Execute one notebook in a fresh kernel; returns the executed NotebookNode (raises on a cell error)."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as err:
        raise SystemExit(f"{err}: install the notebook runner with "
                         f"`pip install nbclient nbformat ipykernel matplotlib`") from None
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=kernel_environment())  # passed on to jupyter_client's start_kernel
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata.get("language_info", {}).pop("version", None)  # keep files identical across patch versions
    return nb


# --- stored outputs against a fresh run ----------------------------------------------------------------------
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
NOISE_LEVEL = 1e-4  # below this, printed numbers are rounding measurements (max |diff| ...): same decade suffices
RTOL = 1e-3


def _last_digit(text: str) -> float:
    """One unit in the last printed digit of a number: '4.8e-06' -> 1e-07, '0.0280' -> 1e-04, '12' -> 1."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(stored: str, fresh: str) -> bool:
    """Integers exactly; decimals to RTOL or one unit in the last printed digit; rounding noise to a decade."""
    if stored == fresh:
        return True
    if not any(ch in stored + fresh for ch in ".eE"):
        return False  # counts, ids, shapes
    a, b = float(stored), float(fresh)
    if max(abs(a), abs(b)) < NOISE_LEVEL:  # float32 noise: its digits depend on the CPU's BLAS kernels
        return a == b or (a != 0 and b != 0 and abs(math.log10(abs(a)) - math.log10(abs(b))) <= 1)
    return abs(a - b) <= max(RTOL * max(abs(a), abs(b)), _last_digit(stored) * 1.0001)


def texts_agree(stored: str, fresh: str) -> bool:
    """The same text around the numbers, and every number agreeing (numbers_agree)."""
    if stored == fresh:
        return True
    if NUMBER.split(stored) != NUMBER.split(fresh):
        return False
    pairs = list(zip(NUMBER.findall(stored), NUMBER.findall(fresh)))
    return all(numbers_agree(a, b) for a, b in pairs)


def _summary(cell) -> list:
    """A code cell's outputs as comparable (kind, text) pairs; stream chunks joined, images counted."""
    streams, items = {}, []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            streams[out.name] = streams.get(out.name, "") + out.text
        elif out.output_type in ("execute_result", "display_data"):
            items.append(("image", "") if "image/png" in out.data else ("text", out.data.get("text/plain", "")))
        elif out.output_type == "error":
            items.append(("error", f"{out.ename}: {out.evalue}"))
    return [(f"stream:{name}", text) for name, text in sorted(streams.items())] + items


def compare(stored, fresh) -> list[str]:
    """Where a stored notebook's outputs differ from a fresh execution of it (empty: they agree)."""
    problems = []
    old = [c for c in stored.cells if c.cell_type == "code"]
    new = [c for c in fresh.cells if c.cell_type == "code"]
    if len(old) != len(new):
        return [f"{len(old)} code cells stored, {len(new)} executed"]
    for index, (a, b) in enumerate(zip(old, new), start=1):
        sa, sb = _summary(a), _summary(b)
        if [kind for kind, _ in sa] != [kind for kind, _ in sb]:
            problems.append(f"code cell {index}: output kinds {[k for k, _ in sa]} stored, {[k for k, _ in sb]} now")
            continue
        for (kind, ta), (_, tb) in zip(sa, sb):
            if not texts_agree(ta, tb):
                line = next((x, y) for x, y in zip(ta.splitlines() + [""], tb.splitlines() + [""]) if x != y)
                problems.append(f"code cell {index} ({kind}): stored {line[0]!r} but a fresh run prints {line[1]!r}")
    return problems


def student_copy(nb):
    """The notebook without its solution cells and with no outputs: the exercises' stubs stay."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if "solution" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true",
                        help="execute and compare with the stored outputs; write nothing (exit 1 on an error or a difference)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds allowed per cell")
    parser.add_argument("--student", type=Path, metavar="DIR", help="write copies without solutions to DIR; run nothing")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks under {NOTEBOOKS}")
        return 2
    import nbformat
    from nbclient.exceptions import CellExecutionError

    if args.student:
        args.student.mkdir(parents=True, exist_ok=True)
        for path in paths:
            nbformat.write(student_copy(nbformat.read(path, as_version=4)), args.student / path.name)
            print(f"wrote {args.student / path.name}")
        return 0
    failed = 0
    for path in paths:
        start = time.perf_counter()
        try:
            nb = execute(path.resolve(), args.timeout)
        except CellExecutionError as err:
            failed += 1
            print(f"FAIL {path}: {str(err)[-2000:]}")
            continue
        took = time.perf_counter() - start
        if args.check:
            problems = compare(nbformat.read(path, as_version=4), nb)
            failed += bool(problems)
            print(f"{'STALE' if problems else 'ok   '} {path}  {took:5.1f} s" + "".join(f"\n    {p}" for p in problems))
        else:
            nbformat.write(nb, path)
            print(f"ok   {path}  {took:5.1f} s  (saved)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
