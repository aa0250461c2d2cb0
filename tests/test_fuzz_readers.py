"""Random byte mutations of valid .safetensors and pytorch_model.bin files: the readers either load
them or raise their own error type (SafetensorsError / CheckpointError), never anything else.

Set XLMR_NP_FUZZ_EXAMPLES to run more than the default 100 examples per reader.
"""

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xlmr_np.errors import CheckpointError, SafetensorsError
from xlmr_np.weights import safetensors_file as xs
from xlmr_np.weights.torch_pickle import load_torch_file

_spec = importlib.util.spec_from_file_location(
    "make_hostile_corpus", Path(__file__).resolve().parent.parent / "tools" / "make_hostile_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

EXAMPLES = int(os.environ.get("XLMR_NP_FUZZ_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
                    suppress_health_check=[HealthCheck.too_slow])


def _valid_safetensors():
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.safetensors"
        xs.save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float16),
                      "c": np.arange(4, dtype=np.int64), "d": np.zeros((0, 2), np.float32)}, path)
        return path.read_bytes()


def _valid_bin():
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "pytorch_model.bin"
        pkl = corpus.p_state_dict([
            ("w", corpus.p_tensor("0", 6, (2, 3), (3, 1))),
            ("t", corpus.p_tensor("0", 6, (3, 2), (1, 3))),         # strided view of the same storage
            ("h", corpus.p_tensor("1", 4, (2, 2), (2, 1), stype="HalfStorage")),
            ("v", corpus.p_tensor("2", 3, (2,), (1,), offset=1, stype="LongStorage")),
        ])
        corpus.write_torch_zip(path, pkl, {"0": corpus.f32(*range(6)), "1": b"\x00\x3c" * 4,
                                           "2": np.arange(3, dtype="<i8").tobytes()})
        return path.read_bytes()


SAFETENSORS = _valid_safetensors()
HEADER_END = 8 + int.from_bytes(SAFETENSORS[:8], "little")
BIN = _valid_bin()


def _mutations(size, hot_end):
    """Byte overwrites (biased to the first `hot_end` bytes: header / pickle), then a cut or an extension."""
    position = st.one_of(st.integers(0, hot_end - 1), st.integers(0, size - 1))
    edits = st.lists(st.tuples(position, st.integers(0, 255)), min_size=1, max_size=6)
    ending = st.one_of(st.none(), st.integers(0, size), st.binary(min_size=1, max_size=16))
    return st.tuples(edits, ending)


def _apply(data, mutation):
    edits, ending = mutation
    out = bytearray(data)
    for pos, value in edits:
        out[pos] = value
    if isinstance(ending, int):
        del out[ending:]
    elif isinstance(ending, bytes):
        out += ending
    return bytes(out)


def _touch(state):
    for arr in state.values():
        assert isinstance(arr, np.ndarray)
        np.asarray(arr).sum()  # every loaded view must really be readable


def _check(data, suffix, reader, errors):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            state = reader(path)
        except errors:
            return
        _touch(state)


def test_unmutated_files_load():
    _check(SAFETENSORS, ".safetensors", xs.load_file, ())
    _check(BIN, ".bin", load_torch_file, ())


@SETTINGS
@given(_mutations(len(SAFETENSORS), HEADER_END))
def test_fuzz_safetensors(mutation):
    _check(_apply(SAFETENSORS, mutation), ".safetensors", xs.load_file, SafetensorsError)


@SETTINGS
@given(_mutations(len(BIN), 200))
def test_fuzz_torch_bin(mutation):
    _check(_apply(BIN, mutation), ".bin", load_torch_file, CheckpointError)


@SETTINGS
@given(st.binary(min_size=0, max_size=300))
def test_fuzz_arbitrary_bytes(data):
    _check(data, ".safetensors", xs.load_file, SafetensorsError)
    _check(data, ".bin", load_torch_file, CheckpointError)
