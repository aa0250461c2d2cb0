"""Corpus jobs: a file of texts in, a file of embeddings out; resumable, on N worker processes.

    from xlmr_np.embeddings.corpus import embed_corpus
    report = embed_corpus("models/e5", "corpus.jsonl", "vectors.npy", field="text", workers=2)

Input (by extension, or input_format=): .txt (one text per line), .jsonl (one JSON object per line, the
text under `field`), .csv (a header row, the text in column `field`), .parquet (column `field`; needs
pyarrow). Every text is checked before anything is computed: a missing field, a non-string value, a line
that is not JSON, or an empty text (by default; empty="keep" embeds it) is an error naming the line.
Too long texts are truncated to the model's limit and counted (report.truncated), or, with
on_too_long="error", refused with the line that was too long.

Output (by extension): .npy, one row per input in input order ([N, D] float32, np.load(..., mmap_mode="r")
reads it without loading it), or .jsonl, one {"index": i, "embedding": [...]} per line (BGE-M3 adds
"lexical_weights" when encode_options asks for return_sparse).

Work is cut into chunks of `chunk_size` consecutive inputs. Each chunk is encoded in length-sorted batches
(the model's own token_states) and written on its own, atomically, to `<output>.parts/`; job.json there
records what the job is (the input's size and sha256, the model folder, every option). Run again with the
same arguments after a kill and the finished chunks are kept, the rest computed; the assembled output is
byte-identical to an uninterrupted run's (each chunk's arithmetic does not depend on which run or worker did
it). Arguments that differ from job.json's are an error (restart=True starts over). When every chunk is
there, the output is assembled (written beside, then renamed) and the parts removed.

Workers (workers=N > 1): N processes (spawned), each loading the model once. The weights are memory maps of
the checkpoint file, so the N processes share one copy in the page cache: only activations, the tokenizer
and the interpreter are per process (docs/embeddings.md gives the measured PSS). Each worker's BLAS gets
max(1, cores // N) threads.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field as dataclass_field
from pathlib import Path

import numpy as np

from .base import EmbeddingError

INPUT_FORMATS = ("txt", "jsonl", "csv", "parquet")
OUTPUT_FORMATS = ("npy", "jsonl")
KINDS = ("auto", "sentence-transformer", "bge-m3")


class CorpusError(EmbeddingError):
    """A corpus file or job that cannot be run; the message names the file, the line and the fix."""


@dataclass
class CorpusReport:
    """What a corpus job did."""

    output: str
    rows: int
    dim: int
    chunks: int
    chunks_computed: int
    chunks_reused: int
    truncated: int
    seconds: float
    workers: int
    kind: str
    notes: list = dataclass_field(default_factory=list)

    def as_dict(self):
        return asdict(self)


# --- reading -----------------------------------------------------------------------------------------------
def read_texts(path, input_format=None, field="text", empty="error"):
    """(texts, line numbers) of a corpus file; every problem is a CorpusError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    kind = input_format or path.suffix.lstrip(".").lower()
    if kind not in INPUT_FORMATS:
        raise CorpusError(f"{path}: unknown input format {kind!r}; use one of {', '.join(INPUT_FORMATS)} "
                          f"(by extension or input_format=)")
    if empty not in ("error", "keep"):
        raise CorpusError(f"empty must be 'error' or 'keep', got {empty!r}")
    texts, lines = [], []

    def add(text, line, where):
        if not isinstance(text, str):
            raise CorpusError(f"{path}:{line}: {where} is {type(text).__name__}, not a string")
        if not text.strip() and empty == "error":
            raise CorpusError(f"{path}:{line}: empty text (pass empty='keep' to embed it anyway, or remove the "
                              f"line)")
        texts.append(text)
        lines.append(line)

    if kind == "txt":
        with open(path, encoding="utf-8", newline="") as f:
            for number, line in enumerate(f, 1):
                add(line.rstrip("\r\n"), number, "the line")
    elif kind == "jsonl":
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    if empty == "keep":
                        continue  # a blank line between records is no record
                    raise CorpusError(f"{path}:{number}: empty line (a JSON object with a {field!r} field expected)")
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise CorpusError(f"{path}:{number}: not JSON ({err.msg} at column {err.colno})") from None
                if not isinstance(record, dict) or field not in record:
                    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                    raise CorpusError(f"{path}:{number}: no field {field!r} (found {keys}); choose the field "
                                      f"with field=")
                add(record[field], number, f"field {field!r}")
    elif kind == "csv":
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or field not in reader.fieldnames:
                raise CorpusError(f"{path}:1: no column {field!r} in the header (columns: {reader.fieldnames}); "
                                  f"choose the column with field=")
            for row in reader:
                add(row[field] if row[field] is not None else "", reader.line_num, f"column {field!r}")
    else:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise CorpusError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
        table = pq.read_table(path)
        if field not in table.column_names:
            raise CorpusError(f"{path}: no column {field!r} (columns: {table.column_names}); choose it with field=")
        for number, text in enumerate(table.column(field).to_pylist(), 1):
            add(text if text is not None else "", number, f"row {number}'s {field!r}")
    return texts, lines


def file_sha256(path, block=2**20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(block), b""):
            digest.update(piece)
    return digest.hexdigest()


# --- the model in each process -----------------------------------------------------------------------------
def model_kind(directory, kind="auto"):
    """bge-m3 when the folder has sparse_linear.pt and colbert_linear.pt, else sentence-transformer."""
    if kind not in KINDS:
        raise CorpusError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind != "auto":
        return kind
    folder = Path(directory)
    return "bge-m3" if (folder / "sparse_linear.pt").is_file() and (folder / "colbert_linear.pt").is_file() \
        else "sentence-transformer"


def load_model(directory, kind, model_options):
    from .bge_m3 import BGEM3
    from .sentence_transformer import SentenceTransformer

    cls = BGEM3 if kind == "bge-m3" else SentenceTransformer
    return cls(directory, **model_options)


def encode_chunk(model, kind, texts, encode_options, on_too_long):
    """(dense [n, D] float32, lexical weights or None, truncated count) for one chunk of texts."""
    options = dict(encode_options)
    if kind == "bge-m3":
        options.setdefault("return_dense", True)
        out = model.encode(texts, on_too_long=on_too_long, **options)
        dense, lexical = out["dense_vecs"], out["lexical_weights"]
    else:
        dense, lexical = model.encode(texts, on_too_long=on_too_long, **options), None
    return np.asarray(dense, dtype=np.float32), lexical, model.truncated


_WORKER = {}


def _init_worker(directory, kind, model_options, blas_threads):
    from ..runtime.openblas import openblas

    if openblas() is not None:
        openblas().set(blas_threads)
    _WORKER["model"] = load_model(directory, kind, model_options)
    _WORKER["kind"] = kind


def _worker_chunk(index, texts, lines, parts, output_format, encode_options, on_too_long):
    return run_chunk(_WORKER["model"], _WORKER["kind"], index, texts, lines, parts, output_format,
                     encode_options, on_too_long)


def run_chunk(model, kind, index, texts, lines, parts, output_format, encode_options, on_too_long):
    """Encode one chunk and write it to the parts folder atomically (its .npy/.jsonl appears last)."""
    try:
        dense, lexical, truncated = encode_chunk(model, kind, texts, encode_options, on_too_long)
    except EmbeddingError as err:
        if err.index is not None:
            detail = getattr(err, "detail", str(err))
            raise CorpusError(f"line {lines[err.index]}: {detail} (on_too_long='truncate' cuts it to the "
                              f"limit and counts it)") from None
        raise
    parts = Path(parts)
    stem = parts / f"chunk-{index:06d}"
    meta = {"rows": len(texts), "dim": int(dense.shape[1]) if dense.ndim == 2 else 0, "truncated": truncated}
    _atomic_write(stem.with_suffix(".json"), json.dumps(meta).encode())
    if output_format == "npy":
        tmp = stem.with_suffix(".npy.tmp")
        with open(tmp, "wb") as f:
            np.save(f, dense)
        os.replace(tmp, stem.with_suffix(".npy"))
    else:
        first = index_of_first_row(parts, index)
        rows = []
        for j, vector in enumerate(dense):
            record = {"index": first + j, "embedding": [float(v) for v in vector]}
            if lexical is not None:
                record["lexical_weights"] = {k: float(v) for k, v in lexical[j].items()}
            rows.append(json.dumps(record))
        _atomic_write(stem.with_suffix(".jsonl"), ("\n".join(rows) + "\n").encode())
    return index, meta


def index_of_first_row(parts, index):
    job = json.loads((Path(parts) / "job.json").read_text())
    return index * job["chunk_size"]


def _atomic_write(path, data: bytes):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --- the job -----------------------------------------------------------------------------------------------
def embed_corpus(model, input, output, *, field="text", input_format=None, kind="auto", batch_size=32,
                 chunk_size=1024, workers=1, on_too_long="truncate", empty="error", encode_options=None,
                 model_options=None, restart=False, progress=None):
    """Embed every text of `input` into `output` (see the module docstring). Returns a CorpusReport.

    model: a model folder. encode_options: passed to the model's encode (e.g. {"prompt_name": "passage"},
    {"normalize_embeddings": True}, {"max_length": 512}); batch_size is added. model_options: passed to the
    model's constructor (dtype, kernels, padding_free, ...). progress: callable(done_chunks, total_chunks).
    """
    from ..pipelines.base import resolve_directory

    started = time.perf_counter()
    directory = Path(resolve_directory(model)).resolve()
    kind = model_kind(directory, kind)
    output = Path(output)
    output_format = output.suffix.lstrip(".").lower()
    if output_format not in OUTPUT_FORMATS:
        raise CorpusError(f"{output}: unknown output format; use one of {', '.join(OUTPUT_FORMATS)} (by extension)")
    if on_too_long not in ("truncate", "error"):
        raise CorpusError(f"on_too_long must be 'truncate' or 'error', got {on_too_long!r}")
    for name, value in (("chunk_size", chunk_size), ("workers", workers), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CorpusError(f"{name} must be a positive integer, got {value!r}")
    texts, lines = read_texts(input, input_format, field, empty)
    if not texts:
        raise CorpusError(f"{input}: no texts to embed")
    encode_options = dict(encode_options or {}, batch_size=batch_size)
    model_options = dict(model_options or {})
    parts = output.with_name(output.name + ".parts")
    job = {"input": str(Path(input).resolve()), "input_bytes": Path(input).stat().st_size,
           "input_sha256": file_sha256(input), "field": field, "input_format": input_format, "empty": empty,
           "model": str(directory), "kind": kind, "chunk_size": chunk_size, "rows": len(texts),
           "output_format": output_format, "on_too_long": on_too_long,
           "encode_options": encode_options, "model_options": model_options}
    job = json.loads(json.dumps(job, sort_keys=True, default=str))
    _prepare_parts(parts, job, restart)

    chunks = [(i, begin, min(begin + chunk_size, len(texts)))
              for i, begin in enumerate(range(0, len(texts), chunk_size))]
    todo = [c for c in chunks if not _chunk_done(parts, c[0], c[2] - c[1], output_format)]
    reused = len(chunks) - len(todo)
    done = reused
    if progress is not None:
        progress(done, len(chunks))
    try:
        done = _run_todo(todo, done, len(chunks), texts, lines, parts, directory, kind, model_options,
                         output_format, encode_options, on_too_long, workers, progress)
    except CorpusError as err:
        raise CorpusError(f"{input}: {err}") from None
    metas = [json.loads((parts / f"chunk-{i:06d}.json").read_text()) for i, _, _ in chunks]
    dim = metas[0]["dim"]
    _assemble(parts, output, chunks, output_format, len(texts), dim)
    shutil.rmtree(parts)
    return CorpusReport(output=str(output), rows=len(texts), dim=dim, chunks=len(chunks),
                        chunks_computed=len(todo), chunks_reused=reused,
                        truncated=sum(m["truncated"] for m in metas), seconds=time.perf_counter() - started,
                        workers=workers, kind=kind)


def _run_todo(todo, done, total, texts, lines, parts, directory, kind, model_options, output_format,
              encode_options, on_too_long, workers, progress):
    """Compute the missing chunks, in this process (workers=1) or on a pool of spawned workers."""
    if todo and workers == 1:
        local = load_model(directory, kind, model_options)
        for index, begin, end in todo:
            run_chunk(local, kind, index, texts[begin:end], lines[begin:end], parts, output_format,
                      encode_options, on_too_long)
            done += 1
            if progress is not None:
                progress(done, total)
    elif todo:
        import multiprocessing

        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker,
                                 initargs=(str(directory), kind, model_options, threads)) as pool:
            futures = [pool.submit(_worker_chunk, index, texts[begin:end], lines[begin:end], str(parts),
                                   output_format, encode_options, on_too_long) for index, begin, end in todo]
            try:
                for future in futures:
                    future.result()
                    done += 1
                    if progress is not None:
                        progress(done, total)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return done


def _prepare_parts(parts: Path, job: dict, restart: bool):
    job_file = parts / "job.json"
    if parts.exists() and restart:
        shutil.rmtree(parts)
    if job_file.is_file():
        saved = json.loads(job_file.read_text())
        if saved != job:
            changed = sorted(k for k in set(saved) | set(job) if saved.get(k) != job.get(k))
            raise CorpusError(f"{parts} holds the parts of another job (differs in: {', '.join(changed)}); run "
                              f"with the same arguments to continue it, or restart=True (--restart) to start over")
        return
    parts.mkdir(parents=True, exist_ok=True)
    _atomic_write(job_file, json.dumps(job, indent=1, sort_keys=True).encode())


def _chunk_done(parts: Path, index: int, rows: int, output_format: str) -> bool:
    stem = parts / f"chunk-{index:06d}"
    data, meta = stem.with_suffix("." + output_format), stem.with_suffix(".json")
    if not (data.is_file() and meta.is_file()):
        return False
    try:
        ok = json.loads(meta.read_text())["rows"] == rows
        if output_format == "npy":
            ok = ok and np.load(data, mmap_mode="r").shape[0] == rows
        return ok
    except (OSError, ValueError, KeyError):  # a damaged part is computed again
        return False


def _assemble(parts: Path, output: Path, chunks, output_format, rows, dim):
    tmp = output.with_name(output.name + ".tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    if output_format == "npy":
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, dim))
        for index, begin, end in chunks:
            out[begin:end] = np.load(parts / f"chunk-{index:06d}.npy", mmap_mode="r")
        out.flush()
        del out
    else:
        with open(tmp, "wb") as f:
            for index, _, _ in chunks:
                with open(parts / f"chunk-{index:06d}.jsonl", "rb") as part:
                    shutil.copyfileobj(part, f)
    os.replace(tmp, output)
