"""The teaching notebooks in notebooks/: they run, their exercises are checked, and their stored outputs are fresh.

Each notebook is executed in a fresh python3 kernel by tools/run_notebooks.py's `execute` (working directory
notebooks/, the checkout on PYTHONPATH, one BLAS thread), with the exercises' solutions in place, so a change
to xlmr_np that breaks a notebook, or a solution that no longer passes its check, fails here. The fresh
outputs must equal the stored ones (`run_notebooks.compare`: the same text, integers exactly, decimals to
1e-3 relative or one unit in the last printed digit, float32 rounding measurements below 1e-4 to a decade);
after a change, `python tools/run_notebooks.py` refreshes them.

Structure, checked without running anything: every notebook has at least 3 exercises, each an `exercise` cell
(a stub) followed by a `solution` cell (hidden in JupyterLab) and a `check` cell that asserts; at least one
figure; no stderr output (warnings are noise to a student); and its last code cell is a check.
Skipped, with the reason, where the notebook runner (nbclient, nbformat, ipykernel) is not installed:
`pip install -e ".[test]"` brings it.
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

CELL_TIMEOUT_S = 60  # the slowest cell takes a few seconds; a hang must not stall the suite
EXPECTED = {"00_quickstart", "01_tokenizer", "02_embeddings_positions", "03_attention", "04_layer_norm_gelu",
            "05_heads", "06_numerics_audit", "07_from_scratch", "08_generation"}


def tags(cell) -> list:
    return cell.metadata.get("tags", [])


def test_notebooks_exist():
    names = {path.stem for path in NOTEBOOKS}
    assert EXPECTED <= names, f"missing notebooks: {sorted(EXPECTED - names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed(path):
    """Stored with outputs (they are read on GitHub), in order, with no error or stderr output, using the package."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert any("import xlmr_np" in cell.source for cell in code), f"{path.name} must import xlmr_np"
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name} is not stored fully executed in order (execution counts {counts}): "
        f"run python tools/run_notebooks.py {path.relative_to(ROOT)}")
    errors = [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"{path.name} was saved with an error output: {errors[0].ename}: {errors[0].evalue}"
    stderr = [(i, o.text[:200]) for i, cell in enumerate(code, 1) for o in cell.outputs
              if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{path.name}: code cell {stderr[0][0]} writes to stderr: {stderr[0][1]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_exercises_figures_and_a_final_check(path):
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    exercises = [i for i, cell in enumerate(code) if "exercise" in tags(cell)]
    assert len(exercises) >= 3, f"{path.name} has {len(exercises)} exercises; at least 3 are expected"
    for i in exercises:
        assert i + 2 < len(code) and "solution" in tags(code[i + 1]) and "check" in tags(code[i + 2]), (
            f"{path.name}: exercise cell {i + 1} must be followed by a `solution` and then a `check` cell")
        assert code[i + 1].metadata.get("jupyter", {}).get("source_hidden"), (
            f"{path.name}: solution cell {i + 2} should be collapsed (metadata jupyter.source_hidden)")
    for i, cell in enumerate(code):
        if "check" in tags(cell):
            assert "assert" in cell.source, f"{path.name}: check cell {i + 1} asserts nothing"
    assert "check" in tags(code[-1]), f"{path.name} must end with a check against the reference"
    figures = sum("image/png" in o.get("data", {}) for cell in code for o in cell.outputs)
    assert figures >= 1, f"{path.name} has no figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_and_outputs_are_fresh(path):
    start = time.perf_counter()
    try:
        fresh = run_notebooks.execute(path, timeout=CELL_TIMEOUT_S)
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed to execute:\n{err}", pytrace=False)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    problems = run_notebooks.compare(nbformat.read(path, as_version=4), fresh)
    assert not problems, (f"{path.name}'s stored outputs are stale (refresh: python tools/run_notebooks.py "
                          f"{path.relative_to(ROOT)}):\n" + "\n".join(problems[:10]))


def test_compare_tolerances():
    agree = run_notebooks.texts_agree
    assert agree("max |diff| = 4.8e-06 ok", "max |diff| = 5.3e-06 ok")  # float32 noise: the same decade
    assert not agree("max |diff| = 4.8e-06", "max |diff| = 4.8e-03")
    assert agree("p = 0.0280", "p = 0.0281") and not agree("p = 0.0280", "p = 0.0300")
    assert not agree("rank 3 of 12,002", "rank 4 of 12,002")  # integers exactly
    assert not agree("top-1 'ed'", "top-1 'ing'")


def test_student_copy_drops_solutions():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    student = run_notebooks.student_copy(nb)
    assert not any("solution" in tags(c) for c in student.cells)
    assert sum("exercise" in tags(c) for c in student.cells) == sum("exercise" in tags(c) for c in nb.cells)
    assert all(not c.outputs for c in student.cells if c.cell_type == "code")
