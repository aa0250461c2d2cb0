"""Shared test fixtures: paths to the goldens, and the tolerance policy (defined once, in xlmr_np/audit/goldens.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from xlmr_np.audit.goldens import find_cases, tolerance_for  # noqa: F401  (tolerance_for is re-exported for tests)

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "reference_outputs" / "cases"
CASES = find_cases(CASES_DIR)


def case_dir(name: str) -> Path:
    path = CASES_DIR / name
    if not (path / "case.json").exists():
        pytest.fail(f"golden case {name} is missing: run python tools/make_reference_outputs.py")
    return path

