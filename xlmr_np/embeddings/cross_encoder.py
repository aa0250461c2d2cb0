"""Cross-encoder rerankers (bge-reranker-v2-m3, ...): XLMRobertaForSequenceClassification scoring text pairs.

Reference: sentence-transformers 5.7.0 `cross_encoder/model.py` (CrossEncoder.predict, rank,
get_default_activation_fn). Each pair is tokenised as `<s> a </s></s> b </s>` and cut to the limit with
"longest_first" truncation; the score is the classification head on the <s> token
(core.heads.sequence_classification), then the activation:
- the activation_fn argument of predict/rank when given (a NumPy function, or a name: sigmoid, identity, tanh,
  relu, gelu, or a torch class path such as "torch.nn.modules.activation.Sigmoid");
- else the folder's: config.json's sentence_transformers.activation_fn, or the older
  sbert_ce_default_activation_function;
- else Sigmoid for one label (a reranker: scores in (0, 1)), Identity for several.
apply_softmax=True then takes the softmax over several labels. One label gives scores [N]; C labels [N, C].
The limit: max_length= when given, else the tokenizer's model_max_length capped by max_position_embeddings
(as sentence-transformers caps it), and never past the position table.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..core import heads
from ..core.ops import softmax
from .base import EmbeddingError, EmbeddingModel
from .sentence_transformer import activation_from_path


class CrossEncoder(EmbeddingModel):
    """sentence-transformers' CrossEncoder for XLM-R sequence-classification folders: predict and rank."""

    head = "sequence_classification"

    def __init__(self, model_name_or_path, max_length=None, activation_fn=None, **kwargs):
        super().__init__(model_name_or_path, **kwargs)
        self.num_labels = int(self.params["classifier.out.weight"].shape[0])
        self.max_length = (int(max_length) if max_length is not None else
                           min(int(self.tokenizer.model_max_length), self.config.max_position_embeddings))
        self.activation_fn = self._activation(activation_fn) if activation_fn is not None else self.default_activation()

    @property
    def head_params(self):
        """The classifier's weights on the host, where the token states are (the body may run on a device)."""
        return {k: to_numpy(v) for k, v in self.params.items() if k.startswith("classifier.")}

    def default_activation(self):
        """The folder's activation, else Sigmoid for one label and Identity for several."""
        settings = self.config.extra.get("sentence_transformers") or {}
        path = settings.get("activation_fn") or self.config.extra.get("sbert_ce_default_activation_function")
        if path:
            return activation_from_path(path, f"{self.directory}/config.json")
        return activation_from_path("sigmoid" if self.num_labels == 1 else "identity", "default")

    @staticmethod
    def _activation(fn):
        return fn if callable(fn) else activation_from_path(fn, "activation_fn")

    def predict(self, sentences, batch_size=32, show_progress_bar=None, activation_fn=None, apply_softmax=False,
                convert_to_numpy=True, on_too_long="truncate"):
        """Scores of [a, b] pairs: [N] for one label, [N, C] for C; one pair gives its score alone."""
        pairs, single = as_pairs(sentences)
        activation = self._activation(activation_fn) if activation_fn is not None else self.activation_fn
        sequences = self.tokenize([a for a, _ in pairs], [b for _, b in pairs], max_length=self.max_length,
                                  on_too_long=on_too_long)
        self.show_progress = bool(show_progress_bar)
        scores = [None] * len(pairs)
        for rows, states in self.token_states(sequences, batch_size):
            first = np.stack([h[:1] for h in states])  # [B, 1, D]: the <s> token of each pair
            logits = heads.sequence_classification(self.head_params, self.config, first)  # [B, C]
            batch = activation(logits)
            if apply_softmax and batch.shape[-1] > 1:
                batch = softmax(batch, axis=-1)
            if self.num_labels == 1:
                batch = batch[:, 0]  # [B, 1] -> [B]
            for row, score in zip(rows, batch):
                scores[row] = score
        return self.results(scores, single, convert_to_numpy)

    def rank(self, query, documents, top_k=None, return_documents=False, batch_size=32, show_progress_bar=None,
             activation_fn=None, apply_softmax=False):
        """[{"corpus_id", "score"[, "text"]}] for the documents, best first (stable for ties), top_k of them."""
        if self.num_labels != 1:
            raise EmbeddingError("CrossEncoder.rank() only works for models with num_labels=1; use predict() "
                                 "with pairs instead")
        if isinstance(documents, str):
            raise EmbeddingError("documents must be a list of strings, not one string")
        scores = self.predict([[query, doc] for doc in documents], batch_size=batch_size,
                              show_progress_bar=show_progress_bar, activation_fn=activation_fn,
                              apply_softmax=apply_softmax)
        results = []
        for i, score in enumerate(scores):
            results.append({"corpus_id": i, "score": score})
            if return_documents:
                results[-1]["text"] = documents[i]
        results = sorted(results, key=lambda r: r["score"], reverse=True)
        return results[:top_k]


def as_pairs(sentences):
    """([(a, b)], whether one pair was given): a pair is a list or tuple of two strings."""
    if isinstance(sentences, (list, tuple)) and len(sentences) > 0 and not isinstance(sentences[0], (list, tuple)):
        items, single = [sentences], True
    elif isinstance(sentences, (list, tuple)):
        items, single = list(sentences), False
    else:
        raise EmbeddingError(f"predict takes a pair [a, b] or a list of pairs, got {type(sentences).__name__}")
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not all(isinstance(t, str) for t in item):
            raise EmbeddingError(f"pair {i} must be two strings [a, b], got {item!r:.80}")
        pairs.append((item[0], item[1]))
    return pairs, single
