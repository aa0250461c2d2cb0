"""Read PyTorch `pytorch_model.bin` files (torch >= 1.6 zip format) without torch and without running code.

Reference behaviour: torch 2.x `torch/serialization.py` (`_save` writes, `_load` reads) whose zip holds
    <prefix>/data.pkl        a protocol-2 pickle of the state dict (an OrderedDict of tensors)
    <prefix>/data/<key>      the raw little-endian bytes of each storage, stored uncompressed
    <prefix>/byteorder       "little" (newer torch), <prefix>/version, ...
Inside data.pkl each tensor is a call `torch._utils._rebuild_tensor_v2(storage, storage_offset,
size, stride, requires_grad, backward_hooks)`, and each storage is a persistent id
`("storage", torch.FloatStorage, key, location, numel)`.

Safety: a pickle is a program. It is run by `restricted_unpickler.RestrictedUnpickler` (the
standard library's pure-Python unpickler, narrowed as torch's `weights_only=True` unpickler is)
with (1) `find_class` answering only an allow-list of names, each mapped to a stand-in defined in
this module (no torch, no import of the named module), (2) the opcodes that instantiate or mutate
arbitrary objects (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*, and BUILD except on dicts) removed,
(3) every value it builds bounded in depth and size as it is built (no pickle bomb of shared
tuples is ever hashed or printed), and (4) storages resolved to NumPy views whose sizes are checked
against the zip entries. Anything else in the file is refused with a `CheckpointError` naming the
global or the construct; nothing is executed.

Storages are zero-copy read-only views of one `np.memmap` of the file when the zip entry is stored
uncompressed and aligned for its dtype (torch aligns entries to 64 bytes); otherwise a copy.
A BF16 storage is widened to float32 once (`dtypes.widen_bf16`, a copy twice its size) and all its
tensors are read-only views of that copy, as torch's tensors are views of one storage. Every
tensor's offset, sizes and strides are checked to stay inside its storage, so nothing reads past
the data, and no tensor has more elements than its storage; memory is at most twice the file size.
"""

import collections
import math
import os
import pickle
import struct
import zipfile

import numpy as np

from ..errors import CheckpointError
from .dtypes import BF16_BITS, widen_bf16
from .mapping import map_file
from .restricted_unpickler import RestrictedUnpickler, short_repr

__all__ = ["load_torch_file", "STORAGE_DTYPES"]

# torch.<Name>Storage -> little-endian NumPy dtype of its elements. BFloat16 is read as its
# 16-bit patterns and widened to float32.
STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": BF16_BITS,
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
    "ComplexFloatStorage": np.dtype("<c8"),
    "ComplexDoubleStorage": np.dtype("<c16"),
}
MAX_PICKLE_BYTES = 64 * 2**20  # data.pkl of a 10k-tensor state dict is ~1 MB
_ZIP_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes, signature PK\x03\x04
_MAX_DIM = 2**62


class _StorageType:
    """Stand-in for a torch.<Name>Storage global: only a tag carrying the element dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage:
    """A storage resolved from the zip: a 1-D array of its elements (raw bits for BF16)."""

    def __init__(self, key, storage_type, data):
        self.key, self.type, self.data = key, storage_type, data
        self._values = None

    def values(self):
        """The elements as its tensors see them. A BF16 storage is widened to float32 once, on first
        use, and every tensor is a read-only view of that copy (as torch's views share a storage):
        100 views of one 4 MB storage cost 8 MB, not 100 widened copies."""
        if self._values is None:
            if self.type.name == "BFloat16Storage":
                self._values = widen_bf16(self.data)
                self._values.flags.writeable = False
            else:
                self._values = self.data
        return self._values


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """Stand-in for torch._utils._rebuild_tensor(_v2): a NumPy view of `storage` (validated).

    The view is of `storage.values()`: the mapped file, or for BF16 the storage's one float32 copy.
    """
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor is rebuilt from {type(storage).__name__}, not a storage")
    if (not _is_int(storage_offset) or storage_offset < 0
            or not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list))
            or len(size) != len(stride) or len(size) > 64
            or not all(_is_int(d) and 0 <= d < _MAX_DIM for d in size)
            or not all(_is_int(s) and 0 <= s < _MAX_DIM for s in stride)):
        raise CheckpointError(f"storage {storage.key!r}: invalid tensor layout offset="
                              f"{short_repr(storage_offset)} size={short_repr(size)} "
                              f"stride={short_repr(stride)}")
    base = storage.values()
    itemsize = base.dtype.itemsize
    numel = math.prod(size)
    if numel == 0:
        view = base[:0].reshape(size)  # [0] -> size (empty)
    else:
        last = storage_offset + sum((d - 1) * s for d, s in zip(size, stride))
        if last >= base.size or numel > base.size:
            raise CheckpointError(
                f"storage {storage.key!r} holds {base.size} elements but a tensor of size "
                f"{list(size)}, stride {list(stride)}, offset {storage_offset} needs "
                f"{max(last + 1, numel)}; the file is corrupt")
        contiguous = [math.prod(size[i + 1:]) for i in range(len(size))]
        if all(s == c for d, s, c in zip(size, stride, contiguous) if d > 1):
            view = base[storage_offset:storage_offset + numel].reshape(size)  # [numel] -> size
        else:  # a strided view (e.g. a saved transpose); checked above to stay inside the storage
            view = np.lib.stride_tricks.as_strided(
                base[storage_offset:], shape=size, strides=[s * itemsize for s in stride],
                writeable=False)
    return view


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    """Stand-in for torch._utils._rebuild_parameter(_with_state): the parameter's tensor."""
    if not isinstance(data, np.ndarray):
        raise CheckpointError(f"a parameter wraps {type(data).__name__}, not a tensor")
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}

def _refuse_not_zip(path, head):
    if head.startswith(b"\x80") or head[:1] in (b"(", b"}", b"]"):
        raise CheckpointError(
            f"{path}: this is the legacy (torch < 1.6) serialization format, which xlmr_np does "
            f"not read. Re-save it with torch >= 1.6 (torch.save(torch.load(path, "
            f"weights_only=True), path)) or save the model with save_pretrained(..., "
            f"safe_serialization=True).")
    if head[257:262] == b"ustar":
        raise CheckpointError(f"{path}: this is the tar-based torch serialization (torch < 1.0), "
                              f"which xlmr_np does not read; re-save it with a recent torch")
    raise CheckpointError(f"{path}: not a torch checkpoint (expected a zip archive, the format of "
                          f"torch.save since 1.6)")


class _TorchZip:
    """The zip archive of a torch.save file, with entries located and bounds-checked by hand."""

    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, EOFError,
                OverflowError, IndexError, KeyError, NotImplementedError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable zip archive ({e})") from None
        if not infos:
            raise CheckpointError(f"{path}: the zip archive is empty")
        self.infos = {}
        for info in infos:  # one pass with a dict: linear in the number of entries
            if info.filename in self.infos:
                raise CheckpointError(f"{path}: the zip archive has the entry "
                                      f"{info.filename[:200]!r} twice")
            self.infos[info.filename] = info
        names = list(self.infos)
        self.prefix = names[0].split("/")[0]  # torch names the folder after the file stem
        self.mm = map_file(path)

    def entry(self, name, what):
        """The bytes of entry `prefix/name` as a read-only uint8 view of the file."""
        full = f"{self.prefix}/{name}"
        info = self.infos.get(full)
        if info is None:
            raise CheckpointError(f"{self.path}: {what} is missing (no zip entry {full!r}); the "
                                  f"file is truncated or corrupt")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise CheckpointError(f"{self.path}: zip entry {full!r} is compressed or encrypted; "
                                  f"torch.save stores entries uncompressed, so the file was "
                                  f"repacked or is corrupt")
        if info.compress_size != info.file_size:
            raise CheckpointError(f"{self.path}: zip entry {full!r} is stored but its sizes "
                                  f"disagree ({info.compress_size} vs {info.file_size})")
        at = info.header_offset  # zipfile adds any bytes before the archive: it can be negative
        if at < 0 or at + _ZIP_LOCAL_HEADER.size > self.size:
            raise CheckpointError(f"{self.path}: zip entry {full!r} has its local header at offset "
                                  f"{at}, outside the file ({self.size} bytes); the file is corrupt")
        fields = _ZIP_LOCAL_HEADER.unpack(self.mm[at:at + _ZIP_LOCAL_HEADER.size].tobytes())
        name_len, extra_len = fields[9], fields[10]
        local_name = self.mm[at + 30:at + 30 + name_len].tobytes()
        if fields[0] != b"PK\x03\x04" or local_name != full.encode("utf-8"):
            raise CheckpointError(f"{self.path}: zip entry {full!r} has a corrupt local header")
        start = at + 30 + name_len + extra_len
        if start + info.file_size > self.size:
            raise CheckpointError(f"{self.path}: zip entry {full!r} claims {info.file_size} bytes, "
                                  f"past the end of the file ({self.size} bytes)")
        return self.mm[start:start + info.file_size].view(np.ndarray)  # no copy


def load_torch_file(path):
    """Load a `pytorch_model.bin` (torch >= 1.6 zip) as {name: np.ndarray}, executing nothing.

    Raises CheckpointError for a legacy-format file, a refused global, or any corruption.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(512)
    if not head.startswith(b"PK\x03\x04"):
        _refuse_not_zip(path, head)
    archive = _TorchZip(path)

    byteorder = "little"
    if f"{archive.prefix}/byteorder" in archive.infos:
        byteorder = archive.entry("byteorder", "the byteorder record").tobytes().decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{path}: unknown byteorder record {byteorder!r:.40}")

    storages = {}

    def load_storage(pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not _is_int(pid[4]) or pid[4] < 0):
            raise CheckpointError(f"{path}: unexpected persistent id {short_repr(pid)}; expected "
                                  f"('storage', torch.<Type>Storage, key, location, numel)")
        _, stype, key, _location, numel = pid
        if key in storages:
            if storages[key].type is not stype:
                raise CheckpointError(f"{path}: storage {key!r} is used as both {storages[key].type} "
                                      f"and {stype}")
            return storages[key]
        raw = archive.entry(f"data/{key}", f"storage {key!r}")
        dtype = stype.dtype
        if raw.size != numel * dtype.itemsize:
            raise CheckpointError(f"{path}: storage {key!r} has {raw.size} bytes but the pickle "
                                  f"claims {numel} elements of {stype} ({numel * dtype.itemsize} "
                                  f"bytes); the file is corrupt")
        if raw.ctypes.data % dtype.itemsize:
            raw = raw.copy()  # unaligned entry: an aligned copy rather than a slow view
        data = raw.view(dtype)  # [nbytes] -> [numel]
        if byteorder == "big":
            data = data.view(dtype.newbyteorder(">")).astype(dtype)  # swap into a little-endian copy
        storages[key] = _Storage(key, stype, data)
        return storages[key]

    pkl = archive.entry("data.pkl", "the pickle data.pkl")
    if pkl.size > MAX_PICKLE_BYTES:
        raise CheckpointError(f"{path}: data.pkl is {pkl.size} bytes, more than a state dict needs "
                              f"({MAX_PICKLE_BYTES}); refusing to unpickle it")
    try:
        obj = RestrictedUnpickler(pkl.tobytes(), _ALLOWED_GLOBALS, load_storage).load()
    except CheckpointError as e:
        msg = str(e)
        raise CheckpointError(msg if msg.startswith(path) else f"{path}: {msg}") from None
    except MemoryError:  # the machine's limit, not the file's fault: memory is bounded by its size
        raise MemoryError(f"{path}: out of memory while loading it (BF16 storages are widened to "
                          f"float32, twice their size); the file itself is not at fault") from None
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, TypeError, ValueError,
            AttributeError, struct.error, OverflowError, RecursionError) as e:
        # Only the allow-listed stand-ins above can run, so any other error is malformed data.
        detail = short_repr(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)[:200]
        raise CheckpointError(f"{path}: data.pkl is corrupt or not a state dict "
                              f"({type(e).__name__}: {detail})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: the pickle holds a {type(obj).__name__}, not a state dict "
                              f"(a mapping of parameter names to tensors)")
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, np.ndarray):
            raise CheckpointError(f"{path}: entry {short_repr(k)} is a {type(v).__name__}, not a tensor; "
                                  f"expected a plain state dict (nested checkpoints such as "
                                  f"{{'state_dict': ...}} are not supported)")
    return dict(obj)
