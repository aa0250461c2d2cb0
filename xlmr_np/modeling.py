"""Thin classes with Hugging Face's names: loading, saving, calling, generating. No math of their own.

Each class holds a config, a flat parameter dict and a kernel set; `__call__` checks the inputs (inputs.py),
runs the body (core/model.py) and a head (core/heads.py) with that kernel set (runtime/: "fast" by default,
"reference" for the core alone), and wraps the arrays in HF-shaped outputs (outputs.py). Given `labels`
(question answering: `start_positions` and `end_positions`), the heads also return HF's `loss`, computed by
core/losses.py after the labels are checked (inputs.class_labels, target_values, answer_positions).
Reference for the call signature and outputs: transformers 4.57.6 `modeling_xlm_roberta.py`.
Not implemented: dropout and gradients, i.e. this evaluates a model but cannot train it.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from . import inputs as inputs_module
from .backend import array_module, to_device
from .core import heads, losses, model
from .runtime import kernel_set
from .weights import load_params, resolve_model_dir, save_model
from .config import XLMRobertaConfig
from .outputs import (BaseModelOutputWithPoolingAndCrossAttentions, CausalLMOutputWithCrossAttentions, MaskedLMOutput,
                      MultipleChoiceModelOutput, QuestionAnsweringModelOutput, SequenceClassifierOutput,
                      TokenClassifierOutput)

DTYPES = {"float32": np.float32, "float64": np.float64}


def _as_loss(xp, value):
    """A 0-d array of the parameters' module (NumPy's reductions return NumPy scalars), or None."""
    return None if value is None else xp.asarray(value)


def _compute_dtype(dtype):
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' (default) or 'float64', got {dtype!r}; "
                         f"half-precision checkpoints are upcast on load")
    return np.dtype(DTYPES[name])


class XLMRobertaPreTrainedModel:
    head: str | None = None  # key into weights.keys.HEADS
    with_pooler = False  # add_pooling_layer as HF sets it per class

    def __init__(self, config: XLMRobertaConfig, params: dict, kernels=None):
        self.config = config
        self.params = params
        self.kernels = kernel_set(kernels)

    @classmethod
    def from_pretrained(cls, path, dtype="float32", device="cpu", kernels=None):
        """Load config.json + weights from a directory (or a hub id found in the local HF cache).

        dtype: "float32" (default) or "float64"; float16/bfloat16 files are upcast. device: "cpu" or "gpu".
        kernels: "fast" (default, or $XLMR_NP_KERNELS) or "reference" (the core code alone), see xlmr_np.runtime.
        """
        kernels = kernel_set(kernels)  # an unknown name fails before anything is read
        directory = resolve_model_dir(path)
        config = XLMRobertaConfig.from_pretrained(directory)
        params, dropped = load_params(directory, config, cls.head, cls.with_pooler, _compute_dtype(dtype))
        if dropped:
            warnings.warn(f"{os.fspath(directory)} has no pooler weights: pooler_output will be None "
                          f"(HF would fill the pooler with random numbers)", stacklevel=2)
        if device != "cpu":
            params = to_device(params, device)
        return cls(config, params, kernels)

    def save_pretrained(self, directory, overwrite=False):
        """Write config.json + model.safetensors in the layout HF transformers loads, all or nothing:
        both go to temporary names and are renamed once both are complete, so a full disk leaves the
        directory as it was. A directory that already holds a model (config.json or any weight file)
        is refused unless overwrite=True (HF's save_pretrained would replace it)."""
        config = self.config.replace(architectures=[type(self).__name__], dtype=self.dtype.name)
        save_model(directory, self.params, config, self.head, config.to_json_string(), overwrite=overwrite)

    @property
    def dtype(self):
        return np.dtype(self.params["embeddings.word"].dtype)

    @property
    def _xp(self):
        return array_module(self.params["embeddings.word"])

    def num_parameters(self) -> int:
        unique = {id(v): v for v in self.params.values()}
        return int(sum(v.size for v in unique.values()))

    # --- the shared forward pass ---
    def _body(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
              inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
              use_cache=None, output_attentions=None, output_hidden_states=None, trace=None):
        cfg = self.config
        xp = array_module(self.params["embeddings.word"])
        if (input_ids is None) == (inputs_embeds is None):
            raise inputs_module.InputError("pass exactly one of input_ids or inputs_embeds")
        batch = inputs_module.shape_of(input_ids if input_ids is not None else inputs_embeds)[0]
        past_length = 0 if past_key_values is None else inputs_module.validate_past(past_key_values, cfg, batch)
        checked = inputs_module.prepare(
            cfg, xp, self.dtype, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
            position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
            encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
            past_length=past_length)
        # HF: a cache exists only for decoders, and decoders use one unless told otherwise (config.use_cache).
        use_cache = bool(cfg.is_decoder and (cfg.use_cache if use_cache is None else use_cache))
        # HF: what the call does not say, the config does (PretrainedConfig.output_attentions / _hidden_states)
        output_attentions = cfg.output_attentions if output_attentions is None else bool(output_attentions)
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else bool(output_hidden_states)
        return model.forward(self.params, cfg, checked, past_key_values, past_length, use_cache,
                             output_attentions, output_hidden_states, trace, kernels=self.kernels)

    def __repr__(self):
        c = self.config
        return (f"{type(self).__name__}(layers={c.num_hidden_layers}, hidden={c.hidden_size}, "
                f"heads={c.num_attention_heads}, vocab={c.vocab_size}, dtype={self.dtype.name}, "
                f"kernels={self.kernels.name})")


class XLMRobertaModel(XLMRobertaPreTrainedModel):
    """The bare encoder: last_hidden_state and pooler_output."""
    with_pooler = True

    def __call__(self, input_ids=None, **kwargs):
        out = self._body(input_ids, **kwargs)
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=out["last_hidden_state"], pooler_output=out["pooler_output"],
            hidden_states=out["hidden_states"], past_key_values=out["past_key_values"],
            attentions=out["attentions"], cross_attentions=out["cross_attentions"])


class XLMRobertaForMaskedLM(XLMRobertaPreTrainedModel):
    head = "masked_lm"

    def __init__(self, config, params, kernels=None):
        super().__init__(config, params, kernels)
        if config.is_decoder:
            warnings.warn("XLMRobertaForMaskedLM with is_decoder=True: attention will be causal", stacklevel=2)

    def __call__(self, input_ids=None, labels=None, **kwargs):
        """labels [B, T]: token ids in [0, V) or -100 (ignored) give `loss`, cross-entropy averaged over the kept ones."""
        out = self._body(input_ids, **kwargs)
        logits = heads.lm_head(self.params, self.config, out["last_hidden_state"], self.kernels)  # [B, T, V]
        loss = None
        if labels is not None:
            labels = inputs_module.class_labels(labels, "labels", self._xp, [logits.shape[:2]], "[batch, tokens]",
                                                logits.shape, logits.shape[-1])
            loss = losses.masked_lm_loss(logits, labels)
        return MaskedLMOutput(loss=_as_loss(self._xp, loss), logits=logits, hidden_states=out["hidden_states"],
                              attentions=out["attentions"])


class XLMRobertaForCausalLM(XLMRobertaPreTrainedModel):
    head = "masked_lm"  # the same LM head and weights as the masked LM

    def __init__(self, config, params, kernels=None):
        super().__init__(config, params, kernels)
        if not config.is_decoder:
            warnings.warn("If you want to use `XLMRobertaForCausalLM` as a standalone, add `is_decoder=True.` "
                          "(without it attention is bidirectional, as in HF)", stacklevel=2)

    def __call__(self, input_ids=None, labels=None, **kwargs):
        """labels [B, T] (usually the input ids; -100 ignored) give `loss`: position t is scored on label t+1.

        The loss is float32 even for a float64 model, as HF's ForCausalLMLoss (core/losses.causal_lm_loss).
        With labels, HF turns the cache off (use_cache=False): past_key_values is then None here too.
        """
        if labels is not None:
            kwargs["use_cache"] = False
        out = self._body(input_ids, **kwargs)
        logits = heads.lm_head(self.params, self.config, out["last_hidden_state"], self.kernels)  # [B, T, V]
        loss = None
        if labels is not None:
            labels = inputs_module.class_labels(labels, "labels", self._xp, [logits.shape[:2]], "[batch, tokens]",
                                                logits.shape, logits.shape[-1])
            loss = losses.causal_lm_loss(logits, labels)
        return CausalLMOutputWithCrossAttentions(
            loss=_as_loss(self._xp, loss), logits=logits, past_key_values=out["past_key_values"],
            hidden_states=out["hidden_states"], attentions=out["attentions"], cross_attentions=out["cross_attentions"])

    def generate(self, input_ids, max_new_tokens=20, do_sample=False, temperature=1.0, top_k=50, top_p=1.0,
                 seed=None, eos_token_id="config", pad_token_id=None, attention_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, use_cache=True):
        """Prompt + new tokens, [B, T0 + n] (n <= max_new_tokens), like HF's generate.

        Greedy by default; sampling applies temperature, then top-k, then top-p (HF's warper order).
        Positions continue as repeated full forward passes would (counted over non-pad tokens), NOT as
        HF's generate does (0-based ids from the attention mask, GenerationMixin.prepare_inputs_for_generation).
        Rows that produced eos_token_id (default: config.eos_token_id; None = never stop) are padded.
        """
        from .generation import generate

        return generate(self, input_ids, max_new_tokens, do_sample, temperature, top_k, top_p, seed,
                        self.config.eos_token_id if eos_token_id == "config" else eos_token_id,
                        self.config.pad_token_id if pad_token_id is None else pad_token_id, attention_mask,
                        encoder_hidden_states, encoder_attention_mask, use_cache)


class XLMRobertaForSequenceClassification(XLMRobertaPreTrainedModel):
    head = "sequence_classification"

    def __call__(self, input_ids=None, labels=None, **kwargs):
        """labels give `loss`, by config.problem_type: "regression" (MSE; labels [B] or [B, 1] for one label,
        else [B, C]), "single_label_classification" (cross-entropy; class ids [B], -100 ignored) or
        "multi_label_classification" (BCE with logits; labels [B, C] in [0, 1]).

        Without a problem_type, HF guesses one and WRITES IT INTO self.config (kept for later calls, saved by
        save_pretrained, read by the text-classification pipeline); so does this: one label -> regression,
        integer labels -> single-label, anything else -> multi-label. HF counts only int64/int32 as integer
        (and then torch refuses int32 ids); here every integer dtype is.
        """
        out = self._body(input_ids, **kwargs)
        logits = heads.sequence_classification(self.params, self.config, out["last_hidden_state"])  # [B, C]
        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                self.config.problem_type = losses.infer_problem_type(self.config.num_labels,
                                                                     inputs_module.is_integer_array(labels))
            loss = losses.sequence_classification_loss(logits, self._checked_labels(labels, logits),
                                                       self.config.problem_type)
        return SequenceClassifierOutput(loss=_as_loss(self._xp, loss), logits=logits,
                                        hidden_states=out["hidden_states"], attentions=out["attentions"])

    def _checked_labels(self, labels, logits):
        batch, classes = logits.shape
        problem = self.config.problem_type
        if problem == "single_label_classification":
            return inputs_module.class_labels(labels, "labels", self._xp, [(batch,), (batch, 1)],
                                              f"[batch] (one class id per row: problem_type {problem})",
                                              logits.shape, classes)
        if problem == "regression" and classes == 1:
            shapes, what = [(batch,), (batch, 1)], f"[batch] (one target per row: problem_type {problem})"
        else:
            shapes, what = [(batch, classes)], f"[batch, num_labels] (problem_type {problem})"
        return inputs_module.target_values(labels, "labels", self._xp, self.dtype, shapes, what, logits.shape)


class XLMRobertaForMultipleChoice(XLMRobertaPreTrainedModel):
    """Inputs are [B, C, T] (inputs_embeds [B, C, T, D]); each choice is encoded separately, logits [B, C]."""
    head = "multiple_choice"
    with_pooler = True

    def __call__(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 inputs_embeds=None, labels=None, **kwargs):
        """labels [B]: the index of the right choice (-100 ignored) gives `loss`, cross-entropy over the choices."""
        first = input_ids if input_ids is not None else inputs_embeds
        shape = inputs_module.shape_of(first)
        expected = 3 if input_ids is not None else 4
        if len(shape) != expected:
            raise inputs_module.InputError(f"multiple choice inputs must be [batch, choices, tokens]"
                                           f"{'' if expected == 3 else ' + [hidden]'}, got shape {list(shape)}")
        choices = shape[1]

        def flat(value):  # [B, C, T, ...] -> [B*C, T, ...]
            if value is None:
                return None
            value = value if hasattr(value, "reshape") else np.asarray(value)
            return value.reshape((-1,) + tuple(value.shape[2:]))

        out = self._body(flat(input_ids), attention_mask=flat(attention_mask), token_type_ids=flat(token_type_ids),
                         position_ids=flat(position_ids), inputs_embeds=flat(inputs_embeds), **kwargs)
        logits = heads.multiple_choice(self.params, self.config, out["pooler_output"], choices)  # [B, C]
        loss = None
        if labels is not None:
            labels = inputs_module.class_labels(labels, "labels", self._xp, [logits.shape[:1]], "[batch]",
                                                logits.shape, choices)
            loss = losses.multiple_choice_loss(logits, labels)
        return MultipleChoiceModelOutput(loss=_as_loss(self._xp, loss), logits=logits,
                                         hidden_states=out["hidden_states"], attentions=out["attentions"])


class XLMRobertaForTokenClassification(XLMRobertaPreTrainedModel):
    head = "token_classification"

    def __call__(self, input_ids=None, labels=None, **kwargs):
        """labels [B, T]: class ids in [0, num_labels) or -100 (ignored) give `loss`, cross-entropy over kept tokens."""
        out = self._body(input_ids, **kwargs)
        logits = heads.token_classification(self.params, self.config, out["last_hidden_state"])  # [B, T, C]
        loss = None
        if labels is not None:
            labels = inputs_module.class_labels(labels, "labels", self._xp, [logits.shape[:2]], "[batch, tokens]",
                                                logits.shape, logits.shape[-1])
            loss = losses.token_classification_loss(logits, labels)
        return TokenClassifierOutput(loss=_as_loss(self._xp, loss), logits=logits,
                                     hidden_states=out["hidden_states"], attentions=out["attentions"])


class XLMRobertaForQuestionAnswering(XLMRobertaPreTrainedModel):
    head = "question_answering"

    def __init__(self, config, params, kernels=None):
        if config.num_labels != 2:
            raise ValueError(f"question answering needs num_labels=2 (start, end), the config has {config.num_labels}")
        super().__init__(config, params, kernels)

    def __call__(self, input_ids=None, start_positions=None, end_positions=None, **kwargs):
        """start_positions and end_positions [B] (or [B, 1]) give `loss`, the mean of the two cross-entropies.

        As in HF: positions are clamped to [0, T] and T is ignored (an answer cut off by truncation counts
        for nothing); with only one of the two given there is no loss, and no error either.
        """
        out = self._body(input_ids, **kwargs)
        start, end = heads.question_answering(self.params, self.config, out["last_hidden_state"])  # [B, T] each
        loss = None
        if start_positions is not None and end_positions is not None:
            batch = start.shape[0]
            start_positions = inputs_module.answer_positions(start_positions, "start_positions", self._xp, batch,
                                                             start.shape)
            end_positions = inputs_module.answer_positions(end_positions, "end_positions", self._xp, batch,
                                                           end.shape)
            loss = losses.question_answering_loss(start, end, start_positions, end_positions)
        return QuestionAnsweringModelOutput(loss=_as_loss(self._xp, loss), start_logits=start, end_logits=end,
                                            hidden_states=out["hidden_states"], attentions=out["attentions"])


MODEL_CLASSES = {cls.__name__: cls for cls in (
    XLMRobertaModel, XLMRobertaForMaskedLM, XLMRobertaForCausalLM, XLMRobertaForSequenceClassification,
    XLMRobertaForMultipleChoice, XLMRobertaForTokenClassification, XLMRobertaForQuestionAnswering)}
