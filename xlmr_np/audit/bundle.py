"""Golden bundles for porters: our float64 oracle's and float32 run's trace points as files C and Rust read
without Python, with a manifest that says exactly what they were computed from.

`export_bundle(model_dir, inputs, out)` (the `golden export` command, xlmr_np/cli/golden.py) writes

    BUNDLE/manifest.json              what, from which files, by which software, when (below)
    BUNDLE/inputs/input_ids.npy       the inputs, int64 [B, T]; attention_mask always (input_ids != pad_token_id
                                      when not given, as trace does), token_type_ids, position_ids when given;
                                      attention_mask 0 marks pad positions, never compared
    BUNDLE/float64/<point>.npy        every trace point of the float64 oracle (sub-steps included), in forward order
    BUNDLE/float32/<point>.npy        the same from the float32 run
    BUNDLE/float64.safetensors        (format "safetensors" or "both") the same arrays in one file per dtype

`.npy` is NumPy's format version 1.0: the magic b"\\x93NUMPY", two version bytes, a little-endian u16 header
length, a Python-literal header {'descr': '<f8', 'fortran_order': False, 'shape': (2, 7, 32)} padded with
spaces to a multiple of 64 bytes, then the raw little-endian C-order data (examples/read_bundle.c reads one in a
few lines). The safetensors files are written by xlmr_np.weights.safetensors_file.save_file.

manifest.json records: the sha256 and size of config.json and of every weight file the model read ("checkpoint"),
of each input file and of each array file; the class; the seed when the inputs were drawn at random; the dtypes;
the xlmr_np, NumPy and Python versions; the BLAS library and thread counts; the date (UTC); the tolerance
presets a port is held to (xlmr_np.audit.compare.TOLERANCES, with their reasons). `check_checkpoint` compares a
model directory with it first, so that a golden made on other weights says "the checkpoint changed since this
golden was recorded" instead of a bare FAIL.

The points are those of xlmr_np.audit.trace.trace (every sub-step of the naming scheme in points.py), and a
bundle is compared like any other trace: xlmr_np.audit.compare.compare under the preset of its dtype.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..config import XLMRobertaConfig
from ..errors import ProvenanceError
from ..weights.files import find_weight_files
from .compare import TOLERANCES, compare
from .trace import check_inputs, trace_checkpoint, with_attention_mask

FORMAT = "xlmr_np golden bundle"
FORMAT_VERSION = 1
DTYPES = ("float64", "float32")  # the oracle first: it is what a port is measured against
ARRAY_FORMATS = ("npy", "safetensors", "both")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")  # trace point names become file names


# --- hashes and provenance --------------------------------------------------------------------------------------
def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_files(model_dir) -> list:
    """The files a model is computed from: config.json, the weight files xlmr_np reads (the one HF prefers, or
    every shard) and a shard index, as paths inside `model_dir`."""
    model_dir = Path(model_dir)
    _, weights = find_weight_files(model_dir)
    index = [model_dir / name for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json")
             if (model_dir / name).is_file() and len(weights) > 1]
    return [model_dir / "config.json"] + index + [Path(w) for w in weights]


def file_record(path) -> dict:
    return {"sha256": sha256_file(path), "bytes": os.path.getsize(path)}


def checkpoint_record(model_dir) -> dict:
    """{file name relative to model_dir: {"sha256", "bytes"}} for `checkpoint_files`."""
    model_dir = Path(model_dir)
    return {path.relative_to(model_dir).as_posix(): file_record(path) for path in checkpoint_files(model_dir)}


def blas_info() -> dict:
    """Which BLAS NumPy uses and with how many threads (results in float32 depend on both)."""
    info = {"cpu_count": os.cpu_count()}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name):
            info[name] = os.environ[name]
    try:
        from ..runtime.openblas import openblas

        blas = openblas()
        if blas is not None:
            info["openblas_threads"] = blas.get()
    except OSError:  # no usable OpenBLAS library: the count is unknown, the rest still stands
        pass
    try:
        config = np.show_config(mode="dicts")
        blas_config = config.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = f"{blas_config.get('name', '?')} {blas_config.get('version', '')}".strip()
    except (TypeError, AttributeError):  # NumPy < 1.26 prints its config and returns nothing
        pass
    return info


def versions() -> dict:
    from .. import __version__

    return {"xlmr_np": __version__, "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tolerance_presets() -> dict:
    """Every preset of compare.TOLERANCES as recorded in the manifest: atol, rtol, the rule and the reason."""
    rule = "max|ours - theirs| <= max(atol, rtol * max|ours|) over unmasked positions; NaN/Inf there fails"
    return {name: {"atol": t.atol, "rtol": t.rtol, "rule": rule, "reason": t.reason} for name, t in TOLERANCES.items()}


def check_checkpoint(recorded: dict, model_dir, what="this golden") -> None:
    """Raise ProvenanceError unless `model_dir` holds the files `recorded` ({name: {"sha256", ...}}) names, with
    the same contents; the message names each file that changed, with both hashes."""
    model_dir = Path(model_dir)
    problems = []
    for name, record in recorded.items():
        path = model_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing")
            continue
        now = sha256_file(path)
        if now != record["sha256"]:
            problems.append(f"{name} sha256 {now[:16]}... != {record['sha256'][:16]}... (recorded)")
    try:
        now_files = {p.relative_to(model_dir).as_posix() for p in checkpoint_files(model_dir)}
    except ValueError:
        now_files = set()
    extra = sorted(now_files - set(recorded))
    if extra:
        problems.append(f"it now reads {', '.join(extra)}, which {what} did not record")
    if problems:
        raise ProvenanceError(f"the checkpoint changed since {what} was recorded: {'; '.join(problems)} "
                              f"(in {model_dir}); record it again, or point --model at the checkpoint it was "
                              f"made from")


# --- writing and reading bundles --------------------------------------------------------------------------------
def _write_npy(path: Path, array) -> dict:
    array = np.ascontiguousarray(array)
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    with open(path, "wb") as handle:
        np.lib.format.write_array(handle, array, version=(1, 0), allow_pickle=False)
    return {"sha256": sha256_file(path), "dtype": array.dtype.str, "shape": list(array.shape)}


def export_bundle(model_dir, inputs: dict, out, cls, dtypes=DTYPES, array_format="npy", seed=None,
                  inputs_file=None, overwrite=False) -> dict:
    """Trace `cls` from `model_dir` on `inputs` in each dtype and write a bundle to `out` (layout above).

    The bundle is written to a temporary folder beside `out` and renamed into place when complete, so an error
    never leaves half a bundle. An existing `out` is replaced only with `overwrite` and only if it is a bundle
    (holds manifest.json). Returns the manifest."""
    if array_format not in ARRAY_FORMATS:
        raise ValueError(f"array format {array_format!r}: choose from {', '.join(ARRAY_FORMATS)}")
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise ValueError(f"dtypes {list(dtypes)}: choose from {', '.join(DTYPES)}")
    out = Path(out)
    if os.path.lexists(out):  # a symbolic link to nowhere (or to itself) exists too: Path.exists() says False
        if not overwrite:
            raise ValueError(f"{out} exists: pass --overwrite to replace it, or choose another --out")
        if not (out / "manifest.json").is_file():
            raise ValueError(f"{out} exists and is not a golden bundle (no manifest.json): it is not replaced; "
                             f"choose another --out")
    inputs = check_inputs(inputs)
    model_dir = Path(model_dir)
    inputs = with_attention_mask(inputs, XLMRobertaConfig.from_pretrained(model_dir).pad_token_id)  # recorded
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "generator": "python -m xlmr_np golden export",
                "class": cls.__name__, "model": str(model_dir), "checkpoint": checkpoint_record(model_dir),
                "inputs": {}, "inputs_source": None, "seed": seed, "dtypes": list(dtypes), "points": {},
                "safetensors": {}, "masked_positions": "inputs/attention_mask.npy == 0: padding, not compared",
                "versions": versions(), "threads": blas_info(), "date": utc_now(),
                "tolerances": tolerance_presets(), "points_scheme": "xlmr_np/audit/points.py (docs/verification.md)"}
    if inputs_file is not None:
        manifest["inputs_source"] = {"file": os.path.basename(os.fspath(inputs_file)), **file_record(inputs_file)}
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (work / "inputs").mkdir()
        for name, value in inputs.items():
            manifest["inputs"][name] = {"file": f"inputs/{name}.npy", **_write_npy(work / "inputs" / f"{name}.npy",
                                                                                   value)}
        for dtype in dtypes:
            points, _ = trace_checkpoint(cls, model_dir, dtype=dtype, inputs=inputs)
            bad_names = [name for name in points if not _SAFE_NAME.match(name)]
            if bad_names:
                raise ValueError(f"trace point names {bad_names} cannot be file names")
            records = []
            if array_format in ("npy", "both"):
                (work / dtype).mkdir()
                for name, value in points.items():
                    records.append({"name": name, "file": f"{dtype}/{name}.npy",
                                    **_write_npy(work / dtype / f"{name}.npy", value)})
            else:
                records = [{"name": name, "dtype": np.asarray(v).dtype.str, "shape": list(np.shape(v))}
                           for name, v in points.items()]
            if array_format in ("safetensors", "both"):
                from ..weights.safetensors_file import save_file

                file = f"{dtype}.safetensors"
                save_file({name: np.asarray(v) for name, v in points.items()}, work / file,
                          metadata={"format": "np", "producer": "xlmr_np golden export", "dtype": dtype})
                manifest["safetensors"][dtype] = {"file": file, **file_record(work / file)}
            manifest["points"][dtype] = records
        with open(work / "manifest.json", "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2)
            handle.write("\n")
        if os.path.lexists(out):
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(work, out)
            shutil.rmtree(old)
        else:
            os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def read_manifest(bundle) -> dict:
    path = Path(bundle) / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{bundle}: no manifest.json, so not a golden bundle (python -m xlmr_np golden export "
                         f"writes one)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("checkpoint"), dict):
        raise ValueError(f"{path}: not a manifest (no \"checkpoint\" object of file hashes)")
    return manifest


def is_bundle(path) -> bool:
    return Path(path).is_dir() and (Path(path) / "manifest.json").is_file()


def _malformed(bundle: Path, what: str) -> ValueError:
    return ValueError(f"{bundle}/manifest.json: {what}; the manifest was edited or damaged: export the bundle again")


def _read_npy(bundle: Path, record: dict, what: str):
    if not isinstance(record, dict) or not isinstance(record.get("file"), str):
        raise _malformed(bundle, f"the record of {what} has no \"file\" name")
    relative = record["file"]
    path = (bundle / relative).resolve()
    if bundle.resolve() not in path.parents:
        raise ValueError(f"{bundle}/manifest.json: {what} file {relative!r} lies outside the bundle")
    if not path.is_file():
        raise ValueError(f"{bundle}: {relative} is missing ({what})")
    if "sha256" in record and sha256_file(path) != record["sha256"]:
        raise ProvenanceError(f"{bundle}: {relative} changed since the bundle was recorded (its sha256 differs "
                              f"from manifest.json's): export the bundle again")
    return np.load(path, allow_pickle=False)


def read_bundle_inputs(bundle) -> tuple:
    """(manifest, inputs) of a bundle, each input file's sha256 checked against the manifest first."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    records = manifest.get("inputs")
    if not isinstance(records, dict) or "input_ids" not in records:
        raise _malformed(bundle, "no \"inputs\" object with input_ids")
    inputs = {name: _read_npy(bundle, record, f"input {name}") for name, record in records.items()}
    try:
        return manifest, check_inputs(inputs, f"{bundle}/inputs")
    except ValueError as err:
        raise _malformed(bundle, str(err)) from None


def read_bundle(bundle, dtype=None):
    """(manifest, inputs, points) of a bundle: `points` is {dtype: {name: array}} (or only `dtype`'s), every file's
    sha256 checked against the manifest first."""
    bundle = Path(bundle)
    manifest, inputs = read_bundle_inputs(bundle)
    points = {}
    for kind in ([dtype] if dtype else manifest.get("dtypes", [])):
        if not isinstance(manifest.get("points"), dict) or kind not in manifest["points"]:
            raise ValueError(f"{bundle}: holds no {kind} trace (it has {', '.join(map(str, manifest.get('dtypes', [])))})")
        records = manifest["points"][kind]
        if not records or not isinstance(records, list) or not all(
                isinstance(r, dict) and isinstance(r.get("name"), str) for r in records):
            raise _malformed(bundle, f"\"points\": {kind!r} is not a list of named point records")
        if "file" in records[0]:
            points[kind] = {r["name"]: _read_npy(bundle, r, f"{kind} point {r['name']}") for r in records}
        else:
            from ..weights.safetensors_file import load_file

            record = (manifest.get("safetensors") or {}).get(kind) if isinstance(manifest.get("safetensors"), dict) \
                else None
            if not isinstance(record, dict) or not isinstance(record.get("file"), str):
                raise _malformed(bundle, f"the {kind} points name no file and no \"safetensors\" file holds them")
            path = (bundle / record["file"]).resolve()
            if bundle.resolve() not in path.parents or not path.is_file():
                raise _malformed(bundle, f"the {kind} safetensors file {record['file']!r} is missing or lies "
                                         f"outside the bundle")
            if sha256_file(path) != record["sha256"]:
                raise ProvenanceError(f"{bundle}: {record['file']} changed since the bundle was recorded")
            loaded = load_file(path)
            points[kind] = {r["name"]: np.array(loaded[r["name"]]) for r in records}
    return manifest, inputs, points


def check_bundle(bundle, model_dir) -> dict:
    """The hash check alone: `model_dir` must hold the checkpoint the bundle was recorded from."""
    manifest = read_manifest(bundle)
    check_checkpoint(manifest["checkpoint"], model_dir, what=f"the golden {bundle}")
    return manifest


def replay_bundle(bundle, model_dir, cls, dtype="float32"):
    """Check the hashes, trace `cls` from `model_dir` on the bundle's inputs and compare with its `dtype` points
    under the `dtype` preset: a compare.Report."""
    check_bundle(bundle, model_dir)
    _, inputs, points = read_bundle(bundle, dtype)
    ours, mask = trace_checkpoint(cls, model_dir, dtype=dtype, inputs=inputs)
    return compare(ours, points[dtype], dtype, where=mask)


def case_manifest_check(case_dir, model_dir):
    """For `verify`: a golden case made by tools/make_user_golden.py records manifest.json; check the checkpoint
    against it. Returns None when checked, or a note when the case predates manifests (nothing to check)."""
    path = Path(case_dir) / "manifest.json"
    if not path.is_file():
        return f"{case_dir} has no manifest.json (made before provenance was recorded): checkpoint hashes not checked"
    manifest = read_manifest(case_dir)
    check_checkpoint(manifest["checkpoint"], model_dir, what=f"the golden {case_dir}")
    for name, record in manifest.get("inputs", {}).items():
        file = Path(case_dir) / record.get("file", name)
        if file.is_file() and "sha256" in record and sha256_file(file) != record["sha256"]:
            raise ProvenanceError(f"{case_dir}: {record.get('file', name)} changed since the golden was recorded "
                                  f"(sha256 differs from manifest.json's)")
    return None
