"""Embedding and reranking models with the APIs of FlagEmbedding and sentence-transformers, on NumPy.

    base.py                  EmbeddingModel: a folder loaded once, counted truncation, per-input token states
                             (padding-free through runtime/packed_encoder.py, or padded)
    bge_m3.py                BGEM3 (FlagEmbedding's BGEM3FlagModel): dense, lexical weights, ColBERT vectors
    sentence_transformer.py  SentenceTransformer: modules.json (Transformer, Pooling, Dense, Normalize), prompts
    cross_encoder.py         CrossEncoder: predict(pairs) and rank(query, documents) for rerankers
    corpus.py                embed_corpus: a file of texts to a file of vectors, resumable, N worker processes

docs/embeddings.md describes the models, the API and the corpus job.
"""
from .base import EmbeddingError, EmbeddingModel
from .bge_m3 import BGEM3, BGEM3FlagModel
from .cross_encoder import CrossEncoder
from .sentence_transformer import SentenceTransformer

__all__ = ["EmbeddingError", "EmbeddingModel", "BGEM3", "BGEM3FlagModel", "SentenceTransformer", "CrossEncoder"]
