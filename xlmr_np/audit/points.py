"""The trace points: one name per intermediate of the forward pass, their shapes, and HF's aliases.

`xlmr_np.audit.trace.trace` returns these names in forward order (core/model.py records them with `note`), and
`xlmr_np.audit.hf_trace.trace_hf` records the same names from a transformers model. A port to C, Rust, ONNX or
a quantised runtime dumps whichever of them it has to an .npz. `NAMING_TABLE` is the table printed by
`python -m xlmr_np trace --help` and docs/verification.md.

Layouts (shape legend: B batch, T tokens, S key length, D hidden, H heads, Dh head dim, F intermediate):
- per-token points are [B, T, ...]; q/k/v are split per head, [B, H, T|S, Dh] (HF's view + transpose(1, 2) in
  XLMRobertaSelfAttention.forward); scores and probabilities are [B, H, T, S]. The context is merged back,
  [B, T, D]: head h is columns h*Dh ... (h+1)*Dh - 1.
- `TOKEN_AXES[kind]` says which axes index tokens, so that compare() can leave out pad positions: for scores
  both the query and the key axis, for probabilities only the query axis (a probability on a pad key must
  be 0, and a port that gets the mask wrong is caught there).
- multiple choice runs the body on [B*C, T]: every body point has B*C rows, the mask is reshaped alike.
"""
from __future__ import annotations

import re

# (name pattern, shape, what it holds, where HF computes it: modeling_xlm_roberta.py) in forward order.
# {i} is a layer index; "crossattention" points exist only for decoders with encoder_hidden_states.
POINTS = (
    ("embeddings.word", "B T D", "word embedding rows (or inputs_embeds)", "embeddings.word_embeddings"),
    ("embeddings.token_type", "B T D", "token type embedding rows", "embeddings.token_type_embeddings"),
    ("embeddings.position", "B T D", "position rows (absolute positions only)", "embeddings.position_embeddings"),
    ("embeddings", "B T D", "LayerNorm(word + type + position)", "embeddings.LayerNorm"),
    ("layers.{i}.attention.query", "B H T Dh", "W_q x + b_q, split per head", "attention.self.query"),
    ("layers.{i}.attention.key", "B H S Dh", "W_k x + b_k, split per head", "attention.self.key"),
    ("layers.{i}.attention.value", "B H S Dh", "W_v x + b_v, split per head", "attention.self.value"),
    ("layers.{i}.attention.scores", "B H T S", "q k^T [+ relative] / sqrt(Dh), before the mask",
     "attention.self: attention_scores"),
    ("layers.{i}.attention.probabilities", "B H T S", "softmax(scores + mask) [* head_mask]",
     "attention.self: attention_probs"),
    ("layers.{i}.attention.context", "B T D", "probabilities @ v, heads merged", "attention.self (output)"),
    ("layers.{i}.attention.out_proj", "B T D", "W_o context + b_o, before the residual", "attention.output.dense"),
    ("layers.{i}.attention.norm", "B T D", "LayerNorm(out_proj + x)", "attention.output.LayerNorm"),
    ("layers.{i}.crossattention.*", "", "the same 8 points, cross-attention (decoders)", "crossattention"),
    ("layers.{i}.ffn.in_proj", "B T F", "W_in h + b_in, before the activation", "intermediate.dense"),
    ("layers.{i}.ffn.activation", "B T F", "hidden_act(in_proj)", "intermediate (output)"),
    ("layers.{i}.ffn.out_proj", "B T D", "W_out act + b_out, before the residual", "output.dense"),
    ("layers.{i}.ffn.norm", "B T D", "LayerNorm(out_proj + h)", "output.LayerNorm"),
    ("layers.{i}", "B T D", "the layer's output (= ffn.norm)", "encoder.layer.{i}"),
    ("last_hidden_state", "B T D", "XLMRobertaModel's output field", "output field"),
    ("pooler_output", "B D", "XLMRobertaModel: tanh(W_p h[:, 0] + b_p)", "output field"),
    ("logits", "B T V|B C", "the head's logits (per token or per sequence)", "output field"),
    ("start_logits, end_logits", "B T", "question answering", "output fields"),
)

# Aliases accepted on their side: HF's output tuples, flattened as "hidden_states.0", "attentions.1", ...
ALIASES = (
    ("hidden_states.0", "embeddings"),
    ("hidden_states.{k}", "layers.{k-1}   (k >= 1)"),
    ("attentions.{k}", "layers.{k}.attention.probabilities"),
    ("cross_attentions.{k}", "layers.{k}.crossattention.probabilities"),
)

_HIDDEN = re.compile(r"hidden_states\.(\d+)")
_ATTENTIONS = re.compile(r"(cross_)?attentions\.(\d+)")
_LAYER = re.compile(r"layers\.\d+")


def canonical_name(name: str) -> str:
    """HF's names -> ours: hidden_states.k -> embeddings / layers.{k-1}, attentions.k -> layers.k.attention.
    probabilities (cross_attentions.k: crossattention). Every other name is returned as it is."""
    hidden = _HIDDEN.fullmatch(name)
    if hidden:
        index = int(hidden.group(1))
        return "embeddings" if index == 0 else f"layers.{index - 1}"
    attentions = _ATTENTIONS.fullmatch(name)
    if attentions:
        kind = "crossattention" if attentions.group(1) else "attention"
        return f"layers.{attentions.group(2)}.{kind}.probabilities"
    return name


def kind(name: str) -> str:
    """The name with its layer index replaced by {i}: "layers.2.ffn.activation" -> "layers.{i}.ffn.activation"."""
    return _LAYER.sub("layers.{i}", name, count=1)


def token_axes(name: str, ndim: int) -> tuple:
    """The axes of a point's array that index tokens of the [B, T] attention mask (axis 0 is always the batch).

    () for points with no token axis (pooler_output, sequence-level logits [B, C]).
    """
    step = kind(name).rsplit(".", 1)[-1]
    if step in ("query", "key", "value", "probabilities"):
        return (2,)
    if step == "scores":
        return (2, 3)
    if name in ("pooler_output",) or (name == "logits" and ndim == 2):
        return ()
    return (1,) if ndim >= 2 else ()


def naming_table() -> str:
    """The naming scheme as plain text, at most 100 characters a line (`trace --help` prints it)."""
    width = max(len(row[0]) for row in POINTS)
    lines = ["trace points, in forward order (B batch, T tokens, S keys, D hidden, H heads, Dh head dim,",
             "F intermediate; {i} a layer index):"]
    for pattern, shape, meaning, _ in POINTS:
        lines.append(f"  {pattern:{width}} {shape:9} {meaning}")
    lines.append("accepted aliases (HF's output tuples):")
    lines += [f"  {alias:{width}} = {name}" for alias, name in ALIASES]
    return "\n".join(lines)
