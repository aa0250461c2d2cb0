"""Re-execute the teaching notebooks in notebooks/ and save them WITH their outputs (dev tool).

The notebooks are stored executed so that they read well where .ipynb files are rendered; this script
refreshes those outputs after a change to a notebook or to xlmr_np. tests/test_notebooks.py executes the
same notebooks (without saving) so that a change which breaks one fails the test suite.

Each notebook runs in a fresh `python3` kernel (ipykernel) whose working directory is notebooks/ and whose
PYTHONPATH starts with the repository root, so an uninstalled checkout works too. Execution timestamps are
not recorded, so re-running on unchanged code and data rewrites the same cells.

    python tools/run_notebooks.py                       # all notebooks, in place
    python tools/run_notebooks.py notebooks/03_attention.ipynb
    python tools/run_notebooks.py --check               # execute, report, write nothing (exit 1 on an error)

Needs nbclient, nbformat, ipykernel and matplotlib (pip install nbclient nbformat ipykernel matplotlib).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT_S = 120  # per cell; the slowest cell takes a few seconds on a laptop


def kernel_environment() -> dict:
    """The environment the kernel inherits: the checkout importable, one BLAS thread, no GUI backend."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("OMP_NUM_THREADS", "1")  # same numbers on every machine and no fight for the 2 CI cores
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="execute only; do not write the outputs back")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks under {NOTEBOOKS}")
        return 2
    import nbformat
    from nbclient.exceptions import CellExecutionError

    failed = 0
    for path in paths:
        start = time.perf_counter()
        try:
            nb = execute(path.resolve(), args.timeout)
        except CellExecutionError as err:
            failed += 1
            print(f"FAIL {path}: {str(err)[-2000:]}")
            continue
        if not args.check:
            nbformat.write(nb, path)
        print(f"ok   {path}  {time.perf_counter() - start:5.1f} s{'' if args.check else '  (saved)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
