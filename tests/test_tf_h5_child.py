"""tf_model.h5 is read in a child process (xlmr_np.weights.child_reader): libhdf5 on a corrupt file
is bounded in time and memory, and whatever h5py raises comes out as a CheckpointError."""

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from xlmr_np.errors import CheckpointError
from xlmr_np.weights import child_reader
from xlmr_np.weights.tf_h5 import read_tf_h5

h5py = pytest.importorskip("h5py", reason="tf_model.h5 needs h5py (the formats extra)")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import make_hostile_corpus as corpus  # noqa: E402

GOLDEN = Path(__file__).resolve().parent.parent / "reference_outputs" / "formats" / "tf" / "tf_model.h5"


def _mutant(tmp_path, pos, value):
    data = bytearray(GOLDEN.read_bytes())
    data[pos] = value
    path = tmp_path / "tf_model.h5"
    path.write_bytes(bytes(data))
    return path


def _slow_keras_file(path):
    """A sound Keras weights file that takes libhdf5 ~0.15 s: one 10,000-chunk gzip dataset."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"roberta"]
        group = f.create_group("roberta")
        group.attrs["weight_names"] = [b"m/roberta/pooler/dense/bias:0"]
        group.create_dataset("m/roberta/pooler/dense/bias:0", data=np.arange(10_000, dtype="f4"),
                             chunks=(1,), compression="gzip")
    return path


@pytest.mark.parametrize("pos, value, escaped", [  # found by mutating the golden one byte at a time
    (3003, 212, "UnicodeEncodeError"),  # a name byte: h5py cannot encode the surrogate back
    (11816, 17, "RuntimeError"),  # a local heap: "Unable to synchronously check link existence"
    (122224, 180, "KeyError"),  # an object header: "Unable to synchronously open object"
    (43601, 135, "ValueError"),  # a datatype: "Insufficient precision in available types"
])
def test_what_h5py_raises_on_a_corrupt_file_is_a_checkpoint_error(tmp_path, pos, value, escaped):
    """Issue: 138 of 1,000 one-byte mutants escaped as RuntimeError, KeyError, UnicodeEncodeError
    or ValueError instead of the checkpoint error."""
    with pytest.raises(CheckpointError, match=rf"tf_model\.h5: not a readable HDF5 file \({escaped}: "):
        read_tf_h5(_mutant(tmp_path, pos, value))


def test_a_byte_that_makes_libhdf5_hang_forever_costs_only_the_time_limit(tmp_path):
    """Issue: one flipped byte made h5py hang forever, deaf to Ctrl-C. Here: the length of one
    weight_names string in the global heap, 31 -> 190 (found by test_fuzz_readers' mutants; in
    this process it still ran after 60 s and after SIGINT)."""
    data = bytearray(corpus.write_keras_file(tmp_path / "keras.h5"))
    name = data.find(b"m/roberta/pooler/dense/kernel:0")  # its global heap object: size (8 bytes), name
    assert data[name - 8:name] == (31).to_bytes(8, "little")
    data[name - 8] = 190
    path = tmp_path / "tf_model.h5"
    path.write_bytes(bytes(data))
    read_tf_h5(GOLDEN)  # the child is up: the limit below times the read alone
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"did not finish within 0\.5 s"):
        read_tf_h5(path, time_limit=0.5)
    assert time.perf_counter() - start < 1.0


def test_a_huge_allocation_is_stopped_by_the_memory_limit(tmp_path):
    """One byte (a vlen string's length, in the layer_names attribute) made h5py allocate 3 GB and
    take 4 s for a 170 KB file; the child's address-space limit stops it at once."""
    path = _mutant(tmp_path, 44675, 189)
    read_tf_h5(GOLDEN)  # the child is up: the bound below times the read alone, not the child's start
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"not a readable HDF5 file"):
        read_tf_h5(path)
    assert time.perf_counter() - start < 2.0


def test_a_read_past_its_time_limit_is_stopped_and_the_next_read_works(tmp_path):
    path = _slow_keras_file(tmp_path / "tf_model.h5")
    read_tf_h5(GOLDEN)  # the child is up: the limit below times the read alone
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"did not finish within 0\.02 s, so the reader process was stopped"):
        read_tf_h5(path, time_limit=0.02)
    assert time.perf_counter() - start < 0.5
    assert child_reader._CHILD is None
    assert len(read_tf_h5(GOLDEN)) == 42  # a new child


def test_a_reader_that_dies_is_a_checkpoint_error(tmp_path):
    path = _slow_keras_file(tmp_path / "tf_model.h5")
    read_tf_h5(GOLDEN)
    child = child_reader._CHILD
    threading.Timer(0.02, child.proc.kill).start()  # as a segfault in libhdf5 would
    with pytest.raises(CheckpointError, match=r"the reader process stopped \(exit status -9"):
        read_tf_h5(path)
    assert len(read_tf_h5(GOLDEN)) == 42


def test_close_stops_the_child():
    read_tf_h5(GOLDEN)
    proc = child_reader._CHILD.proc
    child_reader.close()
    assert proc.poll() is not None and child_reader._CHILD is None
