"""Autoregressive generation for XLMRobertaForCausalLM: greedy, or sampling with temperature / top-k / top-p.

Reference: transformers 4.57.6 `generation/utils.py` (_sample: stop on eos, pad finished rows) and
`generation/logits_process.py` (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, applied in this
order). Deliberate difference: HF's prepare_inputs_for_generation passes 0-based position ids built from the
attention mask, so a model trained with XLM-R's positions (pad+1, pad+2, ...) continues differently from
its own forward pass. Here every new token gets the position a full forward pass of the whole sequence would
give it: pad_token_id + (number of non-pad tokens up to and including it). With the KV cache the logits of
each step equal those of the full-sequence run (tests/test_generation.py).

Shape legend: B batch, T0 prompt length, V vocabulary.
"""
from __future__ import annotations

import numpy as np

from .backend import array_module, to_numpy


def _warp(logits, temperature, top_k, top_p):
    """Temperature, then keep the top_k largest, then the smallest set with probability mass >= top_p."""
    logits = logits / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = np.sort(logits, axis=-1)[:, -top_k][:, None]  # [B, 1]
        logits = np.where(logits < kth, -np.inf, logits)
    if top_p < 1.0:
        order = np.argsort(logits, axis=-1)  # ascending, as HF
        sorted_logits = np.take_along_axis(logits, order, axis=-1)
        probs = np.exp(sorted_logits - sorted_logits[:, -1:])
        cumulative = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)
        remove_sorted = cumulative <= (1.0 - top_p)
        remove_sorted[:, -1] = False  # always keep the most likely token
        remove = np.zeros_like(remove_sorted)
        np.put_along_axis(remove, order, remove_sorted, axis=-1)
        logits = np.where(remove, -np.inf, logits)
    return logits


def generate(model, input_ids, max_new_tokens, do_sample, temperature, top_k, top_p, seed, eos_token_id,
             pad_token_id, attention_mask, encoder_hidden_states, encoder_attention_mask, use_cache):
    cfg = model.config
    ids = np.array(to_numpy(input_ids) if hasattr(input_ids, "shape") else input_ids, dtype=np.int64)
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"input_ids must be a non-empty [batch, tokens] array, got shape {list(ids.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if do_sample and not temperature > 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool) or top_k < 0):
        raise ValueError(f"top_k must be a positive integer (0 or None: no top-k filtering, as HF), got {top_k!r}")
    use_cache = bool(use_cache and cfg.is_decoder)  # HF keeps a cache only for decoders
    if ids.shape[1] + max_new_tokens > cfg.max_tokens + int((ids == cfg.pad_token_id).sum(axis=1).min()):
        raise ValueError(f"prompt ({ids.shape[1]} tokens) + max_new_tokens ({max_new_tokens}) exceeds the "
                         f"{cfg.max_tokens} positions the model has; lower max_new_tokens")
    rng = np.random.default_rng(seed)
    mask = (ids != cfg.pad_token_id).astype(np.int64) if attention_mask is None else np.array(to_numpy(attention_mask))
    # Positions of a full forward pass: count non-pad tokens (fairseq make_positions).
    is_token = (ids != cfg.pad_token_id).astype(np.int64)
    positions = np.cumsum(is_token, axis=1) * is_token + cfg.pad_token_id  # [B, T0]
    counts = is_token.sum(axis=1)  # [B]
    finished = np.zeros(ids.shape[0], dtype=bool)
    cross = dict(encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask)
    past, step_ids, step_positions = None, ids, positions
    for _ in range(max_new_tokens):
        if use_cache:
            out = model(step_ids, attention_mask=mask, position_ids=step_positions, past_key_values=past,
                        use_cache=True, **cross)
            past = out.past_key_values
        else:
            out = model(ids, attention_mask=mask, position_ids=positions, use_cache=False, **cross)
        logits = to_numpy(out.logits[:, -1, :]).astype(np.float64)  # [B, V]
        if do_sample:
            logits = _warp(logits, temperature, top_k, top_p)
            probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            next_ids = np.array([rng.choice(probs.shape[1], p=row) for row in probs], dtype=np.int64)
        else:
            next_ids = logits.argmax(axis=-1)  # [B]; ties go to the lowest id, as torch.argmax
        if eos_token_id is not None:
            next_ids = np.where(finished, pad_token_id, next_ids)
        counts = counts + 1
        step_ids = next_ids[:, None]  # [B] -> [B, 1]
        step_positions = (counts + cfg.pad_token_id)[:, None]  # [B, 1]
        ids = np.concatenate([ids, step_ids], axis=1)  # [B, T] -> [B, T+1]
        positions = np.concatenate([positions, step_positions], axis=1)
        mask = np.concatenate([mask, np.ones_like(step_ids)], axis=1)
        if eos_token_id is not None:
            finished |= next_ids == eos_token_id
            if finished.all():
                break
    xp = array_module(model.params["embeddings.word"])
    return ids if xp is np else xp.asarray(ids)
