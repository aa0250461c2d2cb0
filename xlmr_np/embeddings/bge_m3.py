"""BGE-M3: dense, sparse (lexical) and multi-vector (ColBERT) embeddings from one XLM-R encoder.

Reference: FlagEmbedding 1.4.2, `inference/embedder/encoder_only/m3.py` (M3Embedder, which BGEM3FlagModel
is) and `finetune/embedder/encoder_only/m3/modeling.py` (EncoderOnlyEmbedderM3Model). A BGE-M3 folder is an
XLMRobertaModel checkpoint plus two torch pickles beside it, read here by weights.torch_pickle (no torch):
    sparse_linear.pt   {"weight": [1, D], "bias": [1]}
    colbert_linear.pt  {"weight": [D', D], "bias": [D']}   (D' = D for bge-m3)
From the last hidden state h [T, D] of one input (its real tokens, <s> first, </s> last):
    dense_vecs       h[0] (cls pooling; "mean" and "last_token" also, as FlagEmbedding), L2-normalised
    lexical_weights  w = relu(h W_s^T + b_s) per token; {str(token id): w} keeping, for each id, the largest w
                     over its occurrences, dropping w <= 0 and the ids of the tokenizer's cls, eos, pad and
                     unk tokens (special_tokens_map); values are NumPy scalars of the compute dtype
    colbert_vecs     h[1:] W_c^T + b_c: every token but <s> (</s> included), each row L2-normalised -> [T-1, D']
Normalisation (dense and ColBERT) follows normalize_embeddings (FlagEmbedding's default True).
Truncation: each input is cut to max_length tokens as FlagEmbedding's tokenizer call does
(truncation=True), and never past the position table (8,192 tokens for bge-m3).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.ops import relu
from ..weights import load_torch_file
from .base import EmbeddingError, EmbeddingModel, as_text_list, l2_normalize, linear

POOLING_METHODS = ("cls", "mean", "last_token")
UNUSED_TOKENS = ("cls_token", "eos_token", "pad_token", "unk_token")  # M3Embedder._process_token_weights


class BGEM3(EmbeddingModel):
    """FlagEmbedding's BGEM3FlagModel on NumPy: encode, compute_lexical_matching_score, colbert_score."""

    def __init__(self, model, normalize_embeddings=True, pooling_method="cls", batch_size=256, **kwargs):
        super().__init__(model, **kwargs)
        if pooling_method not in POOLING_METHODS:
            raise EmbeddingError(f"pooling_method must be one of {POOLING_METHODS}, got {pooling_method!r}")
        self.normalize_embeddings = bool(normalize_embeddings)
        self.pooling_method = pooling_method
        self.batch_size = batch_size
        self.sparse_linear = self._read_head("sparse_linear.pt", rows=1)
        self.colbert_linear = self._read_head("colbert_linear.pt", rows=None)
        tokenizer = self.tokenizer
        self.unused_tokens = {tokenizer.convert_tokens_to_ids(str(tokenizer.special_tokens_map[name]))
                              for name in UNUSED_TOKENS if name in tokenizer.special_tokens_map}

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        """Load a BGE-M3 folder (config.json, weights, tokenizer, sparse_linear.pt, colbert_linear.pt)."""
        return cls(path, **kwargs)

    def _read_head(self, name, rows):
        path = Path(self.directory) / name
        if not path.is_file():
            raise EmbeddingError(f"{self.directory} has no {name}: a BGE-M3 folder holds sparse_linear.pt and "
                                 f"colbert_linear.pt beside the encoder (FlagEmbedding would initialise them at "
                                 f"random, fit only for training)")
        state = load_torch_file(path)
        if set(state) != {"weight", "bias"}:
            raise EmbeddingError(f"{path}: expected the state dict of a torch.nn.Linear (weight, bias), "
                                 f"got keys {sorted(state)}")
        weight, bias = (np.asarray(state[k], dtype=self.dtype) for k in ("weight", "bias"))
        hidden = self.config.hidden_size
        if weight.ndim != 2 or weight.shape[1] != hidden or bias.shape != weight.shape[:1] or (
                rows is not None and weight.shape[0] != rows):
            raise EmbeddingError(f"{path}: weight {weight.shape} and bias {bias.shape} do not make a "
                                 f"Linear({hidden}, {rows or 'D'}) for hidden size {hidden}")
        return weight, bias

    # --- encoding -----------------------------------------------------------------------------------------
    def encode(self, sentences, batch_size=None, max_length=8192, return_dense=True, return_sparse=False,
               return_colbert_vecs=False, on_too_long="truncate"):
        """{"dense_vecs": [N, D] | None, "lexical_weights": [dict] | None, "colbert_vecs": [[T_i - 1, D']] | None};
        for one string, each entry is that string's alone (FlagEmbedding's shapes)."""
        if not (return_dense or return_sparse or return_colbert_vecs):
            raise EmbeddingError("choose one or more of return_dense, return_sparse, return_colbert_vecs")
        texts, single = as_text_list(sentences)
        sequences = self.tokenize(texts, max_length=max_length, on_too_long=on_too_long)
        dense, sparse, colbert = [None] * len(texts), [None] * len(texts), [None] * len(texts)
        for rows, states in self.token_states(sequences, batch_size or self.batch_size):
            for row, h in zip(rows, states):
                if return_dense:
                    dense[row] = self.dense(h)
                if return_sparse:
                    sparse[row] = self.lexical_weights(h, sequences[row])
                if return_colbert_vecs:
                    colbert[row] = self.colbert_vecs(h)
        if return_dense:
            dense = np.stack(dense) if dense else np.zeros((0, self.hidden_size), dtype=self.dtype)
        out = {"dense_vecs": dense if return_dense else None,
               "lexical_weights": sparse if return_sparse else None,
               "colbert_vecs": colbert if return_colbert_vecs else None}
        if single:
            out = {key: None if value is None else value[0] for key, value in out.items()}
        return out

    def dense(self, h):
        """The pooled vector [D] of one input's token states h [T, D]."""
        if self.pooling_method == "cls":
            vector = h[0]
        elif self.pooling_method == "mean":
            vector = h.sum(axis=0) / h.shape[0]
        else:  # last_token: the last real token (right padding)
            vector = h[-1]
        return l2_normalize(vector) if self.normalize_embeddings else vector

    def token_weights(self, h):
        """relu(sparse_linear(h)) -> [T]: one weight per token."""
        weight, bias = self.sparse_linear
        return relu(linear(h, weight, bias))[:, 0]  # [T, D] -> [T, 1] -> [T]

    def lexical_weights(self, h, ids):
        """{str(id): the largest positive weight of that id's tokens}, special tokens dropped."""
        result = {}
        for w, idx in zip(self.token_weights(h), ids):
            if idx in self.unused_tokens or not w > 0:
                continue
            key = str(idx)
            if key not in result or w > result[key]:
                result[key] = w
        return result

    def colbert_vecs(self, h):
        """colbert_linear(h[1:]) -> [T-1, D'], rows L2-normalised (when normalize_embeddings)."""
        weight, bias = self.colbert_linear
        vecs = linear(h[1:], weight, bias)  # [T-1, D] -> [T-1, D']
        return l2_normalize(vecs) if self.normalize_embeddings else vecs

    # --- scores -------------------------------------------------------------------------------------------
    def compute_lexical_matching_score(self, lexical_weights_1, lexical_weights_2):
        """sum over shared ids of w1 * w2: a number for two dicts, an array [N1, N2] for two lists."""
        def single(a, b):
            score = 0
            for token, weight in a.items():
                if token in b:
                    score += weight * b[token]
            return score

        if isinstance(lexical_weights_1, dict) and isinstance(lexical_weights_2, dict):
            return single(lexical_weights_1, lexical_weights_2)
        if isinstance(lexical_weights_1, list) and isinstance(lexical_weights_2, list):
            return np.array([[single(a, b) for b in lexical_weights_2] for a in lexical_weights_1])
        raise EmbeddingError("compute_lexical_matching_score takes two dicts or two lists of dicts")

    def colbert_score(self, q_reps, p_reps):
        """Mean over the query's vectors of the best dot product with any passage vector (a NumPy scalar)."""
        q_reps, p_reps = np.asarray(q_reps), np.asarray(p_reps)
        token_scores = np.einsum("in,jn->ij", q_reps, p_reps)  # [Tq, D'] x [Tp, D'] -> [Tq, Tp]
        return token_scores.max(axis=-1).sum() / q_reps.shape[0]


# FlagEmbedding's name for the same class
BGEM3FlagModel = BGEM3
