"""A regular (non-editable) install carries what the main job needs: the shipped models and the golden cases.

The wheel is built from this checkout and installed into a fresh virtual environment (sharing this
interpreter's site-packages for numpy and sentencepiece, so nothing is downloaded); `python -m xlmr_np
verify` and `fill-mask` then run from the filesystem root, where no checkout is in sight.
"""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from xlmr_np.audit.goldens import REPOSITORY_ONLY

ROOT = Path(__file__).resolve().parent.parent


def test_setup_cfg_installs_every_golden_case_but_the_repository_only_ones():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    targets = dict(parser.items("options.data_files"))
    installed = {Path(target).name for target in targets if "reference_outputs/cases" in target}
    cases = {p.name for p in (ROOT / "reference_outputs" / "cases").iterdir() if (p / "case.json").exists()}
    assert installed == cases - set(REPOSITORY_ONLY), sorted(installed ^ (cases - set(REPOSITORY_ONLY)))


@pytest.fixture(scope="module")
def installed_python(tmp_path_factory):
    work = tmp_path_factory.mktemp("install")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(work / "wheel"), str(ROOT)], capture_output=True, text=True)
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip().splitlines()[-1]}")
    assert build.returncode == 0, build.stderr
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(work / "venv")
    python = work / "venv" / "bin" / "python"
    wheel = next((work / "wheel").glob("xlmr_np-*.whl"))
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--prefix",
                              str(work / "venv"), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    assert Path(target, "xlmr_np", "core", "model.py").is_file()
    return python


def run_from_root(python, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLMR_NP_REFERENCE")}
    return subprocess.run([str(python), "-m", "xlmr_np", *args], capture_output=True, text=True, cwd="/", env=env,
                          timeout=300)


def test_verify_runs_from_a_regular_install(installed_python):
    result = run_from_root(installed_python, "verify", "--dtype", "float32")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "0 outside tolerance" in result.stdout
    assert "installed golden cases" in result.stdout and "real_width is in the repository only" in result.stdout
    assert "site-packages" not in result.stdout.split("ran ")[-1]  # the installed share/ folder, not a checkout


def test_the_demo_model_serves_fill_mask_from_a_regular_install(installed_python):
    result = run_from_root(installed_python, "fill-mask", "--top-k", "2", "Paris est la <mask> de la France.")
    assert result.returncode == 0, result.stderr
    assert '"token_str"' in result.stdout


def test_the_language_identifier_is_installed_and_serves_text_classification(installed_python):
    """The shipped classifier (models/xlmr-langid) goes into share/xlmr_np/models and is pipeline()'s default."""
    code = ("from xlmr_np import pipeline; p = pipeline('text-classification'); "
            "print(p.directory); print(p(['Die Datei wurde nicht gefunden.', 'Le fichier est introuvable.'])[0]['label'])")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLMR_NP_REFERENCE")}
    result = subprocess.run([str(installed_python), "-c", code], capture_output=True, text=True, cwd="/", env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    directory, label = result.stdout.split()
    assert Path(directory).parts[-4:] == ("share", "xlmr_np", "models", "xlmr-langid")
    assert "site-packages" not in directory and str(ROOT) not in directory
    assert label == "de"
    files = {p.name for p in Path(directory).iterdir()}
    assert {"config.json", "model.safetensors", "sentencepiece.bpe.model", "tokenizer_config.json",
            "special_tokens_map.json", "README.md"} <= files
