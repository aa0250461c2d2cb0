"""The hostile corpus (tools/make_hostile_corpus.py): every file is refused quickly, with a clear
error of the reader's own type, bounded memory, and no code run (the sentinel never appears)."""

import importlib.util
import pickle
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from xlmr_np.errors import CheckpointError, SafetensorsError
from xlmr_np.weights import convert as xconvert
from xlmr_np.weights import files as wf
from xlmr_np.weights import safetensors_file as xs
from xlmr_np.weights.torch_pickle import load_torch_file

_spec = importlib.util.spec_from_file_location(
    "make_hostile_corpus", Path(__file__).resolve().parent.parent / "tools" / "make_hostile_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

MAX_SECONDS = 2.0          # each refusal; real ones take milliseconds
MAX_TRACED_BYTES = 32 * 2**20  # NumPy reports its allocations to tracemalloc


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


def _cases(out):
    cases = corpus.make_corpus(out)
    for extra, module in ((corpus.make_h5_cases, "h5py"), (corpus.make_msgpack_cases, "msgpack")):
        try:
            __import__(module)
        except ImportError:
            continue
        cases += extra(out)
    return cases


def _read(reader, path, tmp_path):
    if reader == "torch":
        return load_torch_file(path)
    if reader == "safetensors":
        return xs.load_file(path)
    if reader == "dir":
        return wf.read_state_dict(path)
    if reader == "convert":
        return xconvert.convert(path, tmp_path / "converted")
    if reader == "config":
        from xlmr_np.config import XLMRobertaConfig
        return XLMRobertaConfig.from_pretrained(path)
    raise AssertionError(reader)


def test_every_hostile_file_is_refused(corpus_dir, tmp_path):
    cases = _cases(corpus_dir)
    assert len(cases) > 60
    failures = []
    for name, path, reader, match in cases:
        tracemalloc.start()
        start = time.perf_counter()
        try:
            _read(reader, path, tmp_path)
            failures.append(f"{name}: loaded without error")
            continue
        except Exception as e:  # noqa: BLE001 - the type is what is checked here
            err = e
        finally:
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        own = ValueError if reader == "config" else (CheckpointError, SafetensorsError)
        if not isinstance(err, own):
            failures.append(f"{name}: {type(err).__name__}: {err}")
        elif not __import__("re").search(match, str(err)):
            failures.append(f"{name}: message {str(err)!r} does not match /{match}/")
        elif reader in ("torch", "safetensors") and str(path) not in str(err):
            failures.append(f"{name}: message does not name the file: {err}")
        if seconds > MAX_SECONDS or peak > MAX_TRACED_BYTES:
            failures.append(f"{name}: took {seconds:.2f} s, traced peak {peak} bytes")
    assert not failures, "\n".join(failures)
    assert not (corpus_dir / corpus.SENTINEL).exists(), "a payload ran"


def test_payloads_are_live_under_plain_pickle(tmp_path):
    """Control: the same bytes do run code under an unrestricted unpickler (so the test above
    means something). Only the harmless builtins.eval payload, which creates a file, is run."""
    target = tmp_path / "created_by_payload"
    payload = b"\x80\x02" + corpus.p_call(corpus.p_global("builtins", "eval"),
                                          corpus.p_str(f"open({str(target)!r}, 'w').close()")) + b"."
    pickle.loads(payload)
    assert target.exists()
    corpus.write_torch_zip(tmp_path / "evil.bin", corpus.p_state_dict([("w", payload[2:-1])]), {})
    target.unlink()
    with pytest.raises(CheckpointError, match=r"global builtins\.eval"):
        load_torch_file(tmp_path / "evil.bin")
    assert not target.exists()


def test_handmade_torch_zip_is_realistic(tmp_path):
    """The corpus builder's valid archive loads in torch itself and in our reader, identically,
    so the refusals above are about the defect each case adds, not about the builder."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "good.bin"
    corpus._good_bin(path)
    want = torch.load(path, weights_only=True)
    got = load_torch_file(path)
    assert set(got) == set(want) == {"w", "b"}
    for k in want:
        np.testing.assert_array_equal(got[k], want[k].numpy())
        assert not got[k].flags.owndata  # aligned entries are mapped, not copied
