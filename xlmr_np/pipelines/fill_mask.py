"""fill-mask: the most likely tokens for each `<mask>` in a text.

Reference: transformers 4.57.6 `pipelines/fill_mask.py` (`FillMaskPipeline`):
- softmax over the whole vocabulary at each mask (special tokens included, nothing renormalised);
- `targets` restrict the candidates to given tokens: looked up in the vocabulary, else the first piece of
  their tokenization (with a warning); duplicates dropped; probabilities are NOT renormalised over them;
- each candidate is {"score", "token", "token_str", "sequence"}: the input with the mask replaced, pads
  removed, decoded without special tokens when there is one mask and with them when there are several;
- one mask gives a list of candidates, several masks a list per mask (independent, not joint).

What is computed differently: HF evaluates the LM head (a V x D matrix, V = 250,002 for XLM-R) at every
position, which on a 128-token input costs more than the encoder. Here the encoder's last layer runs its
queries and feed-forward only at the masked positions (keys and values still come from every position), and
the LM head runs only there too. The result is the same up to rounding.

Shape legend: B batch, T tokens, M masks per row, N masks in the batch, D hidden, V vocabulary, K top_k.
"""
from __future__ import annotations

import logging

import numpy as np

from ..backend import array_module
from ..core import heads
from ..core import model as model_module
from ..core.ops import softmax  # exp(x - max) / sum, as HF's pipelines
from .base import Pipeline, PipelineError, as_list, check_text, host

logger = logging.getLogger("xlmr_np.pipelines")


class FillMaskPipeline(Pipeline):
    task = "fill-mask"
    head = "masked_lm"
    OPTIONS = {"top_k": 5, "targets": None}

    def __init__(self, model, tokenizer=None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        if self.config.vocab_size > len(self.tokenizer):
            self.warn_once("vocab", f"the model predicts {self.config.vocab_size} tokens but the tokenizer has only "
                                    f"{len(self.tokenizer)}: predictions past the tokenizer cannot be decoded. "
                                    f"Is this the model's own tokenizer?")

    def __call__(self, inputs, **kwargs):
        """Fill the `<mask>` tokens of a text or a list of texts (options: top_k=5, targets=None)."""
        opts = self.options(kwargs, self.OPTIONS)
        top_k = opts["top_k"]
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise PipelineError(f"top_k must be a positive integer, got {top_k!r}")
        mask_id = self.tokenizer.mask_token_id
        if mask_id is None:
            raise PipelineError("the tokenizer defines no mask token, so fill-mask cannot run")
        target_ids = None if opts["targets"] is None else self.target_ids(opts["targets"])
        texts, single = as_list(inputs, "text")
        sequences = []
        for i, text in enumerate(texts):
            check_text(text, f"input {i}")
            ids = self.encode(text)
            if mask_id not in ids:
                self.no_mask(text, len(ids))
            sequences.append(ids)

        def compute(ids, mask, rows):
            positions = [np.flatnonzero(ids[r] == mask_id) for r in range(len(rows))]
            probs = host(self.mask_probabilities(ids, mask, positions))  # [N, V]
            out, start = [], 0
            for r, pos in enumerate(positions):
                out.append(self.candidates(sequences[rows[r]], pos, probs[start:start + len(pos)], top_k,
                                           target_ids))
                start += len(pos)
            return out

        results = self.run_batches(sequences, compute)
        return results[0] if single or len(results) == 1 else results

    def no_mask(self, text, kept):
        """Raise the reason why the `kept` token ids of `text` hold no mask: none in the text, or truncated off."""
        mask = self.tokenizer.mask_token
        full = list(self.tokenizer(text, verbose=False)["input_ids"])
        if kept < len(full) and self.tokenizer.mask_token_id in full:
            position = full.index(self.tokenizer.mask_token_id) + 1
            raise PipelineError(f"the {mask} of the input {text[:60]!r} is token {position} of {len(full)}, beyond "
                                f"the model's limit of {self.max_tokens} tokens, so it was cut off: shorten the "
                                f"text before the {mask}, or split the text")
        raise PipelineError(f"No mask_token ({mask}) found on the input {text[:60]!r}: "
                            f"put {mask} where a token should be predicted")

    # --- the model, at the masked positions only ---------------------------------------------------------
    def mask_probabilities(self, ids, mask, positions):
        """Softmax over the vocabulary at each masked position, rows in order: [N, V] (NumPy)."""
        cfg, params = self.config, self.params
        xp = array_module(params["embeddings.word"])
        rows = xp.asarray(np.concatenate([np.full(len(p), r) for r, p in enumerate(positions)]))  # [N]
        if cfg.position_embedding_type != "absolute" or cfg.is_decoder or cfg.num_hidden_layers < 1:
            # relative positions need each query's own index, decoders a causal mask: the plain forward pass
            cols = xp.asarray(np.concatenate(positions))  # [N]
            hidden = self.hidden_states(ids, mask)[rows, cols]  # [B, T, D] -> [N, D]
        else:
            last = cfg.num_hidden_layers - 1
            checked = self.checked_inputs(ids, mask)
            x = model_module.forward(params, cfg, checked, layers=range(last),
                                     kernels=self.kernels)["last_hidden_state"]  # [B, T, D] after L-1 layers
            most = max(len(p) for p in positions)
            query_pos = np.zeros((len(positions), most), dtype=np.int64)  # [B, M]; padding slots read token 0
            for r, p in enumerate(positions):
                query_pos[r, :len(p)] = p
            out = last_layer_at(model_module.sub(params, f"layers.{last}"), cfg, x, checked["attention_mask"],
                                xp.asarray(query_pos), self.kernels)  # [B, M, D]
            slot = xp.asarray(np.concatenate([np.arange(len(p)) for p in positions]))  # [N]
            hidden = out[rows, slot]  # [B, M, D] -> [N, D]
        logits = host(heads.lm_head(params, cfg, hidden[None], self.kernels)[0])  # [1, N, D] -> [N, V]
        return softmax(logits)  # [N, V], in the compute dtype (HF: float32)

    # --- post-processing ---------------------------------------------------------------------------------
    def target_ids(self, targets):
        """Vocabulary ids of `targets` (a string or a list), as HF's get_target_ids finds them."""
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise PipelineError(f"targets must be a string or a list of strings, got {targets!r}")
        vocab = self.tokenizer.get_vocab()
        found = []
        for target in targets:
            index = vocab.get(target)
            if index is None:
                pieces = self.tokenizer(target, add_special_tokens=False, max_length=1, truncation=True,
                                        verbose=False)["input_ids"]
                if not pieces:
                    logger.warning("The specified target token `%s` does not exist in the model vocabulary. "
                                   "We cannot replace it with anything meaningful, ignoring it", target)
                    continue
                index = pieces[0]
                logger.warning("The specified target token `%s` does not exist in the model vocabulary. "
                               "Replacing with `%s`.", target, self.tokenizer.convert_ids_to_tokens(index))
            found.append(index)
        unique = list(set(found))  # HF deduplicates with a set; the order only matters for exact ties
        if not unique:
            raise PipelineError("At least one target must be provided when passed: none of the targets "
                                f"{list(targets)!r} maps to a vocabulary token")
        return np.array(unique, dtype=np.int64)

    def candidates(self, ids, positions, probs, top_k, target_ids):
        """The top_k replacements at each mask of one input: a list, or a list per mask."""
        if target_ids is not None:
            probs = probs[:, target_ids]  # [M, V] -> [M, len(targets)], not renormalised
        k = min(top_k, probs.shape[-1])
        single = len(positions) == 1
        tokens = np.array(ids)
        result = []
        for m, position in enumerate(positions):
            best = top_indices(probs[m], k)  # [K]
            row = []
            for index in best:
                token = int(target_ids[index]) if target_ids is not None else int(index)
                if token >= len(self.tokenizer):
                    raise PipelineError(f"the model predicted token id {token}, which the tokenizer (ids 0.."
                                        f"{len(self.tokenizer) - 1}) cannot decode: use the model's own tokenizer")
                filled = tokens.copy()
                filled[position] = token
                filled = filled[filled != self.tokenizer.pad_token_id]  # HF drops pads (of batching and of text)
                row.append({"score": float(probs[m, index]), "token": token,
                            "token_str": self.tokenizer.decode([token]),
                            "sequence": self.tokenizer.decode(filled.tolist(), skip_special_tokens=single)})
            result.append(row)
        return result[0] if single else result


def top_indices(values, k):
    """Indices of the k largest values, largest first (torch.topk)."""
    if k >= values.shape[0]:
        return np.argsort(-values, kind="stable")
    part = np.argpartition(-values, k - 1)[:k]
    return part[np.argsort(-values[part], kind="stable")]


def last_layer_at(p, cfg, x, mask, query_pos, kernels=None):
    """The last encoder layer, evaluated only at `query_pos` [B, M] of x [B, T, D]: returns [B, M, D].

    core.model.layer's steps, except that the queries (and so the residuals and the feed-forward) are taken
    at the wanted positions only; keys and values still see every token (passed as `kv_input`, which
    attention treats like cross-attention: no relative positions, so absolute-position models only).
    """
    xp = array_module(x)
    attn = model_module.sub(p, "attention")
    batch = xp.arange(x.shape[0])[:, None]  # [B, 1]
    query = x[batch, query_pos]  # [B, T, D] -> [B, M, D]
    additive = model_module.self_attention_mask(mask, x.shape[1], False, x.dtype)  # [B, 1, 1, T]
    context, _, _ = model_module.attention(attn, cfg, query, additive, cfg.num_attention_heads, kv_input=x,
                                           kernels=kernels)  # [B, M, D]
    h = model_module.residual_norm(attn, cfg, context, query)  # [B, M, D]
    return model_module.ffn(model_module.sub(p, "ffn"), cfg, h, kernels)  # [B, M, D]
