"""The six task heads, as pure functions on the body's output.

Reference: transformers 4.57.6 `modeling_xlm_roberta.py`: XLMRobertaLMHead, XLMRobertaClassificationHead,
and the classifier / qa_outputs layers of XLMRobertaFor{MultipleChoice,TokenClassification,QuestionAnswering}.
Dropout is the identity at inference, so it does not appear.

Shape legend: B batch, T tokens, D hidden, V vocabulary, C choices or labels.
"""
from __future__ import annotations

from ..backend import array_module
from .model import REFERENCE
from .ops import layer_norm, linear


def lm_head(params, cfg, hidden, kernels=None):
    """Masked/causal LM logits: LN(gelu(dense(h))) E^T + b. The activation is always the exact erf GELU.

    `lm.decoder.weight` is the word-embedding matrix itself when tie_word_embeddings is true, and the
    decoder bias is `lm_head.bias` in 4.57.6 even when the weights are untied.
    """
    kernels = kernels or REFERENCE
    x = linear(hidden, params["lm.dense.weight"], params["lm.dense.bias"])  # [B, T, D]
    x = kernels.activation("gelu")(x)  # XLMRobertaLMHead calls gelu itself, not ACT2FN[hidden_act]
    x = layer_norm(x, params["lm.norm.weight"], params["lm.norm.bias"], cfg.layer_norm_eps)
    return kernels.lm_decoder(x, params["lm.decoder.weight"], params["lm.bias"])  # [B, T, D] -> [B, T, V]


def sequence_classification(params, cfg, hidden):
    """out_proj(tanh(dense(h[:, 0]))): the <s> token, not the pooler (XLMRobertaClassificationHead)."""
    xp = array_module(hidden)
    first = hidden[:, 0]  # [B, T, D] -> [B, D]
    x = xp.tanh(linear(first, params["classifier.dense.weight"], params["classifier.dense.bias"]))  # [B, D]
    return linear(x, params["classifier.out.weight"], params["classifier.out.bias"])  # [B, D] -> [B, C]


def multiple_choice(params, cfg, pooled, choices: int):
    """One score per choice from the pooler output of the flattened [B*C, T] batch."""
    scores = linear(pooled, params["choice.weight"], params["choice.bias"])  # [B*C, D] -> [B*C, 1]
    return scores.reshape(-1, choices)  # [B*C, 1] -> [B, C]


def token_classification(params, cfg, hidden):
    return linear(hidden, params["token_classifier.weight"], params["token_classifier.bias"])  # [B, T, D] -> [B, T, C]


def question_answering(params, cfg, hidden):
    """Start and end logits from a Linear(D, 2) over every token."""
    logits = linear(hidden, params["qa.weight"], params["qa.bias"])  # [B, T, D] -> [B, T, 2]
    return logits[..., 0], logits[..., 1]  # [B, T, 2] -> [B, T], [B, T]
