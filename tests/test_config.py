"""XLMRobertaConfig: field names, HF 4.57.6 defaults, JSON round trips, and clear errors."""
from __future__ import annotations

import json

import pytest

from xlmr_np.config import ConfigError, XLMRobertaConfig

BASE = {  # FacebookAI/xlm-roberta-base config.json
    "architectures": ["XLMRobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
    "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514,
    "model_type": "xlm-roberta", "num_attention_heads": 12, "num_hidden_layers": 12, "output_past": True,
    "pad_token_id": 1, "position_embedding_type": "absolute", "transformers_version": "4.17.0.dev0",
    "type_vocab_size": 1, "use_cache": True, "vocab_size": 250002,
}


def test_defaults_match_hf():
    transformers = pytest.importorskip("transformers")
    ours, theirs = XLMRobertaConfig(), transformers.XLMRobertaConfig()
    for name in ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "pad_token_id",
                 "bos_token_id", "eos_token_id", "position_embedding_type", "use_cache", "classifier_dropout",
                 "is_decoder", "add_cross_attention", "tie_word_embeddings", "id2label", "label2id", "problem_type"]:
        assert getattr(ours, name) == getattr(theirs, name), name


def test_base_config_reads_and_keeps_unknown_fields(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(BASE))
    cfg = XLMRobertaConfig.from_pretrained(tmp_path)
    assert (cfg.vocab_size, cfg.layer_norm_eps, cfg.max_tokens, cfg.head_dim) == (250002, 1e-5, 512, 64)
    assert cfg.extra["output_past"] is True
    out = tmp_path / "out"
    cfg.save_pretrained(out)
    again = json.loads((out / "config.json").read_text())
    for key, value in BASE.items():
        assert again[key] == value, key


def test_torch_dtype_and_dtype_and_label_keys():
    cfg = XLMRobertaConfig.from_dict({"torch_dtype": "float16", "id2label": {"0": "NEG", "1": "POS", "2": "NEU"}})
    assert cfg.dtype == "float16"
    assert cfg.id2label == {0: "NEG", 1: "POS", 2: "NEU"} and cfg.num_labels == 3
    assert cfg.label2id == {"NEG": 0, "POS": 1, "NEU": 2}
    assert XLMRobertaConfig.from_dict({"dtype": "bfloat16"}).dtype == "bfloat16"
    assert XLMRobertaConfig.from_dict({"num_labels": 4}).num_labels == 4


def test_hf_reads_what_we_write(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = XLMRobertaConfig.from_dict({**BASE, "id2label": {"0": "a", "1": "b", "2": "c"}, "is_decoder": True})
    cfg.save_pretrained(tmp_path)
    theirs = transformers.XLMRobertaConfig.from_pretrained(tmp_path)
    assert theirs.id2label == {0: "a", 1: "b", 2: "c"} and theirs.is_decoder and theirs.vocab_size == 250002


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": 100, "num_attention_heads": 12}, "not a multiple of num_attention_heads"),
    ({"hidden_act": "gelu2"}, "unknown hidden_act 'gelu2'"),
    ({"position_embedding_type": "rotary"}, "unknown position_embedding_type 'rotary'"),
    ({"add_cross_attention": True}, "needs is_decoder=True"),
    ({"hidden_size": "768"}, "'hidden_size' must be a positive integer"),
    ({"num_hidden_layers": 0}, "'num_hidden_layers' must be a positive integer"),
    ({"layer_norm_eps": -1}, "layer_norm_eps"),
    ({"id2label": {"x": "a"}}, "id2label"),
])
def test_invalid_configs_name_the_problem(change, message):
    with pytest.raises(ConfigError, match=message):
        XLMRobertaConfig.from_dict({**BASE, **change})


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        XLMRobertaConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        XLMRobertaConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        XLMRobertaConfig.from_pretrained(tmp_path)
