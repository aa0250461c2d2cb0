"""xlmr_np.weights.restricted_unpickler: every value a pickle builds is bounded as it is built.

The bombs are ~1 KB pytorch_model.bin files whose pickle nests one shared tuple 30 levels deep
(each level `(t, t)`: 2**30 nodes when walked). Before the bounds, formatting the refusal message
took minutes (depth 26: 25.8 s, 624 MB) and hashing the tuple as a dict key hung, deaf to Ctrl-C;
so they are loaded in a child process that a time limit can stop, and must be refused in under
2 s with a few MB traced."""

import collections
import json
import pickle
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xlmr_np.errors import CheckpointError
from xlmr_np.weights.restricted_unpickler import MAX_DEPTH, RestrictedUnpickler, short_repr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import make_hostile_corpus as corpus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys, time, tracemalloc
from xlmr_np.weights.torch_pickle import load_torch_file
tracemalloc.start()
start = time.perf_counter()
try:
    load_torch_file(sys.argv[1])
    error = None
except Exception as e:
    error = [type(e).__name__, str(e)]
print(json.dumps({"error": error, "seconds": time.perf_counter() - start,
                  "peak": tracemalloc.get_traced_memory()[1]}))
"""


def _unpickle(data, allowed=None):
    return RestrictedUnpickler(data, allowed or {("collections", "OrderedDict"): collections.OrderedDict},
                               persistent_load=lambda pid: pid).load()


@pytest.mark.parametrize("case", ["bomb_persistent_id.bin", "bomb_tensor_size.bin", "bomb_state_dict_key.bin"])
def test_shared_tuple_bombs_are_refused_fast_and_small(case, tmp_path):
    cases = {name: path for name, path, _, _ in corpus.make_corpus(tmp_path)}
    assert cases[case].stat().st_size < 1200  # about 1 KB
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(cases[case])], cwd=ROOT, capture_output=True,
                             text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: still running after 20 s (the bomb was walked)")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["error"][0] == "CheckpointError"
    assert "builds a value of more than" in report["error"][1] and len(report["error"][1]) < 600
    assert report["seconds"] < 2.0 and report["peak"] < 4 * 2**20, report


def test_plain_values_and_shared_parts_still_load():
    t = (1, "two")
    value = {"a": [t, t, {"c": None}], "b": collections.OrderedDict([("x", 1.5)]), 7: "", None: True}
    for protocol in (0, 2, 4):
        assert _unpickle(pickle.dumps(value, protocol=protocol)) == value
    assert _unpickle(pickle.dumps([frozenset({"s", 1}), {2}], protocol=4)) == [frozenset({"s", 1}), {2}]
    assert _unpickle(b"\x80\x02ccollections\nOrderedDict\n]((X\x01\x00\x00\x00aK\x01te\x85R.") == {"a": 1}


@pytest.mark.parametrize("data, match", [
    (b"\x80\x02]q\x00h\x00a.", r"adds items to a list that is already inside"),   # a list holding itself
    (b"\x80\x02}(K\x01K\x02\x86N" + b"u.", r"uses a tuple as a dict key"),
    (b"\x80\x02}G?\xf0\x00\x00\x00\x00\x00\x00Ns.", r"uses a float as a dict key"),
    (b"\x80\x02}\x8a\x09" + (2**64).to_bytes(9, "little") + b"Ns.", r"uses a int as a dict key"),
    (b"\x80\x04\x8f(K\x01K\x02\x86\x90.", r"uses a tuple as a dict key or set item"),
    (b"\x80\x02N\x85" * 1 + b"\x85" * MAX_DEPTH + b".", r"more than 32 levels deep"),
    (b"(" * (MAX_DEPTH + 1) + b".", r"nests MARKs"),
    (b"Np1099511627776\n.", r"memoizes at index 1099511627776"),
    (b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b".", r"protocol-5 buffers"),
    (b"\x80\x02ccollections\nOrderedDict\n]R.", r"with a list of arguments"),
    (b"\x80\x02X\x01\x00\x00\x00a)R.", r"calls a str"),
    (b"\x80\x02(N\x85ccollections\nOrderedDict\nK\x01\x81.", r"opcode that builds arbitrary objects"),
])
def test_refusals(data, match):
    with pytest.raises(CheckpointError, match=match):
        _unpickle(data)


def test_every_value_is_bounded_by_the_pickle_length():
    """A shared tuple under the depth limit is refused once its node count passes 2 * len + 1024."""
    data = b"\x80\x02" + corpus.p_shared_tuple_bomb(20) + b"."
    with pytest.raises(CheckpointError, match=rf"more than {2 * len(data) + 1024} nodes"):
        _unpickle(data)
    assert _unpickle(b"\x80\x02" + corpus.p_shared_tuple_bomb(8) + b".")[0][0][0][0][0][0][0] == ((), ())


def test_short_repr_never_walks_the_whole_value():
    t = ()
    for _ in range(200):
        t = (t, t)  # 2**200 nodes
    start = time.perf_counter()
    shown = [short_repr(v) for v in (t, [t] * 10**6, collections.OrderedDict(a=t), 7**100_000, b"x" * 10**7)]
    assert time.perf_counter() - start < 0.1
    assert all(len(s) < 400 for s in shown), shown
    assert shown[3] == "<int of 280736 bits>"
