"""Writing a model directory (convert, save_pretrained) is all or nothing, and never lands on another model.

xlmr_np.weights.commit: every file goes to a temporary name and is renamed into place only when all
are complete; a destination that holds a model (config.json or any weight file) is refused unless
overwrite. A full disk is simulated by a writer that writes part of its file and raises ENOSPC."""

import errno
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import case_dir
from xlmr_np import XLMRobertaForMaskedLM, XLMRobertaModel, cli
from xlmr_np.errors import CheckpointError
from xlmr_np.weights import convert as xconvert
from xlmr_np.weights import keys as xkeys
from xlmr_np.weights.files import read_state_dict

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "reference_outputs" / "formats"


def _snapshot(directory):
    """{file name: sha256} of everything in `directory` (temporary files included)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(directory).iterdir())}


def _disk_full_on_call(n, real):
    """A stand-in for save_file whose n-th call writes half a file, then fails as a full disk does."""
    calls = []

    def save_file(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == n:
            Path(path).write_bytes(b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(tensors, path, metadata=metadata)

    return save_file


@pytest.mark.parametrize("source, shard_size, failing_call", [
    ("safetensors_sharded", "20KB", 2),  # the second shard of a sharded layout
    ("safetensors", "1GB", 1),           # the single model.safetensors
])
def test_convert_overwrite_on_a_full_disk_leaves_the_old_model(tmp_path, monkeypatch, source, shard_size,
                                                               failing_call):
    """Issue: --overwrite deleted the old weights first; a full disk left the destination with none."""
    dst = tmp_path / "out"
    xconvert.convert(GOLDEN / "pytorch", dst)
    before = _snapshot(dst)
    monkeypatch.setattr(xconvert, "save_file", _disk_full_on_call(failing_call, xconvert.save_file))
    with pytest.raises(OSError, match="No space left on device"):
        xconvert.convert(GOLDEN / source, dst, max_shard_size=shard_size, overwrite=True)
    assert _snapshot(dst) == before  # same files, same bytes, no temporary file left
    assert set(read_state_dict(dst)) == set(read_state_dict(GOLDEN / "pytorch"))


def test_convert_refuses_a_destination_holding_another_model(tmp_path, capsys):
    """Issue: without --overwrite, a folder holding another model's pytorch_model.bin silently got
    its config.json and tokenizer files replaced."""
    dst = tmp_path / "other"
    shutil.copytree(GOLDEN / "tf_base", dst)  # another model: a bare XLMRobertaModel
    shutil.copy(GOLDEN / "pytorch" / "pytorch_model.bin", dst / "pytorch_model.bin")
    before = _snapshot(dst)
    with pytest.raises(CheckpointError, match=r"already holds pytorch_model\.bin, tf_model\.h5, config\.json "
                                              r"\(a model\); pass overwrite=True to replace it"):
        xconvert.convert(GOLDEN / "safetensors", dst)
    assert cli.main(["convert", str(GOLDEN / "safetensors"), str(dst)]) == 2
    err = capsys.readouterr().err
    assert "pass --overwrite to replace it" in err and "overwrite=True" not in err
    assert _snapshot(dst) == before
    (dst / "pytorch_model.bin").unlink()
    (dst / "tf_model.h5").unlink()
    with pytest.raises(CheckpointError, match=r"already holds config\.json \(a model\)"):  # a config alone counts
        xconvert.convert(GOLDEN / "safetensors", dst)


def test_overwrite_replaces_the_old_layout_entirely(tmp_path):
    """Sharded after single and single after sharded: the old layout's files are removed, once the new
    ones are in place (a stale model.safetensors would shadow a new index; stale shards linger)."""
    dst = tmp_path / "out"
    xconvert.convert(GOLDEN / "pytorch", dst)
    xconvert.convert(GOLDEN / "pytorch", dst, max_shard_size="20KB", overwrite=True)
    sharded = sorted(p.name for p in dst.iterdir())
    assert "model.safetensors" not in sharded and "model.safetensors.index.json" in sharded
    xconvert.convert(GOLDEN / "pytorch", dst, overwrite=True)
    assert sorted(p.name for p in dst.iterdir()) == ["config.json", "model.safetensors"]
    want = read_state_dict(GOLDEN / "safetensors")
    got = read_state_dict(dst)
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_save_pretrained_on_a_full_disk_leaves_the_old_model(tmp_path, monkeypatch):
    """Issue: save_pretrained wrote config.json in place before the weights."""
    XLMRobertaForMaskedLM.from_pretrained(case_dir("masked_lm")).save_pretrained(tmp_path)
    before = _snapshot(tmp_path)
    other = XLMRobertaModel.from_pretrained(case_dir("model_base"))
    monkeypatch.setattr(xkeys, "save_file", _disk_full_on_call(1, xkeys.save_file))
    with pytest.raises(OSError, match="No space left on device"):
        other.save_pretrained(tmp_path, overwrite=True)
    assert _snapshot(tmp_path) == before
    assert XLMRobertaForMaskedLM.from_pretrained(tmp_path).config.architectures == ["XLMRobertaForMaskedLM"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE as Linux applies it")
def test_save_pretrained_under_a_file_size_limit_leaves_the_old_model(tmp_path):
    """Issue: under a 300-byte file-size limit config.json was cut to 300 bytes and the folder no
    longer loaded. (Python ignores SIGXFSZ, so the write fails with EFBIG.)"""
    XLMRobertaForMaskedLM.from_pretrained(case_dir("masked_lm")).save_pretrained(tmp_path)
    before = _snapshot(tmp_path)
    child = (f"import resource; from xlmr_np import XLMRobertaModel\n"
             f"m = XLMRobertaModel.from_pretrained({str(case_dir('model_base'))!r})\n"
             f"resource.setrlimit(resource.RLIMIT_FSIZE, (300, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
             f"try:\n    m.save_pretrained({str(tmp_path)!r}, overwrite=True)\n"
             f"except OSError as e:\n    print('OSError', e.errno)\n")
    out = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["OSError", str(errno.EFBIG)], out.stderr[-2000:]
    assert _snapshot(tmp_path) == before
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["XLMRobertaForMaskedLM"]


def test_save_pretrained_refuses_a_directory_holding_a_model(tmp_path):
    shutil.copy(GOLDEN / "pytorch" / "pytorch_model.bin", tmp_path / "pytorch_model.bin")
    model = XLMRobertaModel.from_pretrained(case_dir("model_base"))
    with pytest.raises(CheckpointError, match=r"already holds pytorch_model\.bin \(a model\); pass overwrite=True"):
        model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pytorch_model.bin"]
    model.save_pretrained(tmp_path, overwrite=True)  # model.safetensors is what loaders prefer
    again = XLMRobertaModel.from_pretrained(tmp_path)
    assert all(np.array_equal(again.params[k], model.params[k]) for k in model.params)
