"""The losses HF computes when a forward call gets labels: three primitives and one function per head.

Reference: transformers 4.57.6 `models/xlm_roberta/modeling_xlm_roberta.py` (the `if labels is not None:` block
of each XLMRobertaFor*.forward), `loss/loss_utils.py` (ForCausalLMLoss, fixed_cross_entropy) and torch's
CrossEntropyLoss / MSELoss / BCEWithLogitsLoss with their default reduction="mean":
https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html

Labels arrive checked (xlmr_np/inputs.py, `class_labels`, `target_values`, `answer_positions`): integer class
ids in [0, C) or the ignore index, float targets in the logits' dtype, shapes as each function states.
Every loss is a 0-d array in the logits' dtype, except the causal LM's, which is float32 (see causal_lm_loss).
A mean over no kept entries is nan, as torch's 0 / 0.

Shape legend: B batch, T tokens, V vocabulary, C classes or choices, N rows (a flattened batch).
"""
from __future__ import annotations

from ..backend import array_module

IGNORE_INDEX = -100  # torch.nn.CrossEntropyLoss's default ignore_index, which HF's heads keep
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


# --- primitives -------------------------------------------------------------------------------------------
def log_softmax(logits, axis=-1):
    """x - max - log(sum(exp(x - max))): exp never overflows, and the largest term of the sum is exactly 1."""
    xp = array_module(logits)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def _mean_or_nan(total, count):
    """total / count as a 0-d array of total's dtype; nan when count is 0 (torch's mean over nothing)."""
    xp = array_module(total)
    count = count.astype(total.dtype)
    return xp.where(count > 0, total / xp.maximum(count, 1), xp.asarray(xp.nan, dtype=total.dtype))


def cross_entropy(logits, labels, ignore_index: int = IGNORE_INDEX):
    """torch.nn.functional.cross_entropy(logits [N, C], labels [N], ignore_index=...): mean of -log p[label].

    Rows whose label is ignore_index count neither in the sum nor in the divisor.
    """
    xp = array_module(logits)
    kept = labels != ignore_index  # [N]
    index = xp.where(kept, labels, 0)  # [N]: any valid class for the ignored rows, zeroed out below
    log_p = log_softmax(logits, axis=-1)[xp.arange(logits.shape[0]), index]  # [N, C] -> [N]
    total = -xp.where(kept, log_p, xp.zeros_like(log_p)).sum()  # [N] -> []
    return _mean_or_nan(total, kept.sum())


def mse(predictions, targets):
    """torch.nn.MSELoss: mean((predictions - targets)^2) over every entry (same shapes, no broadcasting)."""
    xp = array_module(predictions)
    return xp.mean((predictions - targets) ** 2)


def bce_with_logits(logits, targets):
    """torch.nn.BCEWithLogitsLoss: mean of -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))).

    Written as torch 2.x computes it, (1 - t) x - log_sigmoid(x), with log_sigmoid(x) = min(x, 0) - log1p(exp(-|x|)):
    no exp of a large positive number, no log of 0, exact for soft targets t in [0, 1].
    """
    xp = array_module(logits)
    log_sigmoid = xp.minimum(logits, 0) - xp.log1p(xp.exp(-xp.abs(logits)))
    return xp.mean((1 - targets) * logits - log_sigmoid)


# --- one function per head -------------------------------------------------------------------------------
def masked_lm_loss(logits, labels):
    """XLMRobertaForMaskedLM: CrossEntropyLoss()(logits.view(-1, V), labels.view(-1)); labels [B, T], -100 ignored."""
    vocab = logits.shape[-1]
    return cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1))  # [B, T, V] -> [B*T, V]; [B, T] -> [B*T]


def causal_lm_loss(logits, labels):
    """XLMRobertaForCausalLM: ForCausalLMLoss. Position t predicts label t+1: labels [B, T] are padded with -100
    at the end and shifted left by one, so the last position predicts nothing; -100 is ignored.

    HF first upcasts the logits with `logits.float()`, i.e. to float32 whatever the model's dtype. For a
    float64 model that is a cast DOWN: the loss is computed and returned in float32, as HF does.
    """
    xp = array_module(logits)
    batch, length, vocab = logits.shape
    logits = logits.astype(xp.float32)
    padding = xp.full((batch, 1), IGNORE_INDEX, dtype=labels.dtype)
    shifted = xp.concatenate([labels, padding], axis=1)[:, 1:]  # [B, T] -> [B, T+1] -> [B, T]
    return cross_entropy(logits.reshape(-1, vocab), shifted.reshape(-1))  # [B*T, V], [B*T]


def infer_problem_type(num_labels: int, integer_labels: bool) -> str:
    """XLMRobertaForSequenceClassification.forward, when config.problem_type is None."""
    if num_labels == 1:
        return "regression"
    if integer_labels:
        return "single_label_classification"
    return "multi_label_classification"


def sequence_classification_loss(logits, labels, problem_type: str):
    """XLMRobertaForSequenceClassification, logits [B, C]:
    - "regression": MSE; with C == 1 both sides squeezed (logits [B, 1] against labels [B] or [B, 1]),
      else labels [B, C];
    - "single_label_classification": cross-entropy, labels [B] (or [B, 1]: HF flattens them), -100 ignored;
    - "multi_label_classification": BCE with logits, labels [B, C] in [0, 1].
    """
    classes = logits.shape[-1]
    if problem_type == "regression":
        if classes == 1:
            return mse(logits.squeeze(), labels.squeeze())  # [B, 1] -> [B] ([1, 1] -> [])
        return mse(logits, labels)
    if problem_type == "single_label_classification":
        return cross_entropy(logits.reshape(-1, classes), labels.reshape(-1))
    if problem_type == "multi_label_classification":
        return bce_with_logits(logits, labels)
    raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")


def token_classification_loss(logits, labels):
    """XLMRobertaForTokenClassification: CE over logits.view(-1, C) and labels.view(-1); labels [B, T], -100 ignored."""
    classes = logits.shape[-1]
    return cross_entropy(logits.reshape(-1, classes), labels.reshape(-1))  # [B, T, C] -> [B*T, C]


def multiple_choice_loss(logits, labels):
    """XLMRobertaForMultipleChoice: CE over the reshaped logits [B, C] and labels [B], -100 ignored."""
    return cross_entropy(logits, labels)


def question_answering_loss(start_logits, end_logits, start_positions, end_positions):
    """XLMRobertaForQuestionAnswering: (CE(start) + CE(end)) / 2 over logits [B, T] and positions [B] (or [B, 1]).

    Positions are clamped to [0, T] and T is the ignore index: a position past the end is ignored, a
    negative one becomes 0 (the <s> token, "no answer"), as HF does.
    """
    xp = array_module(start_logits)
    ignored = start_logits.shape[1]  # T
    if start_positions.ndim > 1:
        start_positions = start_positions.squeeze(-1)  # [B, 1] -> [B]
    if end_positions.ndim > 1:
        end_positions = end_positions.squeeze(-1)
    start_loss = cross_entropy(start_logits, xp.clip(start_positions, 0, ignored), ignore_index=ignored)
    end_loss = cross_entropy(end_logits, xp.clip(end_positions, 0, ignored), ignore_index=ignored)
    return (start_loss + end_loss) / 2
