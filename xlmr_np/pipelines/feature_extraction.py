"""feature-extraction (token vectors) and sentence embeddings (pooled vectors).

"feature-extraction" follows transformers 4.57.6 `pipelines/feature_extraction.py`: each input gives its
last_hidden_state as nested lists of shape [1, T, D] (the batch axis of one kept), or an array with
`return_tensors=True`. With batching HF returns every input padded to its batch's length; here each input
keeps its own length, as with HF's default batch_size=1.

"sentence-embeddings" follows sentence-transformers 6.2 (`modules/pooling.py`, `modules/normalize.py`):
masked pooling of the token vectors, read from the model folder's
`modules.json` -> `1_Pooling/config.json` when present (the new {"pooling_mode": ...} or the legacy
`pooling_mode_*_tokens` booleans; mean when none is set; several modes are concatenated in the order cls,
max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken), a Normalize module -> L2 normalisation
(x / max(|x|, 1e-12)), and `sentence_bert_config.json`'s max_seq_length as the truncation length.
Keyword arguments `pooling=` and `normalize=` override the folder. Returns an array [N, D'] for a list and
[D'] for one string (SentenceTransformer.encode's shapes).

Shape legend: B batch, T tokens, D hidden, N inputs.
"""
from __future__ import annotations

import json

import numpy as np

from .base import Pipeline, PipelineError, host

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
LEGACY_POOLING_KEYS = {  # sentence-transformers' old config booleans, in its concatenation order
    "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
ALIASES = {"mean_sqrt_len": "mean_sqrt_len_tokens", "last": "lasttoken", "weighted_mean": "weightedmean"}


class FeatureExtractionPipeline(Pipeline):
    task = "feature-extraction"
    head = None
    OPTIONS = {"return_tensors": False}

    def __call__(self, inputs, **kwargs):
        """Token vectors of a text (nested lists [1, T, D]) or of each text of a list."""
        opts = self.options(kwargs, self.OPTIONS)
        sequences, single = self.encode_texts(inputs)

        def compute(ids, mask, rows):
            hidden = host(self.hidden_states(ids, mask))  # [B, T, D]
            return [hidden[r, :len(sequences[row])][None] for r, row in enumerate(rows)]  # [1, T_i, D]

        results = self.run_batches(sequences, compute)
        if not opts["return_tensors"]:
            results = [r.tolist() for r in results]
        return results[0] if single else results


class SentenceEmbeddingPipeline(Pipeline):
    task = "sentence-embeddings"
    head = None
    OPTIONS = {"pooling": None, "normalize": None}

    def __init__(self, model, tokenizer=None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        self.folder_pooling, self.folder_normalize, self.max_seq_length = read_sentence_transformers(self.directory)

    @property
    def max_tokens(self):
        limit = super().max_tokens
        return min(limit, self.max_seq_length) if self.max_seq_length else limit

    def __call__(self, inputs, **kwargs):
        """Pooled (and optionally normalised) embeddings: [N, D'] for a list, [D'] for one string."""
        opts = self.options(kwargs, self.OPTIONS)
        modes = pooling_modes(opts["pooling"]) if opts["pooling"] is not None else self.folder_pooling
        normalize = self.folder_normalize if opts["normalize"] is None else bool(opts["normalize"])
        sequences, single = self.encode_texts(inputs)

        def compute(ids, mask, rows):
            vectors = pool(host(self.hidden_states(ids, mask)), mask, modes)  # [B, D']
            if normalize:
                vectors = l2_normalize(vectors)
            return list(vectors)

        result = np.stack(self.run_batches(sequences, compute))  # [N, D']
        return result[0] if single else result


def pooling_modes(value):
    """A mode name, a list of names, or "a,b" -> a tuple of sentence-transformers mode names."""
    names = value.split(",") if isinstance(value, str) else list(value)
    modes = []
    for name in names:
        name = ALIASES.get(str(name).strip(), str(name).strip())
        if name not in POOLING_MODES:
            raise PipelineError(f"unknown pooling mode {name!r}; use one of {', '.join(POOLING_MODES)}")
        modes.append(name)
    if not modes:
        raise PipelineError("pooling needs at least one mode")
    return tuple(modes)


def read_sentence_transformers(directory):
    """(pooling modes, normalize, max_seq_length) from a sentence-transformers folder; defaults otherwise."""
    modes, normalize, max_len = ("mean",), False, None
    modules_file = directory / "modules.json"
    if modules_file.is_file():
        try:
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise PipelineError(f"{modules_file} is not valid JSON: {err}") from None
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise PipelineError(f"{modules_file} must be a JSON list of module objects "
                                f"(sentence-transformers' layout), got {type(modules).__name__}")
        for module in modules:
            kind = str(module.get("type", ""))
            if kind.endswith(".Pooling"):
                config_file = directory / module.get("path", "") / "config.json"
                if config_file.is_file():
                    modes = modes_from_config(json.loads(config_file.read_text(encoding="utf-8")))
            elif kind.endswith(".Normalize"):
                normalize = True
            elif not kind.endswith(".Transformer"):
                raise PipelineError(f"{modules_file} has a {kind.rsplit('.', 1)[-1]} module, which the "
                                    f"sentence-embeddings pipeline does not apply (it pools and normalises only); "
                                    f"use xlmr_np.SentenceTransformer(folder), which runs Dense modules too")
    elif (directory / "1_Pooling" / "config.json").is_file():
        modes = modes_from_config(json.loads((directory / "1_Pooling" / "config.json").read_text(encoding="utf-8")))
    st_config = directory / "sentence_bert_config.json"
    if st_config.is_file():
        max_len = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
    return modes, normalize, max_len


def modes_from_config(config: dict):
    """The pooling modes of a 1_Pooling/config.json, new or legacy form (mean when none is set)."""
    if "pooling_mode" in config:
        return pooling_modes(config["pooling_mode"])
    active = tuple(mode for key, mode in LEGACY_POOLING_KEYS.items() if config.get(key, False))
    return active or ("mean",)


def pool(tokens, mask, modes):
    """Masked pooling of token vectors [B, T, D] with mask [B, T]; modes concatenated -> [B, D * len(modes)]."""
    mask = mask.astype(tokens.dtype)[..., None]  # [B, T] -> [B, T, 1]
    vectors = []
    for mode in modes:
        if mode == "cls":  # the first attended position (position 0 with right padding)
            first = np.argmax(mask[..., 0], axis=1)  # [B]
            vectors.append(tokens[np.arange(len(tokens)), first])  # [B, D]
        elif mode == "max":
            vectors.append(np.where(mask > 0, tokens, -np.inf).max(axis=1))  # [B, T, D] -> [B, D]
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            total = (tokens * mask).sum(axis=1)  # [B, D]
            count = np.maximum(mask.sum(axis=1), 1e-9)  # [B, 1]
            vectors.append(total / (count if mode == "mean" else np.sqrt(count)))
        elif mode == "weightedmean":  # weights 1..T over the positions (right padding: no shift)
            weights = mask * np.arange(1, tokens.shape[1] + 1, dtype=tokens.dtype)[None, :, None]  # [B, T, 1]
            vectors.append((tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9))
        elif mode == "lasttoken":
            last = mask[..., 0].shape[1] - 1 - np.argmax(mask[..., 0][:, ::-1], axis=1)  # [B]
            vectors.append((tokens * mask)[np.arange(len(tokens)), last])  # [B, D]
    return np.concatenate(vectors, axis=-1)


def l2_normalize(x):
    """x / max(||x||_2, 1e-12) along the last axis (torch.nn.functional.normalize)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
