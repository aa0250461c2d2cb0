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


# --- the Learn section's Colab and Binder badges --------------------------------------------------------------------
def project_url() -> str:
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config["metadata"]["url"]


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_every_notebook_is_listed_with_colab_and_binder_badges_to_the_project_url():
    owner_repo = project_url().removeprefix("https://github.com/")
    learn = README[README.index("## Learn"):README.index("\n## ", README.index("## Learn") + 1)]
    for name in NOTEBOOKS:
        line = next((l for l in learn.splitlines() if f"](notebooks/{name})" in l), None)
        assert line, f"{name} is not listed in the README's Learn section"
        assert (f"(https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{name})" in line), line
        assert f"(https://mybinder.org/v2/gh/{owner_repo}/main?labpath=notebooks%2F{name})" in line, line
    linked = re.findall(r"\]\(notebooks/(\d\d_\w+\.ipynb)\)", learn)
    assert linked == NOTEBOOKS, "the Learn section lists the notebooks in reading order, each once"


def test_binder_installs_an_extra_that_setup_cfg_defines():
    import configparser

    post_build = (ROOT / "binder" / "postBuild").read_text()
    extra = re.search(r'pip install .*-e "\.\[(\w+)\]"', post_build).group(1)
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert extra in config["options.extras_require"]
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "repo2docker runs postBuild only if executable"


def setup_cell(name: str) -> str:
    import json

    cells = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_opened_in_colab_the_setup_cell_clones_the_project_and_uses_the_clone(name, tmp_path, monkeypatch):
    """Outside a checkout (Colab's /content), the first cell clones setup.cfg's url and reads from the clone."""
    import types

    cloned = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: cloned.append(command))
    namespace: dict = {}
    exec(compile(setup_cell(name), name, "exec"), namespace)
    assert cloned == [["git", "clone", "--depth", "1", project_url(), "/content/xlmr_np"]]
    assert namespace["ROOT"] == Path("/content/xlmr_np") and namespace["DEMO"] == Path("/content/xlmr_np/models/xlmr-demo")


@pytest.mark.parametrize("name", NOTEBOOKS[:1])
def test_outside_a_checkout_and_outside_colab_the_setup_cell_says_what_to_do(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    with pytest.raises(RuntimeError, match="open it inside a checkout of xlmr_np"):
        exec(compile(setup_cell(name), name, "exec"), {})
