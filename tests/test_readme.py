"""The README is true as written: every Python snippet runs from the repository root, and the fill-mask run
it shows is what the command prints today."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_the_readme_has_python_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_python_snippet_runs_as_written(index):
    result = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", SNIPPETS[index]],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, f"snippet {index} failed:\n{SNIPPETS[index]}\n{result.stderr[-3000:]}"


def test_the_fill_mask_run_shown_is_what_the_command_prints():
    command = re.search(r"A real run of `python -m xlmr_np fill-mask --format table\n?\"(.*?)\"`:", README, flags=re.S)
    assert command, "the README no longer shows a fill-mask run"
    shown = re.search(r"`:\n\n```\n(.*?)```", README[command.start():], flags=re.S).group(1)
    result = subprocess.run([sys.executable, "-m", "xlmr_np", "fill-mask", "--format", "table", command.group(1)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == shown.strip()
