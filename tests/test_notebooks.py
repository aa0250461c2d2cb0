"""The teaching notebooks in notebooks/ run from top to bottom without an error, and are stored executed.

Each notebook is executed in a fresh python3 kernel by tools/run_notebooks.py's `execute` (working directory
notebooks/, the checkout on PYTHONPATH), so a change to xlmr_np that breaks a notebook fails here. The
notebooks check their own numbers against Hugging Face goldens as they go (each prints its max |diff|), and
some cells assert; this file only demands that every cell runs. Skipped, with the reason, where the
notebook runner (nbclient, nbformat, ipykernel) is not installed: `pip install -e ".[test]"` brings it.
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

for module in ("nbclient", "nbformat", "ipykernel"):
    pytest.importorskip(module, reason=f"{module} is needed to execute the notebooks (pip install nbclient "
                                       f"nbformat ipykernel matplotlib, or the [test] extra)")
import nbformat  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

_spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebooks)

CELL_TIMEOUT_S = 60  # the slowest cell takes ~3 s; a hang must not stall the suite


def test_notebooks_exist():
    names = {path.name for path in NOTEBOOKS}
    expected = {"00_quickstart.ipynb", "01_tokenizer.ipynb", "02_embeddings_positions.ipynb", "03_attention.ipynb",
                "04_layer_norm_gelu.ipynb", "05_heads.ipynb", "06_numerics_audit.ipynb"}
    assert expected <= names, f"missing notebooks: {sorted(expected - names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed(path):
    """Stored with outputs (they are read on GitHub), in order, with no error output saved, using the package."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert any("import xlmr_np" in cell.source for cell in code), f"{path.name} must import xlmr_np"
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name} is not stored fully executed in order (execution counts {counts}): "
        f"run python tools/run_notebooks.py {path.relative_to(ROOT)}")
    errors = [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"{path.name} was saved with an error output: {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path):
    start = time.perf_counter()
    try:
        run_notebooks.execute(path, timeout=CELL_TIMEOUT_S)
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed to execute:\n{err}", pytrace=False)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
