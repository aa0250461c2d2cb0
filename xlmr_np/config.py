"""XLMRobertaConfig: the hyper-parameters of a checkpoint, with config.json's own field names.

Reference: transformers 4.57.6 `models/xlm_roberta/configuration_xlm_roberta.py` (model fields and their
class defaults) and `configuration_utils.PretrainedConfig` (the generic fields a checkpoint may carry:
is_decoder, add_cross_attention, tie_word_embeddings, id2label, ...).

Note the class defaults are BERT's (layer_norm_eps 1e-12, max_position_embeddings 512, type_vocab_size 2,
vocab_size 30522); released XLM-R checkpoints override all of them, so always read config.json.
Fields this project does not use are kept in `extra` and written back unchanged.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from .core.losses import PROBLEM_TYPES
from .core.ops import ACTIVATIONS
from .errors import ConfigError

POSITION_EMBEDDING_TYPES = ("absolute", "relative_key", "relative_key_query")
CONFIG_NAME = "config.json"


@dataclass
class XLMRobertaConfig:
    # --- the model's own fields (HF 4.57.6 defaults) ---
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: Optional[int] = 1
    bos_token_id: Optional[int] = 0
    eos_token_id: Optional[int] = 2
    position_embedding_type: str = "absolute"
    use_cache: bool = True
    classifier_dropout: Optional[float] = None
    # --- generic fields from PretrainedConfig that change the forward pass or the heads ---
    is_decoder: bool = False
    add_cross_attention: bool = False
    tie_word_embeddings: bool = True
    id2label: dict = field(default_factory=lambda: {0: "LABEL_0", 1: "LABEL_1"})
    label2id: dict = field(default_factory=lambda: {"LABEL_0": 0, "LABEL_1": 1})
    problem_type: Optional[str] = None
    output_attentions: bool = False  # what a forward returns when the call does not say (PretrainedConfig)
    output_hidden_states: bool = False
    architectures: Optional[list] = None
    dtype: Optional[str] = None  # the dtype the checkpoint was saved in ("float32", "float16", ...)
    model_type: str = "xlm-roberta"
    # --- everything else in config.json, kept verbatim ---
    extra: dict = field(default_factory=dict)

    _INT_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                   "intermediate_size", "max_position_embeddings", "type_vocab_size")

    def __post_init__(self):
        for name in self._INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"config field {name!r} must be a positive integer, got {value!r}")
        if not isinstance(self.layer_norm_eps, (int, float)) or isinstance(self.layer_norm_eps, bool) \
                or not self.layer_norm_eps > 0:
            raise ConfigError(f"config field 'layer_norm_eps' must be a positive number, got {self.layer_norm_eps!r}")
        for name in ("output_attentions", "output_hidden_states", "is_decoder", "use_cache"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"config field {name!r} must be true or false, got {getattr(self, name)!r}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) is not a multiple of num_attention_heads "
                f"({self.num_attention_heads}); fix one of them in config.json")
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(
                f"unknown hidden_act {self.hidden_act!r}; supported: {', '.join(sorted(ACTIVATIONS))}")
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ConfigError(
                f"unknown position_embedding_type {self.position_embedding_type!r}; "
                f"supported: {', '.join(POSITION_EMBEDDING_TYPES)}")
        if self.add_cross_attention and not self.is_decoder:
            # HF raises the same when it builds the layer (XLMRobertaLayer.__init__).
            raise ConfigError("add_cross_attention=True needs is_decoder=True (cross-attention only exists in decoders)")
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            # HF refuses the same in PretrainedConfig.__init__.
            raise ConfigError(f"unknown problem_type {self.problem_type!r}; supported: {', '.join(PROBLEM_TYPES)} "
                              f"(or none: the sequence classifier then infers it from the labels)")
        if self.pad_token_id is None or not isinstance(self.pad_token_id, int):
            raise ConfigError(f"pad_token_id must be an integer (positions are counted from it), got {self.pad_token_id!r}")
        # id2label keys are ints, as HF converts them after reading JSON (where keys are strings).
        try:
            self.id2label = {int(k): str(v) for k, v in dict(self.id2label).items()}
            self.label2id = {str(k): int(v) for k, v in dict(self.label2id).items()}
        except (TypeError, ValueError) as err:
            raise ConfigError(f"id2label/label2id must map integers to label names: {err}") from None

    # --- derived values ---
    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def max_tokens(self) -> int:
        """Longest sequence the position table allows: positions run from pad+1 to max_position_embeddings-1."""
        return self.max_position_embeddings - self.pad_token_id - 1

    # --- (de)serialisation ---
    @classmethod
    def from_dict(cls, data: dict) -> "XLMRobertaConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        # HF 4.57 writes "dtype"; older files say "torch_dtype". Accept both.
        if "torch_dtype" in data:
            legacy = data.pop("torch_dtype")
            data.setdefault("dtype", legacy)
        if "num_labels" in data and "id2label" not in data:
            data["id2label"] = {i: f"LABEL_{i}" for i in range(int(data["num_labels"]))}
        if "id2label" in data and "label2id" not in data:
            try:
                data["label2id"] = {v: int(k) for k, v in dict(data["id2label"]).items()}
            except (TypeError, ValueError) as err:
                raise ConfigError(f"id2label must map integers to label names: {err}") from None
        data.pop("num_labels", None)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["extra"] = {k: v for k, v in data.items() if k not in known}
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ConfigError(f"invalid config: {err}") from None

    @classmethod
    def from_pretrained(cls, path) -> "XLMRobertaConfig":
        """Read `config.json` from a directory (or the file itself)."""
        path = os.fspath(path)
        file = os.path.join(path, CONFIG_NAME) if os.path.isdir(path) else path
        if not os.path.isfile(file):
            raise ConfigError(f"no config.json at {file}; a checkpoint directory needs one next to its weights")
        try:
            with open(file, encoding="utf-8") as handle:
                data = json.load(handle)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{file} is not valid JSON: {err}") from None
        except RecursionError:
            raise ConfigError(f"{file} nests JSON too deeply to be a config") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        data.update(self.extra)
        return data

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory) -> str:
        """Write config.json: to a temporary name, flushed, then renamed, so that a full disk or a
        file-size limit never leaves half a config.json in place of the old one."""
        os.makedirs(directory, exist_ok=True)
        file = os.path.join(directory, CONFIG_NAME)
        tmp = os.path.join(directory, f".{CONFIG_NAME}.{os.urandom(6).hex()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(self.to_json_string())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, file)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return file

    def replace(self, **changes: Any) -> "XLMRobertaConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
