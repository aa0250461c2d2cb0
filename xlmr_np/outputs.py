"""Result objects shaped like Hugging Face's ModelOutput: fields by attribute, by name, or by position.

Reference: transformers 4.57.6 `modeling_outputs.py` (field names and order) and `utils/generic.py`
(ModelOutput: `out["logits"]`, `out[0]`, `to_tuple()` skipping fields that are None). As in HF, `loss` comes
first where a head has one: it is None without labels, so `out[0]` is then the logits, and with labels the loss.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional


class ModelOutput:
    """Mixin for the dataclasses below."""

    def keys(self):
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def to_tuple(self) -> tuple:
        return tuple(getattr(self, name) for name in self.keys())

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{key!r} is not in this output; available: {self.keys()}")
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        return [(name, getattr(self, name)) for name in self.keys()]


@dataclass
class BaseModelOutputWithPoolingAndCrossAttentions(ModelOutput):
    last_hidden_state: Any = None  # [B, T, D]
    pooler_output: Optional[Any] = None  # [B, D]
    hidden_states: Optional[tuple] = None  # L+1 x [B, T, D]
    past_key_values: Optional[tuple] = None  # L x (k, v[, cross_k, cross_v]), each [B, H, S, Dh]
    attentions: Optional[tuple] = None  # L x [B, H, T, S]
    cross_attentions: Optional[tuple] = None  # L x [B, H, T, S_enc]


@dataclass
class MaskedLMOutput(ModelOutput):
    loss: Optional[Any] = None  # [] when labels were given
    logits: Any = None  # [B, T, V]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class CausalLMOutputWithCrossAttentions(ModelOutput):
    loss: Optional[Any] = None  # [] when labels were given
    logits: Any = None  # [B, T, V]
    past_key_values: Optional[tuple] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None
    cross_attentions: Optional[tuple] = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Optional[Any] = None  # [] when labels were given
    logits: Any = None  # [B, num_labels]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class MultipleChoiceModelOutput(ModelOutput):
    loss: Optional[Any] = None  # [] when labels were given
    logits: Any = None  # [B, C]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    loss: Optional[Any] = None  # [] when labels were given
    logits: Any = None  # [B, T, num_labels]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Optional[Any] = None  # [] when labels were given
    start_logits: Any = None  # [B, T]
    end_logits: Any = None  # [B, T]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None
