"""Checks and conversions of the keyword arguments of a forward call, before any arithmetic.

Hugging Face reports most bad inputs as an IndexError deep inside torch ("index out of range in self",
issues #2446, #14243) or as a silent wrong answer. Here each problem raises an InputError (a ValueError)
that names the argument, what was expected, and how to fix it.

Shape legend: B batch, T tokens, P cached tokens, S key length, D hidden, L layers, H heads.
"""
from __future__ import annotations

import numpy as np

from .backend import array_module
from .errors import InputError


def shape_of(value) -> tuple:
    """Shape of an array of any backend, or of nested lists (without converting device arrays)."""
    return tuple(value.shape) if hasattr(value, "shape") else np.shape(value)


def as_array(value, name, xp):
    """Nested lists, NumPy or CuPy arrays -> an array of the backend `xp` (the parameters' backend)."""
    if value is None:
        return None
    if hasattr(value, "dtype") and hasattr(value, "shape") and array_module(value) is xp:
        return value
    try:
        return xp.asarray(value)
    except (ValueError, TypeError) as err:
        raise InputError(f"{name} could not be turned into an array: {err}") from None


def _integer_ids(value, name, xp):
    array = as_array(value, name, xp)
    if array.size == 0:
        raise InputError(f"{name} is empty: the input has no tokens")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{name} must hold integer ids, got dtype {array.dtype}")
    if array.dtype.kind == "u" and int(array.max()) > np.iinfo(np.int64).max:  # would wrap to a negative int64
        raise InputError(f"{name} contains id {int(array.max())}, larger than any vocabulary")
    return array.astype(xp.int64, copy=False)


def _check_range(ids, name, high, hint, xp):
    if ids.size == 0:
        return
    low_found, high_found = int(ids.min()), int(ids.max())
    if low_found < 0:
        raise InputError(f"{name} contains a negative id ({low_found}); ids must be in [0, {high})")
    if high_found >= high:
        raise InputError(f"{name} contains id {high_found}, outside [0, {high}): {hint}")


def prepare(cfg, xp, dtype, *, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
            head_mask=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
            past_length=0):
    """Validate and convert the inputs of one forward call; returns a dict of arrays (None where absent)."""
    input_ids, inputs_embeds = _tokens(cfg, xp, dtype, input_ids, inputs_embeds)
    batch, length = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
    position_ids = _positions(cfg, xp, position_ids, input_ids, batch, length, past_length)
    token_type_ids = _token_types(cfg, xp, token_type_ids, batch, length)
    attention_mask = _attention_mask(xp, dtype, attention_mask, batch, length, past_length)
    head_mask = _head_mask(cfg, xp, dtype, head_mask)
    encoder_hidden_states, encoder_attention_mask = _cross_inputs(cfg, xp, dtype, encoder_hidden_states,
                                                                  encoder_attention_mask, batch, length)
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask)


def _tokens(cfg, xp, dtype, input_ids, inputs_embeds):
    """Exactly one of input_ids [B, T] (ids in the vocabulary) or inputs_embeds [B, T, D], checked."""
    if (input_ids is None) == (inputs_embeds is None):
        raise InputError("pass exactly one of input_ids or inputs_embeds")
    if input_ids is not None:
        input_ids = _integer_ids(input_ids, "input_ids", xp)
        if input_ids.ndim != 2:
            raise InputError(f"input_ids must be [batch, tokens], got shape {tuple(input_ids.shape)}")
        _check_range(input_ids, "input_ids", cfg.vocab_size,
                     f"the checkpoint's vocabulary has {cfg.vocab_size} entries (is the tokenizer from another model?)", xp)
    else:
        inputs_embeds = as_array(inputs_embeds, "inputs_embeds", xp)
        if inputs_embeds.ndim != 3 or inputs_embeds.shape[-1] != cfg.hidden_size:
            raise InputError(f"inputs_embeds must be [batch, tokens, {cfg.hidden_size}], got {tuple(inputs_embeds.shape)}")
        inputs_embeds = inputs_embeds.astype(dtype, copy=False)
    if (input_ids if input_ids is not None else inputs_embeds).shape[1] == 0:
        raise InputError("the input has no tokens")
    return input_ids, inputs_embeds


def _positions(cfg, xp, position_ids, input_ids, batch, length, past_length):
    """position_ids [B|1, T] checked against the table, or None; without them, the length the positions allow."""
    if position_ids is not None:
        position_ids = _integer_ids(position_ids, "position_ids", xp)
        if position_ids.ndim == 1:
            position_ids = position_ids[None, :]
        if position_ids.shape[-1] != length or position_ids.shape[0] not in (1, batch):
            raise InputError(f"position_ids must be [batch, tokens] = [{batch}, {length}], got {tuple(position_ids.shape)}")
        _check_range(position_ids, "position_ids", cfg.max_position_embeddings,
                     f"the position table has {cfg.max_position_embeddings} rows", xp)
    elif cfg.position_embedding_type == "absolute":
        # Positions run from pad+1; the last usable row is max_position_embeddings-1 (issues #1726, #14243).
        longest = past_length + length if input_ids is None else None
        if input_ids is not None:
            real = (input_ids != cfg.pad_token_id).sum(axis=1)
            longest = past_length + int(real.max())
        if longest > cfg.max_tokens:
            raise InputError(
                f"sequence of {longest} tokens is longer than the {cfg.max_tokens} the position table allows "
                f"(max_position_embeddings {cfg.max_position_embeddings} - pad_token_id {cfg.pad_token_id} - 1); "
                f"truncate the input (tokenizer truncation=True, max_length={cfg.max_tokens}) or split it into windows")
    if cfg.position_embedding_type != "absolute" and past_length + length > cfg.max_position_embeddings:
        # The distance table has 2 max_position_embeddings - 1 rows: |query - key| must stay below max_pos.
        raise InputError(f"{past_length + length} positions exceed max_position_embeddings "
                         f"({cfg.max_position_embeddings}) of this relative-position model; shorten the input")
    return position_ids


def _token_types(cfg, xp, token_type_ids, batch, length):
    """token_type_ids [B, T], zeros when not given (HF's buffer of max_position_embeddings zeros)."""
    if token_type_ids is None:
        if length > cfg.max_position_embeddings:
            # HF slices a buffer of max_position_embeddings zeros; longer inputs fail there too.
            raise InputError(f"{length} tokens exceed max_position_embeddings ({cfg.max_position_embeddings})")
        return xp.zeros((batch, length), dtype=xp.int64)
    token_type_ids = _integer_ids(token_type_ids, "token_type_ids", xp)
    if tuple(token_type_ids.shape) != (batch, length):
        raise InputError(f"token_type_ids must have the ids' shape {(batch, length)}, got {tuple(token_type_ids.shape)}")
    _check_range(token_type_ids, "token_type_ids", cfg.type_vocab_size,
                 f"this checkpoint has type_vocab_size={cfg.type_vocab_size} (XLM-R checkpoints use only type 0)", xp)
    return token_type_ids


def _attention_mask(xp, dtype, attention_mask, batch, length, past_length):
    """[B, P + T] or [B, T, P + T]; all ones when not given."""
    key_length = past_length + length
    if attention_mask is None:
        return xp.ones((batch, key_length), dtype=dtype)
    attention_mask = as_array(attention_mask, "attention_mask", xp)
    expected_2d, expected_3d = (batch, key_length), (batch, length, key_length)
    if tuple(attention_mask.shape) not in (expected_2d, expected_3d):
        cached = f" (past {past_length} + new {length})" if past_length else ""
        raise InputError(
            f"attention_mask must be [batch, keys] = {list(expected_2d)}{cached} or [batch, queries, keys] = "
            f"{list(expected_3d)}, got {list(attention_mask.shape)}")
    return attention_mask


def _head_mask(cfg, xp, dtype, head_mask):
    """[H] or [L, H] -> [L, H] (HF's get_head_mask), or None."""
    if head_mask is None:
        return None
    head_mask = as_array(head_mask, "head_mask", xp).astype(dtype)
    layers, heads = cfg.num_hidden_layers, cfg.num_attention_heads
    if head_mask.shape == (heads,):
        return xp.broadcast_to(head_mask, (layers, heads))  # [H] -> [L, H]
    if head_mask.shape != (layers, heads):
        raise InputError(f"head_mask must be [heads] = [{heads}] or [layers, heads] = [{layers}, {heads}], "
                         f"got {list(head_mask.shape)}")
    return head_mask


def _cross_inputs(cfg, xp, dtype, encoder_hidden_states, encoder_attention_mask, batch, length):
    """(encoder_hidden_states [B, S, D], its mask [B, S] or [B, T, S]) for cross-attention decoders, else Nones."""
    if encoder_hidden_states is None:
        if encoder_attention_mask is not None and cfg.is_decoder and cfg.add_cross_attention:
            raise InputError("encoder_attention_mask was passed without encoder_hidden_states")
        return None, encoder_attention_mask
    if not cfg.is_decoder:
        return None, None  # HF ignores them outside decoders
    if not cfg.add_cross_attention:
        raise InputError("encoder_hidden_states were passed but this model has no cross-attention layers "
                         "(config add_cross_attention=False)")
    encoder_hidden_states = as_array(encoder_hidden_states, "encoder_hidden_states", xp).astype(dtype, copy=False)
    if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[0] != batch \
            or encoder_hidden_states.shape[2] != cfg.hidden_size:
        raise InputError(f"encoder_hidden_states must be [batch={batch}, source tokens, {cfg.hidden_size}], "
                         f"got {list(encoder_hidden_states.shape)}")
    source = encoder_hidden_states.shape[1]
    if encoder_attention_mask is None:
        return encoder_hidden_states, xp.ones((batch, source), dtype=dtype)
    encoder_attention_mask = as_array(encoder_attention_mask, "encoder_attention_mask", xp)
    if tuple(encoder_attention_mask.shape) not in ((batch, source), (batch, length, source)):
        raise InputError(f"encoder_attention_mask must be [batch, source tokens] = [{batch}, {source}], "
                         f"got {list(encoder_attention_mask.shape)}")
    return encoder_hidden_states, encoder_attention_mask


def validate_past(past_key_values, cfg, batch):
    """A cache is a tuple with one (k, v[, cross_k, cross_v]) per layer, each [B, H, P, Dh]; returns P."""
    if len(past_key_values) != cfg.num_hidden_layers:
        raise InputError(f"past_key_values has {len(past_key_values)} layers, the model has {cfg.num_hidden_layers}")
    first = past_key_values[0][0]
    expected = (batch, cfg.num_attention_heads, first.shape[2], cfg.head_dim)
    for i, entry in enumerate(past_key_values):
        if len(entry) not in (2, 4) or any(tuple(a.shape[:2]) + tuple(a.shape[3:]) != expected[:2] + expected[3:]
                                           for a in entry):
            raise InputError(f"past_key_values[{i}] must be (key, value[, cross_key, cross_value]) arrays of shape "
                             f"[batch, heads, cached, head_dim] = {list(expected)}; pass back what the model returned")
    return int(first.shape[2])



# --- labels: the `labels=` / `start_positions=` / `end_positions=` arguments, checked against the logits ----
# torch reports a bad label as "Target 7 is out of bounds" (IndexError), refuses float class ids, and broadcasts
# targets of the wrong shape in MSE with a warning only. Here each raises an InputError naming the argument.
def _labels_array(value, name, xp, shapes, what, logits_shape):
    """`value` as an array whose shape is one of `shapes` (described as `what`, e.g. "[batch, tokens]")."""
    labels = as_array(value, name, xp)
    if tuple(labels.shape) not in shapes:
        allowed = " or ".join(str(list(shape)) for shape in shapes)
        raise InputError(f"{name} must be {what} = {allowed} for logits of shape {list(logits_shape)}, "
                         f"got shape {list(labels.shape)}")
    return labels


def class_labels(value, name, xp, shapes, what, logits_shape, classes, ignore_index=-100):
    """Class ids for a cross-entropy loss, as int64: each in [0, classes) or `ignore_index`.

    Any integer dtype is taken (torch takes only int64 and uint8); floats and booleans are refused, as torch does.
    """
    labels = _labels_array(value, name, xp, shapes, what, logits_shape)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{name} must hold integer class ids for a cross-entropy loss, got dtype {labels.dtype}")
    labels = labels.astype(xp.int64, copy=False)
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= classes))
    if bool(bad.any()):
        found = int(labels[bad][0])
        raise InputError(f"{name} contains {found}, outside [0, {classes}) and not the ignore index {ignore_index} "
                         f"(torch: 'Target {found} is out of bounds')")
    return labels


def target_values(value, name, xp, dtype, shapes, what, logits_shape):
    """Regression targets or multi-label probabilities: numbers (booleans and integers too), cast to `dtype`."""
    labels = _labels_array(value, name, xp, shapes, what, logits_shape)
    if labels.dtype != bool and not np.issubdtype(labels.dtype, np.integer) \
            and not np.issubdtype(labels.dtype, np.floating):
        raise InputError(f"{name} must hold real numbers, got dtype {labels.dtype}")
    return labels.astype(dtype, copy=False)


def answer_positions(value, name, xp, batch, logits_shape):
    """start_positions / end_positions: [B] or [B, 1] integer token indices (any value: HF clamps them to [0, T])."""
    positions = _labels_array(value, name, xp, [(batch,), (batch, 1)], "[batch] or [batch, 1]", logits_shape)
    if positions.dtype == bool or not np.issubdtype(positions.dtype, np.integer):
        raise InputError(f"{name} must hold integer token positions, got dtype {positions.dtype}")
    return positions.astype(xp.int64, copy=False)


def is_integer_array(value) -> bool:
    """Integer (not boolean) labels: what makes HF infer "single_label_classification" for num_labels > 1."""
    dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
    return dtype != bool and np.issubdtype(dtype, np.integer)
