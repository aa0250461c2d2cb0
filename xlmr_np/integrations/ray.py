"""Ray Data: embed or rerank the rows of a Dataset on N actors, each loading the model once.

    import ray
    from xlmr_np.integrations.ray import Embedder, embed_dataset
    ds = ray.data.read_json("corpus.jsonl")                       # rows with a "text" column
    ds = embed_dataset(ds, "models/multilingual-e5", concurrency=4, batch_size=64)
    ds.write_parquet("vectors/")                                  # the rows, plus an "embedding" column

    # the same by hand: a callable class, constructed once per actor by Ray
    ds.map_batches(Embedder, fn_constructor_kwargs={"model": "models/bge-m3"}, concurrency=4,
                   batch_size=64, batch_format="numpy")

Embedder(batch) takes a batch as Ray hands it over: a dict of NumPy arrays (batch_format="numpy", the default)
or a pandas DataFrame (batch_format="pandas"), reads the texts from `text_column`, and returns the batch with
an `output_column` of vectors ([B, D] float32; for BGE-M3 the dense vectors, and with return_sparse the
lexical weights as JSON strings in `output_column + "_lexical"`). Reranker(batch) scores (query, document)
columns with a CrossEncoder. Neither imports ray: Ray constructs them in its actors (each actor is a process;
the memory-mapped weights are shared between the actors of one machine through the page cache, as in
embeddings/corpus.py). Each actor's BLAS gets `blas_threads` threads (default: cores // concurrency, when
embed_dataset is used; else OpenBLAS's own count).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..embeddings.corpus import encode_chunk, load_model, model_kind


def _texts(batch, column):
    if column not in batch:
        columns = list(batch.columns) if hasattr(batch, "columns") else sorted(batch)
        raise KeyError(f"the batch has no column {column!r} (columns: {columns}); pass text_column=")
    values = batch[column]
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"row {i} of column {column!r} is {type(value).__name__}, not a string")
    return values


def _set_blas_threads(threads):
    if threads:
        from ..runtime.openblas import openblas
        if openblas() is not None:
            openblas().set(int(threads))


class Embedder:
    """A map_batches callable: loads a SentenceTransformer or BGE-M3 folder once, embeds each batch's texts."""

    def __init__(self, model, kind="auto", text_column="text", output_column="embedding", batch_size=32,
                 encode_options=None, model_options=None, on_too_long="truncate", blas_threads=None):
        _set_blas_threads(blas_threads)
        self.kind = model_kind(model, kind)
        self.model = load_model(model, self.kind, dict(model_options or {}))
        self.text_column, self.output_column = text_column, output_column
        self.encode_options = dict(encode_options or {}, batch_size=batch_size)
        self.on_too_long = on_too_long
        self.truncated = 0  # inputs truncated so far by this actor

    def __call__(self, batch):
        texts = _texts(batch, self.text_column)
        dense, lexical, truncated = encode_chunk(self.model, self.kind, texts, self.encode_options, self.on_too_long)
        self.truncated += truncated
        batch[self.output_column] = list(dense) if hasattr(batch, "columns") else dense
        if lexical is not None:
            batch[self.output_column + "_lexical"] = np.array(
                [json.dumps({k: float(v) for k, v in weights.items()}) for weights in lexical], dtype=object)
        return batch


class Reranker:
    """A map_batches callable: loads a CrossEncoder once and scores each row's (query, document) pair."""

    def __init__(self, model, query_column="query", document_column="document", output_column="score",
                 batch_size=32, model_options=None, blas_threads=None):
        from ..embeddings.cross_encoder import CrossEncoder

        _set_blas_threads(blas_threads)
        self.model = CrossEncoder(model, **dict(model_options or {}))
        self.query_column, self.document_column, self.output_column = query_column, document_column, output_column
        self.batch_size = batch_size

    def __call__(self, batch):
        pairs = [[q, d] for q, d in zip(_texts(batch, self.query_column), _texts(batch, self.document_column))]
        scores = self.model.predict(pairs, batch_size=self.batch_size) if pairs else np.zeros(0, np.float32)
        batch[self.output_column] = list(scores) if hasattr(batch, "columns") else np.asarray(scores)
        return batch


def embed_dataset(dataset, model, concurrency=1, batch_size=64, batch_format="numpy", **options):
    """dataset.map_batches(Embedder, ...) on `concurrency` actors; BLAS threads split between them."""
    options.setdefault("blas_threads", max(1, (os.cpu_count() or 1) // max(1, concurrency)))
    options.setdefault("batch_size", batch_size)
    return dataset.map_batches(Embedder, fn_constructor_kwargs=dict(options, model=str(model)),
                               concurrency=concurrency, batch_size=batch_size, batch_format=batch_format)
