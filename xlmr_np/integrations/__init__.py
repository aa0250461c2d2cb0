"""Integrations with data-processing frameworks; each module imports its framework only where it needs it.

    ray.py   callable classes for Ray Data's Dataset.map_batches(..., concurrency=N): the model is loaded once
             per actor (Embedder, Reranker), and embed_dataset to wire them
"""
