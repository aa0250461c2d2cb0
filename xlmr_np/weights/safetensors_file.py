"""Read and write the safetensors format with NumPy alone, by memory map, validating every header.

Implements the file layout of Hugging Face `safetensors` (0.8.0 Rust crate and its README):

    [8 bytes: N, little-endian u64] [N bytes: UTF-8 JSON object, space-padded] [data section]

The JSON maps each tensor name to ``{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}``
(offsets relative to the data section, end exclusive) and may hold ``"__metadata__"`` (str -> str;
HF writes ``{"format": "pt"}``). Data is little-endian, C order, no strides.

Reading follows ``safetensors.numpy.load_file(..., backend="mmap")``: one read-only ``np.memmap``
per file and zero-copy views into it. NumPy has no bfloat16, so BF16 is widened to float32 by
shifting the 16 bits into the high half of a 32-bit word (a copy, `dtypes.widen_bf16`).
A file is data from a stranger: the whole header is checked against the file size before any
tensor is touched or any array allocated, and every problem raises `SafetensorsError` naming the
file, the tensor and what is wrong.

Writing follows the Rust writer: tensors ordered by element size (largest first) and then by name,
so every tensor starts at a multiple of its item size when the data section starts at a multiple
of 8 (the header is padded with spaces to make it so); written to a temporary file in the target
directory and renamed, so a crash never leaves a half-written file under the final name.
"""

import json
import math
import os
import secrets

import numpy as np

from ..errors import SafetensorsError
from .mapping import map_file
from .dtypes import BF16_BITS, widen_bf16

__all__ = ["read_header", "load_file", "load_metadata", "save_file", "DTYPES"]

# Largest header accepted; the Rust reader's limit (N_MAX_HEADER = 100 MB).
MAX_HEADER_BYTES = 100_000_000

# safetensors dtype string -> little-endian NumPy dtype. BF16 has no NumPy dtype: it is read as
# its 16-bit patterns and widened (dtypes.widen_bf16).
DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": BF16_BITS,
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
    "C64": np.dtype("<c8"),
}
# Valid in the format but with no NumPy equivalent; named in the error so the user knows it is
# a supported-elsewhere type rather than a corrupt header.
_KNOWN_UNSUPPORTED = {"F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0",
                      "F8_E4M3FNUZ", "F8_E5M2FNUZ"}

# NumPy dtype (by kind+itemsize) -> safetensors string, for writing.
_NP_TO_ST = {(dt.kind, dt.itemsize): name for name, dt in DTYPES.items() if name != "BF16"}


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs):
    """json object_pairs_hook: the format forbids duplicate keys, and json.loads would keep the last."""
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def read_header(path):
    """Read and validate the header of a .safetensors file.

    Returns ``(header, data_start)``: the JSON object (tensor entries and optional
    ``"__metadata__"``) and the file offset where the data section begins (8 + N).
    Every entry is checked against the file size, so a header that passes describes only
    bytes that exist.
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        if file_size < 8:
            raise SafetensorsError(f"{name}: file is {file_size} bytes, too short for the 8-byte "
                                   f"header length; it is not a safetensors file (or is truncated)")
        n = int.from_bytes(f.read(8), "little")
        if n > MAX_HEADER_BYTES:
            raise SafetensorsError(f"{name}: header length {n} exceeds the {MAX_HEADER_BYTES}-byte "
                                   f"limit; the file is corrupt or not a safetensors file")
        if 8 + n > file_size:
            raise SafetensorsError(f"{name}: header length {n} runs past the end of the file "
                                   f"({file_size} bytes); the file is truncated or corrupt")
        raw = f.read(n)
    data_start = 8 + n
    header = _parse_header_json(name, raw)
    _validate_header(name, header, file_size - data_start)
    return header, data_start


def _parse_header_json(name, raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SafetensorsError(f"{name}: header is not valid UTF-8 ({e})") from None
    if not text.startswith("{"):
        raise SafetensorsError(f"{name}: header must be a JSON object starting with '{{', "
                               f"got {text[:20]!r}")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        raise SafetensorsError(f"{name}: header has duplicate key {e.args[0]!r}; "
                               f"tensor names (and entry fields) must be unique") from None
    except (ValueError, RecursionError) as e:
        raise SafetensorsError(f"{name}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{name}: header must be a JSON object, got {type(header).__name__}")
    return header


def _validate_header(name, header, data_size):
    """Check every entry of a parsed header; data_size is the length of the data section."""
    meta = header.get("__metadata__")
    if meta is not None:
        if not isinstance(meta, dict):
            raise SafetensorsError(f"{name}: __metadata__ must be an object of string to string, "
                                   f"got {type(meta).__name__}")
        for k, v in meta.items():
            if not isinstance(v, str):
                raise SafetensorsError(f"{name}: __metadata__ value for {k!r} must be a string, "
                                       f"got {type(v).__name__}")
    ranges = []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        where = f"{name}: tensor {key!r}"
        if not isinstance(info, dict):
            raise SafetensorsError(f"{where}: entry must be an object with dtype, shape and "
                                   f"data_offsets, got {type(info).__name__}")
        for field in ("dtype", "shape", "data_offsets"):
            if field not in info:
                raise SafetensorsError(f"{where}: entry is missing {field!r}")
        dtype = info["dtype"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            if dtype in _KNOWN_UNSUPPORTED:
                raise SafetensorsError(f"{where}: dtype {dtype} has no NumPy equivalent and is not "
                                       f"supported; convert the checkpoint to F32/F16/BF16")
            raise SafetensorsError(f"{where}: unknown dtype {dtype!r}; expected one of "
                                   f"{', '.join(DTYPES)}")
        shape = info["shape"]
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise SafetensorsError(f"{where}: shape must be a list of non-negative integers, "
                                   f"got {shape!r:.200}")
        offsets = info["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_is_int(o) and o >= 0 for o in offsets)):
            raise SafetensorsError(f"{where}: data_offsets must be [begin, end] with non-negative "
                                   f"integers, got {offsets!r:.200}")
        begin, end = offsets
        if begin > end:
            raise SafetensorsError(f"{where}: data_offsets begin {begin} is after end {end}")
        # Python ints: a hostile shape cannot overflow, and nothing is allocated here.
        nbytes = math.prod(shape) * DTYPES[dtype].itemsize
        if end - begin != nbytes:
            raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}] hold {end - begin} "
                                   f"bytes but shape {shape} of {dtype} needs {nbytes}")
        if end > data_size:
            raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}] run past the end of "
                                   f"the data section ({data_size} bytes); the file is truncated "
                                   f"or corrupt")
        # Only an empty tensor gets here with absurd dims (e.g. [0, 2**63]); NumPy cannot shape those.
        if len(shape) > 64 or math.prod(d for d in shape if d) * DTYPES[dtype].itemsize >= 2**63:
            raise SafetensorsError(f"{where}: shape {shape!r:.200} has more dimensions (max 64) or "
                                   f"elements than NumPy can represent")
        ranges.append((begin, end, key))
    # Overlap: after sorting by begin, each non-empty range must start at or after the previous end.
    ranges.sort()
    prev_end, prev_key = 0, None
    for begin, end, key in ranges:
        if begin == end:
            continue
        if begin < prev_end:
            raise SafetensorsError(f"{name}: tensor {key!r}: data_offsets [{begin}, {end}] overlap "
                                   f"tensor {prev_key!r} (which ends at {prev_end})")
        prev_end, prev_key = end, key


def load_file(path):
    """Load every tensor of a .safetensors file as NumPy arrays, in header order.

    F64/F32/F16/integer/BOOL tensors are zero-copy, read-only views of one ``np.memmap`` of the
    file (F16 stays float16). BF16 is widened to float32 (a copy). A tensor whose bytes are not
    aligned for its dtype is copied into an aligned array rather than returned as an unaligned view.
    """
    header, data_start = read_header(path)
    mm = map_file(path)
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        start = data_start + begin
        raw = mm[start:data_start + end].view(np.ndarray)  # plain ndarray view of the map, no copy
        if start % dtype.itemsize:
            raw = raw.copy()  # an unaligned view would work but be slow; an aligned copy is safer
        arr = raw.view(dtype).reshape(info["shape"])  # [nbytes] -> shape
        if info["dtype"] == "BF16":
            arr = widen_bf16(arr)
        out[key] = arr
    return out


def load_metadata(path):
    """Return the ``__metadata__`` string map of a .safetensors file ({} when there is none)."""
    header, _ = read_header(path)
    return dict(header.get("__metadata__") or {})


def save_file(tensors, path, metadata=None):
    """Write ``tensors`` (name -> np.ndarray) to ``path`` as a .safetensors file.

    ``metadata`` defaults to ``{"format": "pt"}``, what HF save_pretrained writes and what
    transformers checks on load (its "format" must be one of pt/tf/flax/mlx). Tensors are written
    C-contiguous little-endian, ordered by item size (largest first) then name, so each is aligned.
    The file appears under its final name only once complete (temp file + rename).
    """
    path = os.fspath(path)
    if metadata is None:
        metadata = {"format": "pt"}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError(f"{path}: metadata must be a dict of str to str, got {metadata!r:.200}")
    if not isinstance(tensors, dict):
        raise SafetensorsError(f"{path}: tensors must be a dict of name to array, "
                               f"got {type(tensors).__name__}")

    arrays = []
    for key, value in tensors.items():
        if not isinstance(key, str) or key == "__metadata__":
            raise SafetensorsError(f"{path}: tensor name {key!r} is not allowed; names must be "
                                   f"strings other than '__metadata__'")
        arr = np.asarray(value)
        st_dtype = _NP_TO_ST.get((arr.dtype.kind, arr.dtype.itemsize))
        if st_dtype is None:
            raise SafetensorsError(f"{path}: tensor {key!r}: NumPy dtype {arr.dtype} cannot be "
                                   f"stored; use one of float64/32/16, (u)int8-64, bool, complex64")
        # C order, little-endian; np.array keeps 0-d shapes (ascontiguousarray would make them 1-d).
        arr = np.array(arr, dtype=DTYPES[st_dtype], order="C", copy=None)
        arrays.append((-arr.dtype.itemsize, key, st_dtype, arr))
    arrays.sort(key=lambda t: (t[0], t[1]))

    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for _, key, st_dtype, arr in arrays:
        header[key] = {"dtype": st_dtype, "shape": list(arr.shape),
                       "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    head += b" " * (-len(head) % 8)  # pad so the data section starts at a multiple of 8

    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # 0o666 through os.open so the umask applies, as for any normally created file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(len(head).to_bytes(8, "little"))
            f.write(head)
            for _, _, _, arr in arrays:
                f.write(arr.reshape(-1).view(np.uint8).data)  # raw bytes, no extra copy
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
