"""Bad input raises an error that names the problem; good input in any form (lists, arrays) works."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import case_dir
from xlmr_np import XLMRobertaForCausalLM, XLMRobertaForMaskedLM, XLMRobertaForMultipleChoice, XLMRobertaModel
from xlmr_np.inputs import InputError


@pytest.fixture(scope="module")
def mlm():
    return XLMRobertaForMaskedLM.from_pretrained(case_dir("masked_lm"))  # vocab 99, 40 positions -> 38 tokens


IDS = [[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]]


def test_nested_lists_equal_arrays(mlm):
    np.testing.assert_array_equal(mlm(IDS).logits, mlm(input_ids=np.array(IDS, dtype=np.int32)).logits)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_ids": [[0, 99, 2]]}, r"contains id 99, outside \[0, 99\)"),
    ({"input_ids": [[0, -4, 2]]}, "negative id"),
    ({"input_ids": np.array([[0, 2**63 + 1, 2]], dtype=np.uint64)}, "contains id 9223372036854775809, larger than"),
    ({"input_ids": [[0.0, 5.0, 2.0]]}, "integer ids"),
    ({"input_ids": [0, 5, 2]}, r"\[batch, tokens\]"),
    ({"input_ids": [[]]}, "no tokens"),
    ({"input_ids": [[0] + [5] * 38]}, "39 tokens is longer than the 38 the position table allows"),
    ({"input_ids": IDS, "attention_mask": [[1, 1, 1, 1]]}, "attention_mask must be"),
    ({"input_ids": IDS, "token_type_ids": [[0, 0, 0, 1, 0]] * 2}, "type_vocab_size=1"),
    ({"input_ids": IDS, "token_type_ids": [[0, 0, 0]] * 2}, "token_type_ids must have the ids' shape"),
    ({"input_ids": IDS, "head_mask": [1.0, 1.0]}, r"head_mask must be \[heads\] = \[4\]"),
    ({"input_ids": IDS, "position_ids": [[2, 3, 4, 5, 40]] * 2}, "position table has 40 rows"),
    ({"input_ids": IDS, "inputs_embeds": np.zeros((2, 5, 32))}, "exactly one of input_ids or inputs_embeds"),
    ({}, "exactly one of input_ids or inputs_embeds"),
    ({"inputs_embeds": np.zeros((2, 5, 31))}, r"inputs_embeds must be \[batch, tokens, 32\]"),
])
def test_bad_inputs(mlm, kwargs, message):
    with pytest.raises(InputError, match=message):
        mlm(**kwargs)


def test_padding_does_not_count_against_the_length(mlm):
    ids = [[0] + [5] * 36 + [2] + [1] * 2]  # 38 real tokens + 2 pads: positions stay within the table
    assert mlm(ids, attention_mask=[[1] * 38 + [0] * 2]).logits.shape == (1, 40, 99)
    with pytest.raises(InputError, match="41 tokens exceed max_position_embeddings"):
        mlm([ids[0] + [1]])  # HF's zero token-type buffer has 40 entries: it fails here too


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="'float32' \\(default\\) or 'float64'"):
        XLMRobertaForMaskedLM.from_pretrained(case_dir("masked_lm"), dtype="float16")


def test_cross_attention_inputs_checked():
    decoder = XLMRobertaForCausalLM.from_pretrained(case_dir("causal_lm"))  # a decoder without cross-attention
    with pytest.raises(InputError, match="no cross-attention layers"):
        decoder(IDS, encoder_hidden_states=np.zeros((2, 3, 32)))
    cross = XLMRobertaForCausalLM.from_pretrained(case_dir("decoder_cross_attention"))
    with pytest.raises(InputError, match="encoder_hidden_states must be"):
        cross(IDS, encoder_hidden_states=np.zeros((2, 3, 7)))
    with pytest.raises(InputError, match="encoder_attention_mask must be"):
        cross(IDS, encoder_hidden_states=np.zeros((2, 3, 32)), encoder_attention_mask=np.ones((2, 4)))


def test_bad_cache_is_refused():
    decoder = XLMRobertaForCausalLM.from_pretrained(case_dir("causal_lm"))
    past = decoder([[0, 5, 6]], use_cache=True).past_key_values
    with pytest.raises(InputError, match="past_key_values has 1 layers"):
        decoder([[7]], past_key_values=past[:1])
    with pytest.raises(InputError, match=r"attention_mask must be .*\(past 3 \+ new 1\)"):
        decoder([[7]], past_key_values=past, attention_mask=[[1]])


def test_multiple_choice_needs_three_dimensions():
    model = XLMRobertaForMultipleChoice.from_pretrained(case_dir("multiple_choice"))
    with pytest.raises(InputError, match=r"\[batch, choices, tokens\]"):
        model(IDS)


def test_base_model_without_mask_attends_to_pads_like_hf():
    # HF warns and attends to pads when no attention_mask is given; the golden model_no_attention_mask pins it.
    model = XLMRobertaModel.from_pretrained(case_dir("model_base"))
    a = model([[0, 5, 6, 2, 1]]).last_hidden_state[0, :4]
    b = model([[0, 5, 6, 2, 1]], attention_mask=[[1, 1, 1, 1, 0]]).last_hidden_state[0, :4]
    assert np.abs(a - b).max() > 1e-4


def test_relative_position_models_check_the_distance_table():
    from xlmr_np import XLMRobertaModel

    model = XLMRobertaModel.from_pretrained(case_dir("relative_key"))  # 40 positions
    assert model([[0] + [5] * 38 + [2]]).last_hidden_state.shape == (1, 40, 32)
    with pytest.raises(InputError, match="41 positions exceed max_position_embeddings"):
        model([[0] + [5] * 39 + [2]])


def test_config_output_attentions_and_hidden_states_are_the_call_defaults():
    """HF: config.output_attentions / output_hidden_states apply when the call does not say otherwise."""
    plain = XLMRobertaModel.from_pretrained(case_dir("model_base"))
    cfg = plain.config.replace(output_attentions=True, output_hidden_states=True)
    m = XLMRobertaModel(cfg, plain.params)
    out = m(input_ids=IDS)
    assert len(out.attentions) == cfg.num_hidden_layers and len(out.hidden_states) == cfg.num_hidden_layers + 1
    quiet = m(input_ids=IDS, output_attentions=False, output_hidden_states=False)
    assert quiet.attentions is None and quiet.hidden_states is None
    assert plain(input_ids=IDS).attentions is None  # the default config says False


def test_config_output_flags_must_be_booleans():
    from xlmr_np.config import XLMRobertaConfig
    from xlmr_np.errors import ConfigError

    with pytest.raises(ConfigError, match="'output_attentions' must be true or false"):
        XLMRobertaConfig.from_dict({"output_attentions": "yes"})
