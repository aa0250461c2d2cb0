"""text-classification: labels and scores for a text or a text pair (cross-encoders, rerankers).

Reference: transformers 4.57.6 `pipelines/text_classification.py` (`TextClassificationPipeline`):
- `function_to_apply` defaults from the config: regression -> none; multi-label or a single label ->
  sigmoid; single-label or several labels -> softmax; else config.function_to_apply; else none;
- `top_k` left out is the legacy mode: each input gives one {"label", "score"} dict (the best label), and a
  single string input is wrapped in a list; `top_k=None` gives every label, `top_k=k` the best k, both sorted
  by score and as a list per input;
- a pair is {"text": a, "text_pair": b}, tokenised as `<s> a </s></s> b </s>`.
HF's quirk is kept: `top_k` given to the constructor turns legacy mode off for the scores but a single
string is still wrapped, because the wrapping only looks at the call's own arguments.

Shape legend: B batch, T tokens, C labels.
"""
from __future__ import annotations

import numpy as np

from ..core import heads
from ..core.ops import sigmoid, softmax  # HF's pipelines use the same stable exp(x - max) / sum
from .base import Pipeline, PipelineError, as_list, check_text, host

_LEGACY = object()  # "top_k not given"
FUNCTIONS = ("sigmoid", "softmax", "none")


class TextClassificationPipeline(Pipeline):
    task = "text-classification"
    head = "sequence_classification"
    OPTIONS = {"top_k": _LEGACY, "function_to_apply": None}

    def __call__(self, inputs, **kwargs):
        """Classify a text, a {"text", "text_pair"} dict, or a list of them."""
        opts = self.options(kwargs, self.OPTIONS)
        top_k, legacy = opts["top_k"], opts["top_k"] is _LEGACY
        if not legacy and top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise PipelineError(f"top_k must be a positive integer or None (all labels), got {top_k!r}")
        function = self.function(opts["function_to_apply"])
        items, single = (inputs, True) if isinstance(inputs, (str, dict)) else (None, False)
        items, _ = as_list(inputs, "text") if items is None else ([inputs], True)
        sequences = [self.encode(*self.text_and_pair(item, i), what=f"input {i}") for i, item in enumerate(items)]

        def compute(ids, mask, rows):
            logits = heads.sequence_classification(self.params, self.config, self.hidden_states(ids, mask))  # [B, C]
            return list(host(logits).astype(np.float32))  # HF: logits.float().numpy()

        results = [self.scores(logits, function, top_k, legacy)
                   for logits in self.run_batches(sequences, compute)]
        if single:
            result = results[0]
            return [result] if isinstance(inputs, str) and "top_k" not in kwargs else result
        return results

    def text_and_pair(self, item, index):
        if isinstance(item, str):
            return item, None
        if isinstance(item, dict):
            if "text" not in item or set(item) - {"text", "text_pair"}:
                raise PipelineError(f"input {index}: a pair must be a dict with keys 'text' and 'text_pair', "
                                    f"got keys {sorted(item)}")
            check_text(item["text"], f"input {index} 'text'")
            if item.get("text_pair") is not None:
                check_text(item["text_pair"], f"input {index} 'text_pair'")
            return item["text"], item.get("text_pair")
        raise PipelineError(f"input {index}: expected a string or a {{'text': ..., 'text_pair': ...}} dict, got "
                            f"{type(item).__name__}; to classify a text pair send a dict, not a list")

    def function(self, name):
        """The score function: the explicit name, or HF's default from the config."""
        if name is not None:
            if not isinstance(name, str) or name.lower() not in FUNCTIONS:
                raise PipelineError(f"function_to_apply must be one of {FUNCTIONS}, got {name!r}")
            return name.lower()
        cfg = self.config
        if cfg.problem_type == "regression":
            return "none"
        if cfg.problem_type == "multi_label_classification" or cfg.num_labels == 1:
            return "sigmoid"
        if cfg.problem_type == "single_label_classification" or cfg.num_labels > 1:
            return "softmax"
        configured = cfg.extra.get("function_to_apply")
        return str(configured).lower() if configured else "none"

    def scores(self, logits, function, top_k, legacy):
        """One input's result from its logits [C] (float32)."""
        scores = {"sigmoid": sigmoid, "softmax": softmax, "none": lambda x: x}[function](logits)  # [C]
        labels = self.config.id2label
        if legacy:
            best = int(np.argmax(scores))
            return {"label": labels[best], "score": float(scores[best])}
        ranked = [{"label": labels[i], "score": float(s)} for i, s in enumerate(scores)]
        ranked.sort(key=lambda d: d["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]
