"""xlmr_np.integrations.ray: the map_batches callables on their own, and on a local Ray where it is installed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xlmr_np.embeddings import BGEM3, CrossEncoder, SentenceTransformer
from xlmr_np.integrations.ray import Embedder, Reranker, embed_dataset

GOLDEN = Path(__file__).resolve().parent.parent / "reference_outputs" / "embeddings"
TEXTS = [f"sentence number {i} about Paris and {'the weather ' * (i % 5)}" for i in range(12)]


def test_embedder_on_numpy_and_pandas_batches():
    embed = Embedder(GOLDEN / "st_e5", batch_size=4, encode_options={"prompt_name": "query"})
    want = SentenceTransformer(GOLDEN / "st_e5").encode(TEXTS, prompt_name="query", batch_size=4)
    batch = embed({"id": np.arange(12), "text": np.array(TEXTS, dtype=object)})
    assert batch["embedding"].shape == (12, 16) and list(batch["id"]) == list(range(12))
    np.testing.assert_allclose(batch["embedding"], want, atol=1e-6)
    pd = pytest.importorskip("pandas")
    frame = embed(pd.DataFrame({"text": TEXTS}))
    np.testing.assert_allclose(np.stack(frame["embedding"]), want, atol=1e-6)
    with pytest.raises(KeyError, match="no column 'body'"):
        Embedder(GOLDEN / "st_e5", text_column="body")({"text": np.array(["a"])})


def test_embedder_with_bge_m3_lexical_weights():
    embed = Embedder(GOLDEN / "bge_m3", encode_options={"return_sparse": True})
    batch = embed({"text": np.array(TEXTS[:3], dtype=object)})
    want = BGEM3(GOLDEN / "bge_m3").encode(TEXTS[:3], return_sparse=True)
    np.testing.assert_allclose(batch["embedding"], want["dense_vecs"], atol=1e-6)
    assert [set(json.loads(s)) for s in batch["embedding_lexical"]] == [set(w) for w in want["lexical_weights"]]


def test_reranker_scores_pairs():
    rerank = Reranker(GOLDEN / "reranker")
    batch = rerank({"query": np.array(["Where?"] * 3, dtype=object), "document": np.array(TEXTS[:3], dtype=object)})
    want = CrossEncoder(GOLDEN / "reranker").predict([["Where?", t] for t in TEXTS[:3]])
    np.testing.assert_allclose(batch["score"], want, atol=1e-6)


@pytest.mark.slow
def test_on_a_local_ray_cluster():
    """Two actors, each loading the model once; rows come back complete (sorted by id: Ray may reorder)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 2**20)
    try:
        ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(TEXTS)])
        rows = embed_dataset(ds, GOLDEN / "st_e5", concurrency=2, batch_size=4).take_all()
    finally:
        ray.shutdown()
    rows = sorted(rows, key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(12))
    want = SentenceTransformer(GOLDEN / "st_e5").encode(TEXTS, batch_size=4)
    np.testing.assert_allclose(np.stack([r["embedding"] for r in rows]), want, atol=1e-6)
