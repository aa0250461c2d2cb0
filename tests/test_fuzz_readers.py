"""Random byte mutations of valid checkpoint files: the readers either load them or raise their own
error type (SafetensorsError / CheckpointError), never anything else.

Hypothesis mutates small hand-built .safetensors and pytorch_model.bin files (set
XLMR_NP_FUZZ_EXAMPLES to run more than 100 examples per reader); `test_mutants_raise_only_our_errors`
mutates files written by HF itself (and, for .h5, a small file of Keras' layout), seeded, in every
format: pytorch_model.bin, model.safetensors, flax_model.msgpack, tf_model.h5 (set XLMR_NP_MUTANTS to
change the 300 per format).
"""

import importlib.util
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xlmr_np.errors import CheckpointError, SafetensorsError
from xlmr_np.weights import safetensors_file as xs
from xlmr_np.weights.flax_msgpack import read_flax_msgpack
from xlmr_np.weights.tf_h5 import read_tf_h5
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


# ---- seeded mutants of real files, one test per reader ----------------------------------------------

GOLDEN = Path(__file__).resolve().parent.parent / "reference_outputs" / "formats"
MUTANTS = int(os.environ.get("XLMR_NP_MUTANTS", "300"))


def _hot_regions(name, data):
    """Where the metadata lies, to aim half of the edits at (the other half land anywhere)."""
    if name == "pytorch_model.bin":
        eocd = data.rfind(b"PK\x05\x06")  # the end-of-central-directory record: entry count, offsets
        return [(0, min(len(data), 2048)), (max(0, len(data) - 2048), len(data)), (eocd + 8, eocd + 20)]
    if name == "model.safetensors":
        return [(0, 8 + int.from_bytes(data[:8], "little"))]  # the header
    return [(0, len(data))]


def _mutants(data, hot, seed):
    rng = random.Random(seed)
    for _ in range(MUTANTS):
        out = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4))):
            lo, hi = rng.choice(hot) if rng.random() < 0.5 else (0, len(out))
            out[rng.randrange(lo, hi)] = rng.randrange(256)
        if rng.random() < 0.1:
            del out[rng.randrange(len(out)):]  # truncated
        yield bytes(out)


def _reader(name):
    if name == "tf_model.h5":
        pytest.importorskip("h5py", reason="tf_model.h5 needs h5py (the formats extra)")
        # a sound read takes 5 ms; 1 s stops a hung libhdf5 sooner than the default limit
        return (lambda path: read_tf_h5(path, time_limit=1.0)), CheckpointError
    if name == "flax_model.msgpack":
        pytest.importorskip("msgpack", reason="flax_model.msgpack needs msgpack (the formats extra)")
        return read_flax_msgpack, CheckpointError
    return {"model.safetensors": (xs.load_file, SafetensorsError),
            "pytorch_model.bin": (load_torch_file, CheckpointError)}[name]


@pytest.mark.parametrize("name, source", [
    ("pytorch_model.bin", GOLDEN / "pytorch" / "pytorch_model.bin"),   # written by torch.save (HF 4.57.6)
    ("model.safetensors", GOLDEN / "safetensors" / "model.safetensors"),
    ("flax_model.msgpack", GOLDEN / "flax" / "flax_model.msgpack"),
    ("tf_model.h5", None),  # the HF golden takes h5py 30 ms a read; a small file of the same layout 5 ms
])
def test_mutants_raise_only_our_errors(name, source, tmp_path):
    """A few hundred seeded mutants of each format: each loads (every array readable) or raises the
    reader's own error, in under 2 s; nothing else comes out (issue: struct.error from .bin, and
    RuntimeError, KeyError, UnicodeEncodeError, ValueError from .h5, or no answer at all)."""
    reader, own = _reader(name)
    data = source.read_bytes() if source else corpus.write_keras_file(tmp_path / "keras.h5")
    path = tmp_path / name
    escaped, outcomes = [], {"loaded": 0, "refused": 0}
    for i, mutant in enumerate(_mutants(data, _hot_regions(name, data), seed=sum(map(ord, name)))):
        path.write_bytes(mutant)
        start = time.perf_counter()
        try:
            _touch(reader(path))
            outcomes["loaded"] += 1
        except own:
            outcomes["refused"] += 1
        except Exception as e:  # noqa: BLE001 - any other type is the failure
            escaped.append(f"mutant {i}: {type(e).__name__}: {str(e)[:120]}")
        if time.perf_counter() - start > 2.0:
            escaped.append(f"mutant {i}: took {time.perf_counter() - start:.1f} s")
    assert not escaped, "\n".join(escaped[:20])
    assert outcomes["refused"] > MUTANTS // 20, outcomes  # the mutations do reach the metadata
