"""Where do two implementations first diverge? Traces of every named step of one forward pass.

    ours = trace(model, input_ids, attention_mask=mask)          # {name: array}, in forward order
    report = compare(ours, theirs, tolerance="float32", where=mask)
    print(format_text(report)); sys.exit(report.exit_code)

`trace(model, input_ids=None, **inputs)` runs a model with the reference kernels (core.model.REFERENCE: the
fast paths of xlmr_np.runtime record no sub-steps) and returns every trace point named in
xlmr_np/audit/points.py: "embeddings.word" ... "embeddings", then per layer "layers.{i}.attention.query" ...
"layers.{i}.ffn.norm", "layers.{i}", then the head's output fields under HF's names ("last_hidden_state",
"pooler_output", "logits", "start_logits", ...). The other implementation dumps the same names (or HF's
"hidden_states.k" / "attentions.k") to an .npz, read with `read_trace`; `xlmr_np.audit.hf_trace.trace_hf`
does it for a transformers model. `compare`, the presets `TOLERANCES` and the formats `format_text` /
`format_json` live in compare.py and report.py and are re-exported here. `read_inputs` reads the inputs .npz
of `trace --inputs`; `trace_checkpoint` loads a checkpoint and traces it (the `trace` command's model side).
"""
from __future__ import annotations

import copy
import os
import zipfile

import numpy as np

from ..backend import to_numpy
from ..core.model import REFERENCE
from ..modeling import MODEL_CLASSES
from .compare import TOLERANCES, Point, Report, Tolerance, compare, first_divergence, resolve_tolerance
from .points import canonical_name, naming_table
from .report import format_json, format_text, report_dict

format_report = format_text  # the old name
__all__ = ["trace", "compare", "format_text", "format_json", "report_dict", "TOLERANCES", "Tolerance", "Point",
           "Report", "resolve_tolerance", "first_divergence", "canonical_name", "naming_table", "read_trace",
           "write_trace", "read_inputs", "check_inputs", "with_attention_mask", "token_ids", "trace_checkpoint", "model_class", "format_report"]


def trace(model, input_ids=None, **inputs) -> dict:
    """Every trace point of one forward pass, in forward order, as NumPy arrays in the model's dtype.

    The model runs with the reference kernels whatever its own kernel set is (a shallow copy with
    kernels=REFERENCE: the parameters are shared, nothing is loaded again). `inputs` are the model's call
    keywords (attention_mask, token_type_ids, position_ids, ...). Output fields that are tuples
    (hidden_states, attentions, past_key_values) and the loss are left out: their arrays are trace points.
    """
    reference = copy.copy(model)
    reference.kernels = REFERENCE
    steps: dict = {}
    out = reference(input_ids, trace=steps, **inputs)
    result = {name: to_numpy(value) for name, value in steps.items()}
    for key in out.keys():
        value = out[key]
        if key != "loss" and not isinstance(value, tuple):
            result[key] = to_numpy(value)
    return result


def model_class(name: str):
    """The xlmr_np class called `name` (HF's class names: XLMRobertaModel, XLMRobertaForMaskedLM, ...)."""
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown class {name!r}; choose from {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[name]


def trace_checkpoint(cls, model_dir, ids=None, dtype="float32", inputs=None):
    """Load `cls` from `model_dir` and trace it on `ids` ([B, T] token ids, padded with the pad id) or on
    `inputs` (a dict from read_inputs: input_ids and optionally attention_mask, token_type_ids, position_ids).

    Returns (trace, attention mask): the mask is the inputs' attention_mask, else 1 wherever the ids are not
    the config's pad_token_id; it is the `where` that keeps pad positions out of `compare`.
    """
    inputs = dict(inputs or {})
    if ids is not None:
        inputs["input_ids"] = token_ids(ids)
    if "input_ids" not in inputs:
        raise ValueError("trace_checkpoint: give ids or inputs with input_ids")
    model = cls.from_pretrained(model_dir, dtype=dtype)
    inputs = with_attention_mask(inputs, model.config.pad_token_id)
    return trace(model, **inputs), inputs["attention_mask"]


def with_attention_mask(inputs: dict, pad_token_id) -> dict:
    """`inputs` with an attention_mask: the one given, else 1 wherever input_ids is not the pad id. It is what
    trace_checkpoint runs and compares with, what a golden bundle records, and what trace --onnx feeds."""
    if "attention_mask" in inputs:
        return inputs
    return {**inputs, "attention_mask": (np.asarray(inputs["input_ids"]) != pad_token_id).astype(np.int64)}


INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


def read_inputs(path) -> dict:
    """The inputs .npz of `trace --inputs` (and of golden bundles): input_ids [B, T] (multiple choice:
    [B, C, T]) and optionally attention_mask, token_type_ids, position_ids of the same shape, all integers.

    A ValueError names the file and the problem: not an .npz, no input_ids, an unknown name, a float or
    ragged array, shapes that differ. Token ids out of range are reported by the model when it runs.
    """
    return check_inputs(read_trace(path), os.fspath(path))


def check_inputs(arrays: dict, where="inputs") -> dict:
    """`arrays` checked as model inputs (read_inputs' rules; `where` names them in messages), as int64 arrays."""
    unknown = sorted(set(arrays) - set(INPUT_NAMES))
    if unknown:
        raise ValueError(f"{where}: unknown input(s) {', '.join(unknown)}; an inputs .npz holds "
                         f"{', '.join(INPUT_NAMES)} (input_ids required)")
    if "input_ids" not in arrays:
        raise ValueError(f"{where}: no input_ids; save numpy.savez(path, input_ids=ids, "
                         f"attention_mask=mask, ...)")
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    shape = arrays["input_ids"].shape
    if len(shape) not in (2, 3) or 0 in shape:
        raise ValueError(f"{where}: input_ids has shape {list(shape)}; give [batch, tokens] "
                         f"([batch, choices, tokens] for multiple choice), none of them 0")
    for name, value in arrays.items():
        if value.dtype.kind not in "iub":
            raise ValueError(f"{where}: {name} holds {value.dtype} values; token ids, masks, types "
                             f"and positions are integers (e.g. int64)")
        if value.dtype.kind == "u" and value.size and value.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{where}: {name} holds {value.max()}, beyond int64; token ids, masks, types and "
                             f"positions are small integers")
        if value.shape != shape:
            raise ValueError(f"{where}: {name} has shape {list(value.shape)} but input_ids has "
                             f"{list(shape)}; they must match")
    return {name: arrays[name].astype(np.int64) for name in INPUT_NAMES if name in arrays}


def token_ids(ids):
    """`ids` (sequences of token ids, all of one length) as an int64 array [B, T]; a ValueError says what is wrong."""
    rows = [ids] if isinstance(ids, np.ndarray) and ids.ndim == 1 else list(ids)
    if not rows:
        raise ValueError("ids: no sequence given; pass token ids as [[0, 581, 2], ...]")
    rows = [list(row) if isinstance(row, (list, tuple, np.ndarray)) else row for row in rows]
    if not all(isinstance(row, list) for row in rows):
        rows = [rows]  # one flat sequence
    for n, row in enumerate(rows, 1):
        if not row:
            raise ValueError(f"ids: sequence {n} is empty")
        bad = next((t for t in row if isinstance(t, bool) or not isinstance(t, (int, np.integer))), None)
        if bad is not None:
            raise ValueError(f"ids: sequence {n} holds {bad!r}, which is not a token id (an integer)")
    lengths = [len(row) for row in rows]
    if len(set(lengths)) > 1:
        n = next(i for i, length in enumerate(lengths, 1) if length != lengths[0])
        raise ValueError(f"ids: sequence {n} has {lengths[n - 1]} tokens but sequence 1 has {lengths[0]}: all must "
                         f"have one length; pad the shorter ones with the pad id (1 for XLM-R)")
    return np.array(rows, dtype=np.int64)


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: assume 16 GB
        return 16 * 10 ** 9


# The most an .npz of activations may inflate to (the sum of its members' uncompressed sizes): half this
# machine's memory, so that a small deflated file of zeros (a zip bomb) is refused before it is read.
MAX_NPZ_BYTES = _physical_memory() // 2


def _megabytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 10 ** 9 else f"{n / 1e6:.1f} MB" if n >= 10 ** 6 else f"{n} bytes"


def check_npy_sizes(path, archive: zipfile.ZipFile):
    """Refuse an .npz before numpy allocates anything for it: the members must inflate to at most MAX_NPZ_BYTES
    in all, and each .npy header's shape must fit in the bytes its member stores (numpy allocates what the
    header claims before reading, so an 8-byte member claiming 10^12 floats was a MemoryError)."""
    infos = [info for info in archive.infolist() if not info.is_dir()]
    total = sum(info.file_size for info in infos)
    if total > MAX_NPZ_BYTES:
        raise ValueError(f"its arrays would inflate to {_megabytes(total)}, more than the {_megabytes(MAX_NPZ_BYTES)} "
                         f"this reader allows (half this machine's memory); dump fewer points or a smaller batch")
    for info in infos:
        with archive.open(info) as member:
            try:
                version = np.lib.format.read_magic(member)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(member) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(member))
            except ValueError:
                continue  # not an .npy: np.load reports it
            claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if not dtype.hasobject and member.tell() + claimed > info.file_size:
                raise ValueError(f"array {info.filename.removesuffix('.npy')!r} claims shape {list(shape)} "
                                 f"({_megabytes(claimed)} of {dtype}) but stores {_megabytes(info.file_size)}: the "
                                 f"file is truncated or corrupt")


def read_trace(path) -> dict:
    """An .npz of activations (another implementation's trace) as {name: array}; a ValueError names the file and
    what is wrong with it (not an .npz archive, an array of Python objects rather than numbers, arrays that
    would inflate beyond MAX_NPZ_BYTES, a header that claims more than its member stores)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        kind = "an .npy file (one array)" if path.endswith(".npy") else "not an .npz archive"
        raise ValueError(f"{path}: {kind}; the trace to compare with is an .npz with one array per activation name "
                         f"(numpy.savez(path, embeddings=..., **{{'layers.0': ...}}))")
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                check_npy_sizes(path, archive)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        with np.load(path, allow_pickle=False) as data:
            arrays = {}
            for name in data.files:
                try:
                    arrays[name] = data[name]
                except ValueError:  # numpy's advice is to load it unsafely; the fix is to store numbers
                    raise ValueError(f"{path}: array {name!r} holds Python objects (pickled), not numbers; save "
                                     f"numeric arrays (e.g. float32)") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: cannot read it as an .npz archive ({err})") from None
    if not arrays:
        raise ValueError(f"{path}: the archive holds no arrays")
    return arrays


def write_trace(path, activations: dict):
    """Save a trace as an .npz, one array per activation name (what `read_trace` and other ports read)."""
    np.savez(path, **activations)
