"""pytorch_model.bin (xlmr_np.weights.torch_pickle): time and memory stay linear in the file.

Each test replays a defect of the issue on a small hand-built archive (tools/make_hostile_corpus.py
writes torch.save's zip layout without torch)."""

import struct
import sys
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from xlmr_np.errors import CheckpointError
from xlmr_np.weights import torch_pickle
from xlmr_np.weights.torch_pickle import load_torch_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import make_hostile_corpus as corpus  # noqa: E402


def _bf16_views(path, numel, views):
    """One BF16 storage of `numel` elements (the bf16 of 0, 1, 2, ...) and `views` tensors of all of it."""
    bits = (np.arange(numel, dtype="<f4").view("<u4") >> 16).astype("<u2")
    entries = [(f"v{i}", corpus.p_tensor("0", numel, (numel,), (1,), stype="BFloat16Storage"))
               for i in range(views)]
    entries.append(("t", corpus.p_tensor("0", numel, (2, numel // 4), (1, 2), offset=1, stype="BFloat16Storage")))
    corpus.write_torch_zip(path, corpus.p_state_dict(entries), {"0": bits.tobytes()})
    return (bits.astype("<u4") << 16).view("<f4")


def test_bf16_storage_shared_by_many_views_is_widened_once(tmp_path, monkeypatch):
    """Issue: each view widened the whole storage again (4 MB file, 100 views: 953 MB)."""
    path = tmp_path / "pytorch_model.bin"
    want = _bf16_views(path, 2**19, 50)  # a 1 MB storage
    calls = []
    real = torch_pickle.widen_bf16
    monkeypatch.setattr(torch_pickle, "widen_bf16", lambda bits: calls.append(bits.size) or real(bits))
    tracemalloc.start()
    state = load_torch_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert calls == [2**19]
    assert peak < 3 * path.stat().st_size, peak  # the float32 copy is twice the storage
    for i in range(50):
        np.testing.assert_array_equal(state[f"v{i}"], want)
        assert np.shares_memory(state[f"v{i}"], state["v0"]) and not state[f"v{i}"].flags.writeable
    np.testing.assert_array_equal(state["t"], want[1 + np.arange(2)[:, None] + 2 * np.arange(2**17)])


def test_out_of_memory_is_not_reported_as_corruption(tmp_path, monkeypatch):
    """Issue: under a memory limit the widening's MemoryError said "data.pkl is corrupt"."""
    path = tmp_path / "pytorch_model.bin"
    _bf16_views(path, 64, 2)

    def no_memory(bits):
        raise MemoryError

    monkeypatch.setattr(torch_pickle, "widen_bf16", no_memory)
    with pytest.raises(MemoryError, match="out of memory while loading it") as info:
        load_torch_file(path)
    assert str(path) in str(info.value) and "corrupt" not in str(info.value)
    assert not isinstance(info.value, CheckpointError)


def test_duplicate_entry_among_many_is_found_in_linear_time(tmp_path):
    """Issue: the duplicate check counted every name in the list (60,000 entries: 104 s)."""
    path = tmp_path / "pytorch_model.bin"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as z:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        for i in range(20_000):
            z.writestr(f"archive/data/{i}", b"")
        z.writestr("archive/data/19999", b"")  # the duplicate is the last name
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"has the entry 'archive/data/19999' twice"):
        load_torch_file(path)
    assert time.perf_counter() - start < 1.0


def test_negative_local_header_offset_is_a_checkpoint_error(tmp_path):
    """Issue: an end-of-central-directory record claiming the directory starts later than it does
    makes zipfile compute negative local-header offsets; the reader escaped with struct.error."""
    path = tmp_path / "pytorch_model.bin"
    corpus._good_bin(path)
    shift = zipfile.ZipFile(path).getinfo("archive/byteorder").header_offset + 8  # the first entry read
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    start = struct.unpack_from("<I", data, eocd + 16)[0]
    struct.pack_into("<I", data, eocd + 16, start + shift)  # zipfile then moves every offset by -shift
    path.write_bytes(bytes(data))
    assert zipfile.ZipFile(path).getinfo("archive/byteorder").header_offset == -8
    with pytest.raises(CheckpointError, match=r"local header at offset -\d+, outside the file"):
        load_torch_file(path)
