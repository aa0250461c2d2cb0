"""The XLM-R body, top to bottom: embeddings, masks, attention, post-LN layers, encoder, pooler.

Reference: transformers 4.57.6 `models/xlm_roberta/modeling_xlm_roberta.py` (XLMRobertaEmbeddings,
XLMRobertaSelfAttention with eager attention, XLMRobertaLayer, XLMRobertaEncoder, XLMRobertaPooler,
XLMRobertaModel.forward) and `modeling_utils.py` (ModuleUtilsMixin). Parameters are a flat dict with this
project's names (the table from HF's names: xlmr_np/weights/keys.py); weights keep the [out, in] layout.
Inputs arrive checked (xlmr_np/inputs.py). Five operations go through a kernel set (core/kernels.py); with
none given, this file's and ops.py's own functions run (REFERENCE, at the bottom). Given a `trace` dict,
forward() runs REFERENCE and each step records its result there by name (`note`; the naming scheme and
every name's shape: xlmr_np/audit/points.py).

Shape legend: B batch, T query length (new tokens), P cached length, S key length (= P + T for
self-attention, the encoder length for cross-attention), D hidden, H heads, Dh head dim, F intermediate.
"""
from __future__ import annotations

import math

from ..backend import array_module
from .kernels import Kernels
from .ops import activation, gather_rows, layer_norm, linear, softmax


def sub(params: dict, prefix: str) -> dict:
    """The parameters under `prefix.`, with the prefix removed: sub(p, "layers.0")["attention.query.weight"]."""
    start = prefix + "."
    return {name[len(start):]: value for name, value in params.items() if name.startswith(start)}


def note(trace, at: str, **points):
    """Tracing (trace is a dict, else None): store copies of named intermediates as `at` + name. Copies,
    because the code after a point may overwrite its array in place."""
    if trace is not None:
        trace.update({at + name: value.copy() for name, value in points.items()})


# --- embeddings -------------------------------------------------------------------------------------------
def position_ids_from_input_ids(input_ids, pad_id: int, past_length: int = 0):
    """HF create_position_ids_from_input_ids: real tokens count pad+1, pad+2, ...; pads stay at pad."""
    xp = array_module(input_ids)
    is_token = (input_ids != pad_id).astype(xp.int64)  # [B, T]
    return (xp.cumsum(is_token, axis=1) + past_length) * is_token + pad_id  # [B, T]


def position_ids_from_embeds(batch: int, length: int, pad_id: int, xp):
    """pad+1 ... pad+T for every row: padding cannot be seen in inputs_embeds (HF does the same)."""
    return xp.broadcast_to(xp.arange(pad_id + 1, pad_id + 1 + length, dtype=xp.int64), (batch, length))  # [B, T]


def embeddings(params, cfg, token_embeds, token_type_ids, position_ids, trace=None):
    """LayerNorm(word + token_type [+ position]); relative-position models add no absolute positions."""
    types = params["embeddings.token_type"][token_type_ids]  # [B, T] -> [B, T, D]
    note(trace, "embeddings.", word=token_embeds, token_type=types)
    x = token_embeds + types  # [B, T, D]
    if cfg.position_embedding_type == "absolute":
        positions = params["embeddings.position"][position_ids]  # [B, T] -> [B, T, D]
        note(trace, "embeddings.", position=positions)
        x += positions
    return layer_norm(x, params["embeddings.norm.weight"], params["embeddings.norm.bias"], cfg.layer_norm_eps, out=x)


def embed(params, cfg, inputs, past_length=0, kernels=None, trace=None):
    """The embedding output [B, T, D] for checked inputs: word rows (or inputs_embeds), types, positions."""
    kernels = kernels or REFERENCE
    word, ids = params["embeddings.word"], inputs["input_ids"]
    token_embeds = inputs["inputs_embeds"] if ids is None else kernels.gather_rows(word, ids)  # [B, T, D]
    batch, length = token_embeds.shape[:2]
    position_ids = inputs["position_ids"]
    if position_ids is None and ids is not None:
        position_ids = position_ids_from_input_ids(ids, cfg.pad_token_id, past_length)  # [B, T]
    elif position_ids is None:
        position_ids = position_ids_from_embeds(batch, length, cfg.pad_token_id, array_module(word))  # [B, T]
    return embeddings(params, cfg, token_embeds, inputs["token_type_ids"], position_ids, trace)  # [B, T, D]


# --- masks ------------------------------------------------------------------------------------------------
def additive_mask(mask, dtype):
    """1 = attend, 0 = ignore  ->  0 or the dtype's most negative finite value, added to the scores (PR #17306)."""
    xp = array_module(mask)
    mask = mask.astype(dtype)
    return (1.0 - mask) * xp.finfo(dtype).min


def self_attention_mask(mask, length: int, is_decoder: bool, dtype):
    """A [B, S] or [B, T, S] 0/1 mask -> additive [B, 1, T|1, S]; decoders add the causal triangle to 2-D masks.

    With a cache (S = P + T) every cached position is visible and the new block is causal, as in
    ModuleUtilsMixin.create_extended_attention_mask_for_decoder.
    """
    xp = array_module(mask)
    if mask.ndim == 3:
        return additive_mask(mask[:, None, :, :], dtype)  # [B, T, S] -> [B, 1, T, S]
    extended = mask[:, None, None, :]  # [B, S] -> [B, 1, 1, S]
    if is_decoder:
        key_length = mask.shape[1]
        past = key_length - length
        query_pos = xp.arange(length)[:, None] + past  # [T, 1]
        causal = xp.arange(key_length)[None, :] <= query_pos  # [T, S]
        extended = causal[None, None, :, :].astype(mask.dtype) * extended  # -> [B, 1, T, S]
    return additive_mask(extended, dtype)


def cross_attention_mask(mask, dtype):
    """Encoder mask [B, S] or [B, T, S] -> additive [B, 1, 1|T, S] (ModuleUtilsMixin.invert_attention_mask)."""
    extended = mask[:, None, None, :] if mask.ndim == 2 else mask[:, None, :, :]
    return additive_mask(extended, dtype)


# --- attention --------------------------------------------------------------------------------------------
def split_heads(x, heads: int):
    b, t, d = x.shape
    return x.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3)  # [B, T, D] -> [B, H, T, Dh]


def merge_heads(x):
    b, h, t, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * dh)  # [B, H, T, Dh] -> [B, T, D]


def relative_position_scores(p, cfg, q, k, cached: bool, first_query: int = 0):
    """Scores from learned distance embeddings (Shaw et al. 2018; Huang et al. 2020 for "relative_key_query").

    distance = query position - key position, in a (2 max_pos - 1)-row table; q: queries first_query, ...
    HF quirk, copied on purpose: whenever a cache is in use (use_cache=True, even on the first call, or a
    past is given) XLMRobertaSelfAttention takes the single query position S-1 for every query row. That is
    right for one-token generation steps and differs from the uncached pass for multi-token blocks.
    """
    xp = array_module(q)
    if cached:
        query_pos = xp.full((1, 1), k.shape[2] - 1)  # [1, 1]: HF's position_ids_l = key_length - 1
    else:
        query_pos = xp.arange(first_query, first_query + q.shape[2])[:, None]  # [T, 1]
    key_pos = xp.arange(k.shape[2])[None, :]  # [1, S]
    table = p["distance"][query_pos - key_pos + cfg.max_position_embeddings - 1]  # [T|1, S, Dh]
    table = xp.broadcast_to(table, (q.shape[2],) + table.shape[1:])  # [T|1, S, Dh] -> [T, S, Dh]
    scores = xp.einsum("bhtd,tsd->bhts", q, table)  # [B, H, T, S]
    if cfg.position_embedding_type == "relative_key_query":
        scores = scores + xp.einsum("bhsd,tsd->bhts", k, table)  # [B, H, T, S]
    return scores


def attention_probs(p, cfg, q, k, mask, head_mask=None, cached=False, relative=False, first_query=0, trace=None,
                    at=""):
    """softmax((q k^T [+ relative scores]) / sqrt(Dh) + mask) [* head_mask], for the queries q [B, H, T, Dh].

    The arithmetic runs in place on the one [B, H, T, S] scores array, in HF's order (eager_attention_forward).
    mask is additive, [B, 1, T|1, S] for these query rows, or None.
    """
    if relative:
        scores = q @ k.transpose(0, 1, 3, 2)  # [B, H, T, Dh] @ [B, H, Dh, S] -> [B, H, T, S]
        scores += relative_position_scores(p, cfg, q, k, cached, first_query)
        scores /= math.sqrt(cfg.head_dim)  # HF scales after adding the relative scores
    else:  # scaling the T x Dh queries costs less than scaling the T x S scores; the same bits when Dh = 4^n
        scores = (q * (1.0 / math.sqrt(cfg.head_dim))) @ k.transpose(0, 1, 3, 2)  # [B, H, T, S]
    note(trace, at, scores=scores)  # scaled, before the mask
    if mask is not None:
        scores += mask  # [B, 1, T|1, S] broadcasts over heads (and queries)
    probs = softmax(scores, axis=-1, out=scores)  # [B, H, T, S]
    if head_mask is not None:
        probs *= head_mask[None, :, None, None]  # [H] -> [1, H, 1, 1]; scales what is returned, too
    return probs


def attend(p, cfg, q, k, v, mask, head_mask=None, cached=False, relative=False, keep_probs=True, trace=None, at=""):
    """Attention proper (HF's eager_attention_forward): q [B, H, T, Dh], k, v [B, H, S, Dh] -> (context
    [B, T, H*Dh], probs [B, H, T, S] or None). H may be a share of the heads (all share p's "distance")."""
    probs = attention_probs(p, cfg, q, k, mask, head_mask, cached, relative, trace=trace, at=at)  # [B, H, T, S]
    context = merge_heads(probs @ v)  # [B, H, T, S] @ [B, H, S, Dh] -> [B, H, T, Dh] -> [B, T, H*Dh]
    note(trace, at, probabilities=probs, context=context)
    return context, probs if keep_probs else None


def attention(p, cfg, x, mask, heads: int, head_mask=None, kv_input=None, past_kv=None, cached=False,
              keep_probs=True, kernels=None, trace=None, at=""):
    """Multi-head scaled dot-product attention (XLMRobertaSelfAttention.forward), before the output projection.

    x [B, T, D] gives the queries; keys and values come from `kv_input` (cross-attention) or from x, appended
    to `past_kv` (cached [B, H, P, Dh] pairs). Cross-attention reuses a cached (k, v) without recomputing.
    p holds the weights of `heads` heads (all of the layer's, or a share: their rows of W_q, W_k, W_v).
    `cached` says whether a cache is in use for this call (it changes relative positions, see above).
    Returns the context [B, T, heads*Dh], the probabilities [B, H, T, S] (None unless keep_probs), (k, v).
    """
    kernels = kernels or REFERENCE
    xp = array_module(x)
    q = split_heads(linear(x, p["query.weight"], p["query.bias"]), heads)  # [B, T, D] -> [B, H, T, Dh]
    if kv_input is not None and past_kv is not None:
        k, v = past_kv  # cross-attention keys/values of the encoder output, computed on the first step
    else:
        source = x if kv_input is None else kv_input
        k = split_heads(linear(source, p["key.weight"], p["key.bias"]), heads)  # [B, S, D] -> [B, H, S, Dh]
        v = split_heads(linear(source, p["value.weight"], p["value.bias"]), heads)  # [B, S, D] -> [B, H, S, Dh]
        if past_kv is not None:
            k = xp.concatenate([past_kv[0], k], axis=2)  # [B, H, P, Dh] + [B, H, T, Dh] -> [B, H, S, Dh]
            v = xp.concatenate([past_kv[1], v], axis=2)  # [B, H, P, Dh] + [B, H, T, Dh] -> [B, H, S, Dh]
    relative = kv_input is None and cfg.position_embedding_type != "absolute"  # cross-attention: never relative
    note(trace, at, query=q, key=k, value=v)
    if trace is None:
        context, probs = kernels.attention(p, cfg, q, k, v, mask, head_mask, cached, relative, keep_probs)
    else:  # only the reference records sub-steps (forward() runs REFERENCE when tracing)
        context, probs = attend(p, cfg, q, k, v, mask, head_mask, cached, relative, keep_probs, trace, at)
    return context, probs, (k, v)


# --- the layer --------------------------------------------------------------------------------------------
def add_norm(p, cfg, projected, residual):
    """LayerNorm(projected + residual), in place in `projected`: the end of each post-LN sub-layer."""
    projected += residual
    return layer_norm(projected, p["norm.weight"], p["norm.bias"], cfg.layer_norm_eps, out=projected)


def residual_norm(p, cfg, update, residual, trace=None, at=""):
    """LayerNorm(dense(update) + residual): XLMRobertaSelfOutput and XLMRobertaOutput."""
    projected = linear(update, p["out.weight"], p["out.bias"])  # [B, T, F|D] -> [B, T, D]
    note(trace, at, out_proj=projected)
    out = add_norm(p, cfg, projected, residual)  # [B, T, D]
    note(trace, at, norm=out)
    return out


def ffn_inner(p, cfg, h, kernels=None, trace=None, at=""):
    """act(dense(h)): XLMRobertaIntermediate, [B, T, D] -> [B, T, F] (F: p's rows of W_in, all or a share)."""
    act = (kernels or REFERENCE).activation(cfg.hidden_act)
    x = linear(h, p["in.weight"], p["in.bias"])  # [B, T, D] -> [B, T, F]
    note(trace, at, in_proj=x)
    x = act(x)  # [B, T, F]
    note(trace, at, activation=x)
    return x


def ffn(p, cfg, h, kernels=None, trace=None, at=""):
    """The feed-forward sub-layer with its residual and LayerNorm: LN(W_out act(W_in h + b_in) + b_out + h)."""
    return residual_norm(p, cfg, ffn_inner(p, cfg, h, kernels, trace, at), h, trace, at)  # [B, T, D]


def layer(p, cfg, x, mask, head_mask=None, cross_input=None, cross_mask=None, past=None, cached=False,
          keep_probs=True, kernels=None, trace=None, at=""):
    """One post-LN transformer layer: self-attention, [cross-attention,] feed-forward, each with residual + LN.

    `past` is this layer's cache: (k, v) or (k, v, cross_k, cross_v). Returns (output [B, T, D], probs,
    cross_probs, new cache entry); the probabilities are None unless keep_probs.
    """
    heads = cfg.num_attention_heads
    attn = sub(p, "attention")
    context, probs, self_kv = attention(attn, cfg, x, mask, heads, head_mask,
                                        past_kv=None if past is None else past[:2], cached=cached,
                                        keep_probs=keep_probs, kernels=kernels, trace=trace,
                                        at=at + "attention.")  # [B, T, D]
    h = residual_norm(attn, cfg, context, x, trace, at + "attention.")  # [B, T, D]
    cache, cross_probs = self_kv, None
    if cross_input is not None:
        cross = sub(p, "crossattention")
        cross_past = None if past is None or len(past) < 4 else past[2:]
        context, cross_probs, cross_kv = attention(cross, cfg, h, cross_mask, heads, head_mask, kv_input=cross_input,
                                                   past_kv=cross_past, keep_probs=keep_probs, kernels=kernels,
                                                   trace=trace, at=at + "crossattention.")
        h = residual_norm(cross, cfg, context, h, trace, at + "crossattention.")  # [B, T, D]
        cache = self_kv + cross_kv
    return ffn(sub(p, "ffn"), cfg, h, kernels, trace, at + "ffn."), probs, cross_probs, cache


def encoder(params, cfg, x, mask, head_mask=None, cross_input=None, cross_mask=None, past_key_values=None,
            use_cache=False, output_attentions=False, output_hidden_states=False, trace=None, layers=None,
            kernels=None):
    """Run the layers (all L, or the indices in `layers`) on the embeddings x [B, T, D] (XLMRobertaEncoder).

    No final LayerNorm (post-LN). Returns last_hidden_state, hidden_states (the input first, then each
    layer's output), attentions, cross_attentions and past_key_values, None where not requested.
    """
    layers = range(cfg.num_hidden_layers) if layers is None else layers
    hidden, attentions, cross_attentions, cache = [x], [], [], []
    for i in layers:
        past = None if past_key_values is None else past_key_values[i]
        x, probs, cross_probs, entry = layer(
            sub(params, f"layers.{i}"), cfg, x, mask, None if head_mask is None else head_mask[i],
            cross_input, cross_mask, past, cached=use_cache or past_key_values is not None,
            keep_probs=output_attentions, kernels=kernels, trace=trace, at=f"layers.{i}.")
        if output_hidden_states:  # keep only what is returned: every [B, T, D] kept is memory held to the end
            hidden.append(x)
        attentions.append(probs)  # None unless output_attentions
        cross_attentions.append(cross_probs)
        if use_cache:
            cache.append(entry)
        if trace is not None:
            trace[f"layers.{i}"] = x
    want_cross = output_attentions and cross_input is not None
    return {
        "last_hidden_state": x,
        "hidden_states": tuple(hidden) if output_hidden_states else None,
        "attentions": tuple(attentions) if output_attentions else None,
        "cross_attentions": tuple(cross_attentions) if want_cross else None,
        "past_key_values": tuple(cache) if use_cache else None,
    }


def pooler(params, last_hidden_state):
    """tanh(dense(first token)) (XLMRobertaPooler): always tanh, whatever hidden_act says."""
    xp = array_module(last_hidden_state)
    first = last_hidden_state[:, 0]  # [B, T, D] -> [B, D]
    return xp.tanh(linear(first, params["pooler.weight"], params["pooler.bias"]))  # [B, D]


# --- the whole body ---------------------------------------------------------------------------------------
def forward(params, cfg, inputs, past_key_values=None, past_length=0, use_cache=False, output_attentions=False,
            output_hidden_states=False, trace=None, layers=None, kernels=None):
    """XLMRobertaModel.forward: `inputs` is the dict of checked arrays from xlmr_np.inputs.prepare.

    Returns the encoder's dict plus "pooler_output" (None when the parameters have no pooler). `layers`
    runs only those layer indices (None: all); `trace`, a dict, receives every named step, in forward order.
    """
    kernels = REFERENCE if trace is not None else kernels or REFERENCE  # fast paths record no sub-steps
    dtype = params["embeddings.word"].dtype  # the compute dtype is the parameters' dtype, as HF's self.dtype
    x = embed(params, cfg, inputs, past_length, kernels, trace)  # [B, T, D]
    note(trace, "", embeddings=x)
    keep = inputs["attention_mask"]
    if not cfg.is_decoder and keep.ndim == 2 and bool(array_module(keep).all(keep == 1)):
        mask = None  # nothing is masked: adding the all-zero mask to every score would change no bit
    else:
        mask = self_attention_mask(keep, x.shape[1], cfg.is_decoder, dtype)  # [B, 1, T|1, S]
    cross_input = inputs["encoder_hidden_states"]
    cross_mask = None if cross_input is None else cross_attention_mask(inputs["encoder_attention_mask"], dtype)
    out = kernels.encoder(params, cfg, x, mask, inputs["head_mask"], cross_input, cross_mask, past_key_values,
                          use_cache, output_attentions, output_hidden_states, trace, layers, kernels)
    out["pooler_output"] = pooler(params, out["last_hidden_state"]) if "pooler.weight" in params else None
    return out


# The reference kernel set: this file's and ops.py's own functions. xlmr_np.runtime registers faster stand-ins.
REFERENCE = Kernels(name="reference", gather_rows=gather_rows, activation=activation, attention=attend,
                    lm_decoder=linear, encoder=encoder)
