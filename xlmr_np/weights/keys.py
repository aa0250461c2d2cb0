"""From a checkpoint's Hugging Face state dict to this project's parameter dict, and back.

ONE table (`BODY`, `HEADS`) maps Hugging Face keys to our short names. Around it, the loading rules of
transformers 4.57.6: `modeling_utils.py` (`PreTrainedModel._load_pretrained_model`,
`_fix_state_dict_key_on_load`, `tie_weights`) and `modeling_xlm_roberta.py` (`base_model_prefix = "roberta"`,
`_tied_weights_keys`, the embeddings' non-persistent buffers); see docs/checkpoint_formats.md ("Key names"):
- the backbone may carry the "roberta." prefix or not: a head class loads a bare base checkpoint and the
  base class loads a head checkpoint's backbone;
- legacy `LayerNorm.gamma` / `.beta` are `weight` / `bias`;
- the non-persistent buffers `position_ids` / `token_type_ids` are ignored;
- `lm_head.decoder.weight` is the word-embedding matrix when tie_word_embeddings is true (HF omits it when
  saving), and `lm_head.decoder.bias` is `lm_head.bias`;
- every shape is checked against the config; missing weights are an error (HF would fill them with random
  numbers), unexpected ones a warning, as in HF.
Arrays stay memory-mapped where the stored dtype is the compute dtype (zero-copy); F16/BF16 are upcast.
The config is duck-typed: anything with XLMRobertaConfig's size fields (hidden_size, num_hidden_layers, ...).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import WeightsError
from .commit import write_bytes, write_model_files
from .files import read_state_dict
from .safetensors_file import save_file

PREFIX = "roberta."

# Hugging Face key (without "roberta.") -> our name. "{i}" stands for the layer index.
BODY = {
    "embeddings.word_embeddings.weight": "embeddings.word",
    "embeddings.position_embeddings.weight": "embeddings.position",
    "embeddings.token_type_embeddings.weight": "embeddings.token_type",
    "embeddings.LayerNorm.weight": "embeddings.norm.weight",
    "embeddings.LayerNorm.bias": "embeddings.norm.bias",
}
LAYER = {
    "self.query.weight": "query.weight", "self.query.bias": "query.bias",
    "self.key.weight": "key.weight", "self.key.bias": "key.bias",
    "self.value.weight": "value.weight", "self.value.bias": "value.bias",
    "output.dense.weight": "out.weight", "output.dense.bias": "out.bias",
    "output.LayerNorm.weight": "norm.weight", "output.LayerNorm.bias": "norm.bias",
}
FFN = {
    "intermediate.dense.weight": "ffn.in.weight", "intermediate.dense.bias": "ffn.in.bias",
    "output.dense.weight": "ffn.out.weight", "output.dense.bias": "ffn.out.bias",
    "output.LayerNorm.weight": "ffn.norm.weight", "output.LayerNorm.bias": "ffn.norm.bias",
}
POOLER = {"pooler.dense.weight": "pooler.weight", "pooler.dense.bias": "pooler.bias"}
HEADS = {
    "masked_lm": {
        "lm_head.dense.weight": "lm.dense.weight", "lm_head.dense.bias": "lm.dense.bias",
        "lm_head.layer_norm.weight": "lm.norm.weight", "lm_head.layer_norm.bias": "lm.norm.bias",
        "lm_head.decoder.weight": "lm.decoder.weight", "lm_head.bias": "lm.bias",
    },
    "sequence_classification": {
        "classifier.dense.weight": "classifier.dense.weight", "classifier.dense.bias": "classifier.dense.bias",
        "classifier.out_proj.weight": "classifier.out.weight", "classifier.out_proj.bias": "classifier.out.bias",
    },
    "multiple_choice": {"classifier.weight": "choice.weight", "classifier.bias": "choice.bias"},
    "token_classification": {"classifier.weight": "token_classifier.weight", "classifier.bias": "token_classifier.bias"},
    "question_answering": {"qa_outputs.weight": "qa.weight", "qa_outputs.bias": "qa.bias"},
}
IGNORED_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")


def key_table(cfg, head: str | None, pooler: bool) -> dict:
    """HF key (no prefix) -> (our name, expected shape) for this config and head."""
    d, f = cfg.hidden_size, cfg.intermediate_size
    shapes = {
        "embeddings.word": (cfg.vocab_size, d), "embeddings.position": (cfg.max_position_embeddings, d),
        "embeddings.token_type": (cfg.type_vocab_size, d), "pooler.weight": (d, d),
        "query.weight": (d, d), "key.weight": (d, d), "value.weight": (d, d), "out.weight": (d, d),
        "ffn.in.weight": (f, d), "ffn.in.bias": (f,), "ffn.out.weight": (d, f),
        "distance": (2 * cfg.max_position_embeddings - 1, cfg.head_dim),
        "lm.dense.weight": (d, d), "lm.decoder.weight": (cfg.vocab_size, d), "lm.bias": (cfg.vocab_size,),
        "classifier.dense.weight": (d, d), "classifier.out.weight": (cfg.num_labels, d),
        "classifier.out.bias": (cfg.num_labels,), "choice.weight": (1, d), "choice.bias": (1,),
        "token_classifier.weight": (cfg.num_labels, d), "token_classifier.bias": (cfg.num_labels,),
        "qa.weight": (cfg.num_labels, d), "qa.bias": (cfg.num_labels,),
    }

    def shape_of(name):
        short = name.split(".", 2)[-1] if name.startswith("layers.") else name
        short = short.split(".", 1)[1] if short.startswith(("attention.", "crossattention.")) else short
        return shapes.get(short, shapes.get(name, (d,)))  # every other tensor is a [D] bias or LayerNorm vector

    table = dict(BODY)
    for i in range(cfg.num_hidden_layers):
        blocks = ["attention"] + (["crossattention"] if cfg.add_cross_attention else [])
        for block in blocks:
            for hf, ours in LAYER.items():
                table[f"encoder.layer.{i}.{block}.{hf}"] = f"layers.{i}.{block}.{ours}"
        if cfg.position_embedding_type != "absolute":
            table[f"encoder.layer.{i}.attention.self.distance_embedding.weight"] = f"layers.{i}.attention.distance"
        for hf, ours in FFN.items():
            table[f"encoder.layer.{i}.{hf}"] = f"layers.{i}.{ours}"
    if pooler:
        table.update(POOLER)
    if head is not None:
        table.update(HEADS[head])
    return {hf: (ours, shape_of(ours)) for hf, ours in table.items()}


def normalise_key(key: str) -> str:
    """Strip the backbone prefix and rename legacy TF-era LayerNorm names (gamma/beta)."""
    if key.startswith(PREFIX):
        key = key[len(PREFIX):]
    if key.endswith(".gamma"):
        key = key[: -len("gamma")] + "weight"
    elif key.endswith(".beta"):
        key = key[: -len("beta")] + "bias"
    return key


def to_params(state_dict: dict, cfg, head: str | None, pooler: bool, dtype, source: str = "checkpoint"):
    """Map a HF state dict to our params, check every shape, tie the LM decoder, cast to `dtype`.

    Returns (params, missing_optional) where missing_optional lists optional parts (the pooler of the base
    model) that were absent and dropped.
    """
    dtype = np.dtype(dtype)
    tensors = {}
    for key, value in state_dict.items():
        tensors[normalise_key(key)] = value
    table = key_table(cfg, head, pooler)
    tied = head == "masked_lm" and cfg.tie_word_embeddings
    optional = set(POOLER) if head is None else set()  # XLMRobertaModel runs without a pooler if it has none
    optional |= {"lm_head.decoder.weight"} if tied else set()
    if head == "masked_lm" and "lm_head.bias" not in tensors and "lm_head.decoder.bias" in tensors:
        tensors["lm_head.bias"] = tensors["lm_head.decoder.bias"]  # the same parameter in 4.57.6
    missing = sorted(k for k in table if k not in tensors and k not in optional)
    if missing:
        shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
        raise WeightsError(f"{source} lacks {len(missing)} weight(s) this model needs: {shown}. Is it a checkpoint "
                           f"of this architecture, and does config.json match it (layers, heads, head type)?")
    unexpected = sorted(k for k in tensors if k not in table and not k.endswith(IGNORED_SUFFIXES)
                        and k != "lm_head.decoder.bias")
    if unexpected:
        shown = ", ".join(unexpected[:12]) + (f" and {len(unexpected) - 12} more" if len(unexpected) > 12 else "")
        warnings.warn(f"{source} has {len(unexpected)} weight(s) this model does not use (ignored, as HF does): {shown}",
                      stacklevel=3)
    params, dropped = {}, []
    for hf_key, (name, shape) in table.items():
        if hf_key not in tensors:
            dropped.append(hf_key)
            continue
        value = tensors[hf_key]
        if tuple(value.shape) != tuple(shape):
            raise WeightsError(f"{source}: {hf_key} has shape {list(value.shape)} but the config implies {list(shape)}; "
                               f"config.json does not describe these weights")
        if not np.issubdtype(value.dtype, np.floating):
            raise WeightsError(f"{source}: {hf_key} holds {value.dtype}, expected floating-point weights")
        params[name] = value.astype(dtype, copy=False)  # zero-copy when the file already holds `dtype`
    if tied:
        params["lm.decoder.weight"] = params["embeddings.word"]
    return params, [k for k in dropped if k in POOLER]


def to_state_dict(params: dict, cfg, head: str | None) -> dict:
    """Our params -> HF keys as HF's save_pretrained writes them ("roberta." prefix on head classes; tied
    lm_head.decoder.* omitted)."""
    reverse = {ours: hf for hf, (ours, _) in key_table(cfg, head, "pooler.weight" in params).items()}
    prefix = PREFIX if head is not None else ""
    state = {}
    for name, value in params.items():
        hf = reverse[name]
        if hf == "lm_head.decoder.weight" and cfg.tie_word_embeddings:
            continue
        is_head_key = head is not None and hf in HEADS[head]
        state[(hf if is_head_key else prefix + hf)] = np.ascontiguousarray(value)
    return state


def load_params(directory, cfg, head: str | None, pooler: bool, dtype):
    """Read the weights in `directory` (any format files.read_state_dict knows) and map them."""
    return to_params(read_state_dict(directory), cfg, head, pooler, dtype, source=os.fspath(directory))


def save_params(directory, params, cfg, head: str | None, metadata=None):
    """Write `params` to `directory`/model.safetensors under the keys HF's save_pretrained uses."""
    os.makedirs(directory, exist_ok=True)
    save_file(to_state_dict(params, cfg, head), os.path.join(directory, "model.safetensors"),
              metadata={"format": "pt", **(metadata or {})})


def save_model(directory, params, cfg, head: str | None, config_json: str, overwrite=False, metadata=None):
    """config.json + model.safetensors, as HF's save_pretrained writes them, all or nothing.

    Both are written under temporary names and renamed into place once both are complete
    (commit.write_model_files); a directory already holding a model (config.json or any weight
    file) is refused unless `overwrite`, and then an old sharded layout is removed."""
    state = to_state_dict(params, cfg, head)
    meta = {"format": "pt", **(metadata or {})}
    return write_model_files(directory, {
        "model.safetensors": lambda path: save_file(state, path, metadata=meta),
        "config.json": lambda path: write_bytes(path, config_json.encode("utf-8")),
    }, overwrite=overwrite)
