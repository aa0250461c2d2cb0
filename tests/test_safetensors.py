"""xlmr_np.weights.safetensors_file against the reference `safetensors` package (and torch for BF16), plus one
test per header defect the reader must refuse.

The reference package is not a runtime dependency of xlmr_np (it is in the `test` and `ref` extras): here it is
the independent cross-check, writing what ours reads and reading what ours writes, F32/F16/BF16 included. The
tests that need it are skipped, with the reason, without it; the header-defect tests run anyway."""

import json
import mmap
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xlmr_np.errors import SafetensorsError
from xlmr_np.weights import safetensors_file as xs


@pytest.fixture
def st_numpy():
    """The reference package's NumPy API (safetensors.numpy)."""
    return pytest.importorskip("safetensors.numpy", reason="the reference safetensors package is the "
                               "cross-check of our reader and writer: pip install -e '.[test]'")


# Every dtype both NumPy and the reference package's numpy API know (BF16: see the tests below).
NUMPY_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_, "C64": np.complex64,
}


def _sample(dtype, shape, rng):
    return np.asarray(_sample_values(np.dtype(dtype), shape, rng))  # 0-d arrays, not scalars


def _sample_values(dtype, shape, rng):
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    if x.size >= 4:  # the special values must survive too
        x.flat[:4] = [np.inf, -np.inf, -0.0, np.finfo(dtype).tiny / 2]
    return x


def _tensors(rng):
    out = {}
    for name, dt in NUMPY_DTYPES.items():
        out[f"t.{name}"] = _sample(dt, (3, 5), rng)
        out[f"scalar.{name}"] = _sample(dt, (), rng)
        out[f"empty.{name}"] = _sample(dt, (0, 7), rng)
    out["odd"] = _sample(np.float16, (7,), rng)  # odd byte count before wider dtypes
    return out


def _assert_same(got, want):
    assert set(got) == set(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        assert got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_ours_write_reference_reads(tmp_path, st_numpy):
    tensors = _tensors(np.random.default_rng(0))
    path = tmp_path / "m.safetensors"
    xs.save_file(tensors, path)
    _assert_same(st_numpy.load_file(str(path)), tensors)


def test_reference_writes_ours_reads(tmp_path, st_numpy):
    tensors = _tensors(np.random.default_rng(1))
    path = tmp_path / "m.safetensors"
    st_numpy.save_file(tensors, str(path), metadata={"format": "np", "note": "ünï"})
    _assert_same(xs.load_file(path), tensors)
    assert xs.load_metadata(path) == {"format": "np", "note": "ünï"}


def test_bf16_widened_like_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(4, 6, generator=g) * 100).bfloat16()
    w[0, :4] = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0]).bfloat16()
    path = tmp_path / "bf16.safetensors"
    st_torch.save_file({"w": w, "s": torch.tensor(1.5).bfloat16()}, str(path))
    got = xs.load_file(path)
    assert got["w"].dtype == np.float32 and got["w"].shape == (4, 6)
    want = w.float().numpy()
    np.testing.assert_array_equal(got["w"], want)  # NaN positions compare equal too
    assert np.signbit(got["w"][0, 3])  # -0.0 keeps its sign
    assert got["s"].shape == () and got["s"] == 1.5


def _reference_write_raw(safetensors, path, entries):
    """Write {name: (dtype name, shape, raw bytes)} with the reference package's own serializer (no torch)."""
    spec, keep_alive, tensors = getattr(safetensors, "TensorSpec", None), [], {}
    for name, (dtype, shape, data) in entries.items():
        if spec is None:  # safetensors < 0.8 takes plain dicts
            tensors[name] = {"dtype": dtype, "shape": list(shape), "data": data}
        else:
            buf = np.frombuffer(data, np.uint8) if data else np.zeros(1, np.uint8)
            keep_alive.append(buf)
            tensors[name] = spec(dtype=dtype, shape=list(shape), data_ptr=buf.ctypes.data, data_len=len(data))
    safetensors.serialize_file(tensors, str(path), metadata={"format": "pt"})


def test_bf16_reference_writes_ours_reads_and_back(tmp_path, st_numpy):
    """BF16 without torch: the reference package writes bf16 bit patterns, ours must read the float32 values
    they stand for bit for bit (specials and a NaN payload included); ours writes those as F32 and the
    reference package must read the same values back."""
    import safetensors

    rng = np.random.default_rng(3)
    want = (rng.standard_normal((5, 7)).astype(np.float32) * 100).view(np.uint32) & 0xFFFF0000
    want[0, :7] = [0x7F800000, 0xFF800000, 0x80000000, 0x00010000, 0x7F7F0000, 0x7FC10000, 0x3F800000]
    want = want.view(np.float32)  # every value exactly representable in bfloat16
    bits = (want.view(np.uint32) >> 16).astype("<u2")  # bfloat16 = the high half of the float32
    path = tmp_path / "bf16.safetensors"
    _reference_write_raw(safetensors, path, {"w": ("bfloat16", bits.shape, bits.tobytes()),
                                             "s": ("bfloat16", (), np.array(0x3FC0, "<u2").tobytes()),
                                             "e": ("bfloat16", (0, 3), b"")})
    assert {k: v["dtype"] for k, v in xs.read_header(path)[0].items() if k != "__metadata__"} == \
        {"w": "BF16", "s": "BF16", "e": "BF16"}
    got = xs.load_file(path)
    assert got["w"].dtype == np.float32 and got["w"].shape == (5, 7)
    np.testing.assert_array_equal(got["w"].view(np.uint32), want.view(np.uint32))  # bit for bit, NaN too
    assert got["s"].dtype == np.float32 and got["s"].shape == () and got["s"] == 1.5
    assert got["e"].dtype == np.float32 and got["e"].shape == (0, 3)

    back = tmp_path / "f32.safetensors"
    xs.save_file(got, back)
    ref = st_numpy.load_file(str(back))
    assert ref["w"].dtype == np.float32
    np.testing.assert_array_equal(ref["w"].view(np.uint32), want.view(np.uint32))
    assert ref["s"] == 1.5 and ref["e"].shape == (0, 3)


def test_runtime_does_not_import_the_safetensors_package():
    """safetensors (PyPI) is a test/ref extra, not a dependency: loading and saving a model never imports it."""
    root = Path(__file__).resolve().parent.parent
    code = ("import sys, tempfile, xlmr_np; "
            "m = xlmr_np.XLMRobertaForMaskedLM.from_pretrained('models/xlmr-demo'); "
            "m.save_pretrained(tempfile.mkdtemp()); "
            "assert xlmr_np.__file__.startswith(sys.argv[1]), xlmr_np.__file__; "
            "print(sorted(n for n in sys.modules if n == 'safetensors' or n.startswith('safetensors.')))")
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, cwd=root,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _reaches_mmap(arr):
    base = arr
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


def test_zero_copy_read_only_views(tmp_path):
    tensors = {"a": np.arange(12, dtype=np.float32).reshape(3, 4),
               "h": np.arange(8, dtype=np.float16), "i": np.arange(5, dtype=np.int64)}
    path = tmp_path / "m.safetensors"
    xs.save_file(tensors, path)
    got = xs.load_file(path)
    for k, arr in got.items():
        assert type(arr) is np.ndarray, k  # a plain array, not an np.memmap subclass
        assert not arr.flags.owndata and not arr.flags.writeable and arr.flags.aligned, k
        assert _reaches_mmap(arr), k
    with pytest.raises(ValueError, match="read-only"):
        got["a"][0, 0] = 1.0
    # The views are the file's pages: a change on disk shows through without reloading.
    header, data_start = xs.read_header(path)
    begin = header["a"]["data_offsets"][0]
    with open(path, "r+b") as f:
        f.seek(data_start + begin)
        f.write(np.float32(42.0).tobytes())
    assert got["a"][0, 0] == 42.0


def _write_raw(path, header, data=b"", pad_to=None):
    """Write a file with an arbitrary header (dict -> JSON, or raw bytes)."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad_to is not None:
        raw += b" " * pad_to
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw + data)
    return path


def test_unaligned_data_is_copied_not_refused(tmp_path, st_numpy):
    values = np.arange(6, dtype="<f4") * 1.25
    header = {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [1, 25]},
              "b": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
    raw = json.dumps(header).encode()
    raw += b" " * (-(len(raw) + 8) % 8)  # data section starts at a multiple of 8 ...
    path = _write_raw(tmp_path / "u.safetensors", raw, b"\x07" + values.tobytes())  # ... w at +1
    got = xs.load_file(path)
    assert got["w"].flags.aligned
    np.testing.assert_array_equal(got["w"], values.reshape(2, 3))
    np.testing.assert_array_equal(got["w"], st_numpy.load_file(str(path))["w"])
    assert got["b"][0] == 7


def test_writer_layout(tmp_path, st_numpy):
    """Header padded to a multiple of 8, metadata defaults to format=pt (HF checks it), data is
    C-order little-endian even for big-endian or strided input, every tensor aligned."""
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    strided = np.arange(12, dtype=np.float64).reshape(3, 4).T
    path = tmp_path / "m.safetensors"
    xs.save_file({"z_big": big, "strided": strided, "h": np.ones(3, np.float16),
                  "y": np.ones(5, np.float32)}, path)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    assert n % 8 == 0
    header, data_start = xs.read_header(path)
    assert header["__metadata__"] == {"format": "pt"}
    for k, info in header.items():
        if k != "__metadata__":
            assert (data_start + info["data_offsets"][0]) % np.dtype(xs.DTYPES[info["dtype"]]).itemsize == 0
    ref = st_numpy.load_file(str(path))
    np.testing.assert_array_equal(ref["z_big"], big)
    np.testing.assert_array_equal(ref["strided"], strided)
    assert ref["z_big"].dtype == np.dtype("<f4")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    xs.save_file({"a": np.zeros(3, np.float32)}, path)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        xs.save_file({"a": np.ones(3, np.float32)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temp left behind


@pytest.mark.parametrize("tensors, metadata, message", [
    ({"a": np.array([object()])}, None, "dtype object cannot be stored"),
    ({"__metadata__": np.zeros(1)}, None, "'__metadata__' is not allowed"),
    ({1: np.zeros(1)}, None, "name 1 is not allowed"),
    ({"a": np.zeros(1)}, {"format": 1}, "metadata must be a dict of str to str"),
])
def test_save_refuses_bad_input(tmp_path, tensors, metadata, message):
    with pytest.raises(SafetensorsError, match=message):
        xs.save_file(tensors, tmp_path / "m.safetensors", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_hf_transformers_loads_what_we_write(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.XLMRobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=24,
                                        max_position_embeddings=20)
    model = transformers.XLMRobertaModel(cfg).eval()
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    state["embeddings.LayerNorm.weight"] = np.linspace(0.5, 1.5, 16, dtype=np.float32)
    cfg.save_pretrained(tmp_path)
    xs.save_file(state, tmp_path / "model.safetensors")
    loaded = transformers.XLMRobertaModel.from_pretrained(tmp_path).eval()
    for k, v in loaded.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k], err_msg=k)


# ---- one test per header defect: the error names the file, the tensor and the problem ----------

GOOD = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
DATA = b"\x00" * 8


def _entry(**changes):
    e = dict(GOOD["w"])
    e.update(changes)
    return {"w": e}


HEADER_DEFECTS = [
    ("unknown dtype", _entry(dtype="F12"), DATA, "tensor 'w': unknown dtype 'F12'"),
    ("dtype not a string", _entry(dtype=4), DATA, "tensor 'w': unknown dtype 4"),
    ("fp8 has no numpy dtype", _entry(dtype="F8_E4M3", shape=[8]), DATA,
     "tensor 'w': dtype F8_E4M3 has no NumPy equivalent"),
    ("shape not a list", _entry(shape=2), DATA, "tensor 'w': shape must be a list"),
    ("negative dim", _entry(shape=[-2]), DATA, "tensor 'w': shape must be a list of non-negative"),
    ("bool dim", _entry(shape=[True, 2]), DATA, "tensor 'w': shape must be a list of non-negative"),
    ("float dim", _entry(shape=[2.0]), DATA, "tensor 'w': shape must be a list of non-negative"),
    ("offsets one value", _entry(data_offsets=[0]), DATA, "tensor 'w': data_offsets must be"),
    ("offsets negative", _entry(data_offsets=[-8, 0]), DATA, "tensor 'w': data_offsets must be"),
    ("begin after end", _entry(data_offsets=[8, 0]), DATA, "tensor 'w': data_offsets begin 8 is after end 0"),
    ("size mismatch", _entry(shape=[3]), DATA, r"tensor 'w': data_offsets \[0, 8\] hold 8 bytes but shape \[3\]"),
    ("huge shape", _entry(shape=[2**40, 2**40]), DATA, "tensor 'w': .* needs 4835703278458516698824704"),
    ("outside data section", _entry(shape=[4], data_offsets=[0, 16]), DATA,
     "tensor 'w': data_offsets \\[0, 16\\] run past the end of the data section \\(8 bytes\\)"),
    ("offset far outside", _entry(shape=[1], data_offsets=[2**62, 2**62 + 4]), DATA, "tensor 'w': .*run past the end"),
    ("empty but absurd dims", _entry(shape=[0, 2**63], data_offsets=[0, 0]), DATA,
     "tensor 'w': shape .* than NumPy can represent"),
    ("too many dims", _entry(shape=[0] * 65, data_offsets=[0, 0]), DATA, "tensor 'w': shape .*max 64"),
    ("missing dtype", {"w": {"shape": [2], "data_offsets": [0, 8]}}, DATA, "tensor 'w': entry is missing 'dtype'"),
    ("missing shape", {"w": {"dtype": "F32", "data_offsets": [0, 8]}}, DATA, "tensor 'w': entry is missing 'shape'"),
    ("missing offsets", {"w": {"dtype": "F32", "shape": [2]}}, DATA, "tensor 'w': entry is missing 'data_offsets'"),
    ("entry not an object", {"w": [1, 2]}, DATA, "tensor 'w': entry must be an object"),
    ("overlap", {"w": GOOD["w"], "v": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, DATA,
     "tensor 'v': data_offsets \\[4, 8\\] overlap tensor 'w'"),
    ("metadata not a dict", {"__metadata__": ["pt"], **GOOD}, DATA, "__metadata__ must be an object"),
    ("metadata value not str", {"__metadata__": {"format": 1}, **GOOD}, DATA,
     "__metadata__ value for 'format' must be a string"),
    ("duplicate tensor name",
     b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
     DATA, "duplicate key 'w'"),
    ("duplicate field", b'{"w":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}}', DATA,
     "duplicate key 'dtype'"),
    ("not utf-8", b'{"w\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', DATA, "not valid UTF-8"),
    ("not json", b'{"w": {dtype: F32}}', DATA, "not valid JSON"),
    ("not an object", b'[1, 2]', DATA, "must be a JSON object starting with"),
    ("leading garbage", b'  {}', DATA, "must be a JSON object starting with"),
    ("deep nesting", b"{" + b'"a":[' * 100000 + b"]" * 100000 + b"}", b"", "not valid JSON"),
]


@pytest.mark.parametrize("label, header, data, message", HEADER_DEFECTS, ids=[d[0] for d in HEADER_DEFECTS])
def test_header_defect_refused(tmp_path, label, header, data, message):
    path = _write_raw(tmp_path / "bad.safetensors", header, data)
    for reader in (xs.read_header, xs.load_file, xs.load_metadata):
        with pytest.raises(SafetensorsError, match=message) as info:
            reader(path)
        assert str(path) in str(info.value)


def test_file_too_short(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x01\x02")
    with pytest.raises(SafetensorsError, match="short.safetensors: file is 2 bytes, too short"):
        xs.load_file(path)


def test_header_length_absurd(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes((2**63).to_bytes(8, "little") + b"{}")
    with pytest.raises(SafetensorsError, match="huge.safetensors: header length 9223372036854775808 exceeds"):
        xs.load_file(path)


def test_header_length_past_end_of_file(tmp_path):
    path = tmp_path / "trunc.safetensors"
    path.write_bytes((1000).to_bytes(8, "little") + b"{}")
    with pytest.raises(SafetensorsError, match="trunc.safetensors: header length 1000 runs past the end"):
        xs.load_file(path)


def test_truncated_data_section(tmp_path):
    path = tmp_path / "m.safetensors"
    xs.save_file({"a": np.zeros(100, np.float32)}, path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)
    with pytest.raises(SafetensorsError, match="tensor 'a': .* run past the end of the data section"):
        xs.load_file(path)
