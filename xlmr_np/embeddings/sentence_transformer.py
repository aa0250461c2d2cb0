"""sentence-transformers bi-encoders (multilingual-e5, paraphrase-multilingual-*, LaBSE-style) on NumPy.

Reference: sentence-transformers 5.7.0 (the last release for transformers 4.x): `sentence_transformer/model.py`
(SentenceTransformer.encode), `base/model.py` (prompts), `base/modules/transformer.py` (tokenisation, prompt
length, max_seq_length), `sentence_transformer/modules/pooling.py`, `base/modules/dense.py`,
`sentence_transformer/modules/normalize.py`. A folder is read as sentence-transformers reads it:
- modules.json lists the modules in order; each type is matched by its class name:
    Transformer  the XLM-R body, in the module's path ("" or the old "0_Transformer"); its
                 sentence_bert_config.json gives max_seq_length (else the tokenizer's model_max_length
                 capped by max_position_embeddings, as sentence-transformers caps it) and do_lower_case
    Pooling      1_Pooling/config.json: pooling_mode (one mode or a list, new form) or the legacy
                 pooling_mode_*_tokens booleans, and include_prompt (False: the prompt's tokens are left out of
                 the pooling; its length is its token count without the closing </s>, <s> included)
    Dense        2_Dense/config.json (in_features, out_features, bias, activation_function: torch's Tanh,
                 Identity, ReLU, Sigmoid, GELU) and its weights linear.weight / linear.bias in model.safetensors
                 or pytorch_model.bin (read without torch)
    Normalize    L2 normalisation, x / max(|x|, 1e-12)
  Without modules.json the folder is a Transformer followed by mean pooling, as sentence-transformers builds it.
- config_sentence_transformers.json: prompts ({"query": "query: ", ...}) and default_prompt_name; a prompt is
  prepended to each text before tokenisation. encode(prompt=...) wins over prompt_name=, which wins over the
  default prompt.
encode's order of operations: modules in order, then truncate_dim, then normalize_embeddings.
Tokens past the position table are never used: where sentence-transformers would pass 513 or 514 tokens to
an XLM-R model (and fail inside torch), the input is truncated to 512.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.ops import gelu, relu, sigmoid
from ..pipelines.feature_extraction import modes_from_config, pool
from ..weights import load_file, load_torch_file
from .base import EmbeddingError, EmbeddingModel, as_text_list, l2_normalize, linear

# torch activation class paths (Dense.activation_function, CrossEncoder activation_fn) -> NumPy functions
ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": np.tanh,
    "torch.nn.modules.linear.Identity": lambda x: x,
    "torch.nn.modules.activation.ReLU": relu,
    "torch.nn.modules.activation.Sigmoid": sigmoid,
    "torch.nn.modules.activation.GELU": gelu,
}
SHORT_ACTIVATIONS = {path.rsplit(".", 1)[1].lower(): path for path in ACTIVATIONS}  # "tanh" -> its path


def activation_from_path(path: str, where: str):
    """The NumPy function for a torch activation class path (or its short name)."""
    key = SHORT_ACTIVATIONS.get(str(path).lower(), path)
    if key not in ACTIVATIONS:
        raise EmbeddingError(f"{where}: activation {path!r} is not supported; supported: "
                             f"{', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[key]


def read_json(path: Path, default=None):
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise EmbeddingError(f"{path} is not valid JSON: {err}") from None


class Dense:
    """sentence-transformers' Dense module: activation(x W^T + b) on the sentence embedding."""

    def __init__(self, folder: Path, dtype):
        config = read_json(folder / "config.json")
        if config is None:
            raise EmbeddingError(f"{folder} has no config.json for its Dense module")
        if config.get("module_input_name", "sentence_embedding") != "sentence_embedding" or \
                config.get("module_output_name") not in (None, "sentence_embedding"):
            raise EmbeddingError(f"{folder}: a Dense module on {config.get('module_input_name')!r} is not "
                                 f"supported (only on the sentence embedding)")
        self.activation = activation_from_path(
            config.get("activation_function", "torch.nn.modules.activation.Tanh"), str(folder))
        if (folder / "model.safetensors").is_file():
            state = load_file(folder / "model.safetensors")
        elif (folder / "pytorch_model.bin").is_file():
            state = load_torch_file(folder / "pytorch_model.bin")
        else:
            raise EmbeddingError(f"{folder} has neither model.safetensors nor pytorch_model.bin for its Dense module")
        if "linear.weight" not in state:
            raise EmbeddingError(f"{folder}: the Dense weights lack linear.weight (found {sorted(state)})")
        self.weight = np.asarray(state["linear.weight"], dtype=dtype)
        self.bias = np.asarray(state["linear.bias"], dtype=dtype) if config.get("bias", True) else None
        expected = (config.get("out_features", self.weight.shape[0]), config.get("in_features", self.weight.shape[1]))
        if self.weight.shape != tuple(expected):
            raise EmbeddingError(f"{folder}: linear.weight is {self.weight.shape}, config says {tuple(expected)}")

    def __call__(self, x):
        return self.activation(linear(x, self.weight, self.bias))


def read_modules(directory: Path):
    """[(kind, folder)] from modules.json, or the Transformer + mean Pooling that a plain HF folder gets."""
    modules = read_json(directory / "modules.json")
    if modules is None:
        return [("Transformer", directory), ("Pooling", None)]
    out = []
    for module in sorted(modules, key=lambda m: m.get("idx", 0)):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in ("Transformer", "Pooling", "Dense", "Normalize"):
            raise EmbeddingError(f"{directory / 'modules.json'}: module type {module.get('type')!r} is not "
                                 f"supported (Transformer, Pooling, Dense and Normalize are)")
        out.append((kind, directory / module.get("path", "")))
    if not out or out[0][0] != "Transformer":
        raise EmbeddingError(f"{directory / 'modules.json'}: the first module must be a Transformer")
    return out


class SentenceTransformer(EmbeddingModel):
    """sentence-transformers' SentenceTransformer for XLM-R folders: `encode`, `similarity`, prompts."""

    def __init__(self, model_name_or_path, prompts=None, default_prompt_name=None, truncate_dim=None, **kwargs):
        from ..pipelines.base import resolve_directory

        root = resolve_directory(model_name_or_path)
        self.root = root
        self.modules = read_modules(root)
        transformer_dir = self.modules[0][1]
        super().__init__(transformer_dir, **kwargs)
        st_config = read_json(transformer_dir / "sentence_bert_config.json", {})
        self.do_lower_case = bool(st_config.get("do_lower_case", False))
        if st_config.get("max_seq_length") is not None:
            self.max_seq_length = int(st_config["max_seq_length"])
        else:  # sentence-transformers: the tokenizer's limit, capped by max_position_embeddings
            self.max_seq_length = min(int(self.tokenizer.model_max_length), self.config.max_position_embeddings)
        self.pipeline_modules = []  # after the Transformer: ("pool", modes, include_prompt) | ("dense", Dense) | ...
        for kind, folder in self.modules[1:]:
            if kind == "Pooling":
                config = read_json(folder / "config.json", {}) if folder is not None else {}
                self.pipeline_modules.append(("pool", modes_from_config(config), config.get("include_prompt", True)))
            elif kind == "Dense":
                self.pipeline_modules.append(("dense", Dense(folder, self.dtype)))
            elif kind == "Normalize":
                self.pipeline_modules.append(("normalize",))
            else:
                raise EmbeddingError(f"{root}: only one Transformer module is supported, first")
        if not any(m[0] == "pool" for m in self.pipeline_modules):
            raise EmbeddingError(f"{root}: modules.json has no Pooling module; token embeddings are not sentence "
                                 f"embeddings")
        saved = read_json(root / "config_sentence_transformers.json", {})
        self.prompts = {"query": "", "document": ""}  # sentence-transformers' defaults: empty prompts
        self.prompts.update(saved.get("prompts") or {})
        self.prompts.update(prompts or {})
        self.default_prompt_name = default_prompt_name or saved.get("default_prompt_name")
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise EmbeddingError(f"default prompt name {self.default_prompt_name!r} is not among the prompts "
                                 f"{sorted(self.prompts)}")
        self.similarity_fn_name = saved.get("similarity_fn_name") or "cosine"
        self.truncate_dim = truncate_dim
        self._prompt_lengths = {}

    def get_sentence_embedding_dimension(self):
        dim = self.hidden_size
        for module in self.pipeline_modules:
            if module[0] == "pool":
                dim = self.hidden_size * len(module[1])
            elif module[0] == "dense":
                dim = module[1].weight.shape[0]
        return min(dim, self.truncate_dim) if self.truncate_dim else dim

    # --- prompts ------------------------------------------------------------------------------------------
    def resolve_prompt(self, prompt=None, prompt_name=None):
        """The prompt text to prepend: prompt=, else prompts[prompt_name], else the default prompt, else None."""
        if prompt is not None:
            return prompt
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise EmbeddingError(f"prompt name {prompt_name!r} is not among the model's prompts "
                                     f"{sorted(self.prompts)}")
            return self.prompts[prompt_name]
        if self.default_prompt_name is not None:
            return self.prompts.get(self.default_prompt_name)
        return None

    def prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt alone, without a closing special token (Transformer._get_prompt_length)."""
        if prompt not in self._prompt_lengths:
            ids = self.tokenize([prompt], max_length=self.max_seq_length)[0]
            special = set(self.tokenizer.all_special_ids)
            self._prompt_lengths[prompt] = len(ids) - 1 if ids and ids[-1] in special else len(ids)
        return self._prompt_lengths[prompt]

    # --- encoding -----------------------------------------------------------------------------------------
    def encode(self, sentences, batch_size=32, normalize_embeddings=False, prompt_name=None, prompt=None,
               show_progress_bar=None, convert_to_numpy=True, truncate_dim=None, on_too_long="truncate"):
        """Sentence embeddings: [N, D'] (convert_to_numpy) or a list of [D'] arrays; [D'] for one string."""
        texts, single = as_text_list(sentences)
        prompt = self.resolve_prompt(prompt, prompt_name)
        if prompt:
            texts = [prompt + text for text in texts]
        if self.do_lower_case:
            texts = [text.lower() for text in texts]
        skip = self.prompt_length(prompt.lower() if self.do_lower_case else prompt) if prompt else 0
        sequences = self.tokenize(texts, max_length=self.max_seq_length, on_too_long=on_too_long)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        self.show_progress = bool(show_progress_bar)
        vectors = [None] * len(texts)
        for rows, states in self.token_states(sequences, batch_size):
            batch = self.sentence_vectors(states, skip)  # [B, D']
            if truncate_dim is not None:
                batch = batch[:, :truncate_dim]
            if normalize_embeddings:
                batch = l2_normalize(batch)
            for row, vector in zip(rows, batch):
                vectors[row] = vector
        return self.results(vectors, single, convert_to_numpy)

    def encode_query(self, sentences, **kwargs):
        """encode with the "query" prompt unless a prompt or prompt_name is given (SentenceTransformer 5)."""
        if kwargs.get("prompt") is None and kwargs.get("prompt_name") is None and "query" in self.prompts:
            kwargs["prompt_name"] = "query"
        return self.encode(sentences, **kwargs)

    def encode_document(self, sentences, **kwargs):
        """encode with the first of the "document", "passage", "corpus" prompts the model has."""
        if kwargs.get("prompt") is None and kwargs.get("prompt_name") is None:
            for name in ("document", "passage", "corpus"):
                if name in self.prompts:
                    kwargs["prompt_name"] = name
                    break
        return self.encode(sentences, **kwargs)

    def sentence_vectors(self, states, prompt_length=0):
        """The modules after the Transformer on one batch of token states ([T_i, D] each) -> [B, D']."""
        x = None
        for module in self.pipeline_modules:
            if module[0] == "pool":
                _, modes, include_prompt = module
                pooled = []
                for h in states:
                    mask = np.ones((1, h.shape[0]), dtype=np.int64)  # [1, T]
                    if not include_prompt and prompt_length:
                        mask[:, :prompt_length] = 0
                    pooled.append(pool(h[None], mask, modes)[0])  # [1, T, D] -> [D * modes]
                x = np.stack(pooled)  # [B, D']
            elif module[0] == "dense":
                x = module[1](x)
            else:
                x = l2_normalize(x)
        return x

    def similarity(self, embeddings1, embeddings2):
        """Pairwise scores [N1, N2] with the model's similarity_fn_name (cosine, dot, euclidean, manhattan)."""
        a = np.atleast_2d(np.asarray(embeddings1))
        b = np.atleast_2d(np.asarray(embeddings2))
        name = self.similarity_fn_name
        if name == "cosine":
            return l2_normalize(a) @ l2_normalize(b).T
        if name in ("dot", "dot_product"):
            return a @ b.T
        if name == "euclidean":
            return -np.linalg.norm(a[:, None] - b[None], axis=-1)
        if name == "manhattan":
            return -np.abs(a[:, None] - b[None]).sum(axis=-1)
        raise EmbeddingError(f"unknown similarity_fn_name {name!r}")
