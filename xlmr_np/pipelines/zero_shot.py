"""zero-shot-classification: rank candidate labels with an NLI (entailment) head.

Reference: transformers 4.57.6 `pipelines/zero_shot_classification.py` (`ZeroShotClassificationPipeline`):
- `candidate_labels` is a list or a comma-separated string (split, stripped, empties dropped); each label
  becomes the hypothesis `hypothesis_template.format(label)` (default "This example is {}.") paired with
  the sequence; a template that `format` leaves unchanged is an error;
- the entailment class is the first label2id entry whose name, lowercased, starts with "entail";
- one label or `multi_label=True`: per label, softmax over [contradiction, entailment] logits, where
  contradiction is class 0, or the last class when entailment is class 0; otherwise softmax of the
  entailment logits across the labels. Both are HF's plain exp(x) / sum(exp(x)) (no max subtraction);
- the result is {"sequence", "labels", "scores"}, labels sorted by score (descending; ties in reverse
  input order, as HF's reversed argsort).
Difference: a model without an entailment label raises (HF warns and silently uses the last class).

Shape legend: B batch (pairs), T tokens, C classes, N labels.
"""
from __future__ import annotations

import numpy as np

from ..core import heads
from .base import Pipeline, PipelineError, as_list, check_text, host


class ZeroShotClassificationPipeline(Pipeline):
    task = "zero-shot-classification"
    head = "sequence_classification"
    OPTIONS = {"candidate_labels": None, "hypothesis_template": "This example is {}.", "multi_label": False}

    def check_config(self, config):
        self.entailment_id = entailment_id(config)

    def __call__(self, sequences, candidate_labels=None, **kwargs):
        """Scores of each candidate label for a text or a list of texts."""
        if candidate_labels is not None:
            kwargs["candidate_labels"] = candidate_labels
        opts = self.options(kwargs, self.OPTIONS)
        labels = parse_labels(opts["candidate_labels"])
        template = opts["hypothesis_template"]
        try:
            formatted = template.format(labels[0]) if isinstance(template, str) else template
        except (KeyError, IndexError, ValueError) as err:  # "{x}", "{} {}", "{": HF's str.format raises too
            raise PipelineError(f"hypothesis_template {template!r} cannot be formatted with one label "
                                f"({type(err).__name__}: {err}); use one {{}} where the label goes "
                                f"({{{{ and }}}} for literal braces)") from None
        if not isinstance(template, str) or formatted == template:
            raise PipelineError(f'The provided hypothesis_template "{template}" was not able to be formatted with '
                                f"the target labels. Make sure the passed template includes formatting syntax "
                                f"such as {{}} where the label should go.")
        texts, single = as_list(sequences, "sequence")
        pairs = []  # one (sequence, hypothesis) pair per text and label, text-major
        for i, text in enumerate(texts):
            check_text(text, f"sequence {i}")
            for label in labels:
                pairs.append(self.encode(text, template.format(label), truncation="only_first",
                                         what=f"sequence {i} with its hypothesis"))

        def compute(ids, mask, rows):
            logits = heads.sequence_classification(self.params, self.config, self.hidden_states(ids, mask))  # [B, C]
            return list(host(logits).astype(np.float32))

        logits = np.stack(self.run_batches(pairs, compute)).reshape(len(texts), len(labels), -1)  # [texts, N, C]
        results = [self.rank(text, labels, row, opts["multi_label"]) for text, row in zip(texts, logits)]
        return results[0] if single else results

    def rank(self, text, labels, logits, multi_label):
        """{"sequence", "labels", "scores"} for one text from its [N, C] logits."""
        entail = self.entailment_id
        if multi_label or len(labels) == 1:
            contradiction = -1 if entail == 0 else 0
            pair = np.exp(logits[:, [contradiction, entail]])  # [N, 2]
            scores = (pair / pair.sum(-1, keepdims=True))[:, 1]  # [N]
        else:
            exp = np.exp(logits[:, entail])  # [N]
            scores = exp / exp.sum()
        order = list(reversed(np.argsort(scores)))
        return {"sequence": text, "labels": [labels[i] for i in order], "scores": [float(scores[i]) for i in order]}


def parse_labels(labels):
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    if labels is None or not isinstance(labels, (list, tuple)) or len(labels) == 0:
        raise PipelineError("You must include at least one label: pass candidate_labels as a non-empty list or "
                            "a comma-separated string")
    if not all(isinstance(label, str) for label in labels):
        raise PipelineError(f"candidate_labels must be strings, got {labels!r}")
    return list(labels)


def entailment_id(config) -> int:
    """The class id of the first label2id name starting with "entail" (case-insensitive)."""
    for label, index in config.label2id.items():
        if label.lower().startswith("entail"):
            return int(index)
    raise PipelineError(
        f"zero-shot classification needs an NLI model, but no label of this model starts with 'entail' "
        f"(labels: {sorted(config.label2id)}); use a model fine-tuned on NLI, or set id2label/label2id in "
        f"config.json so that the entailment class is named 'entailment'")
