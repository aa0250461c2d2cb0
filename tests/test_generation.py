"""XLMRobertaForCausalLM.generate and the KV cache: continuation equals repeated full forward passes."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import case_dir, tolerance_for
from xlmr_np import XLMRobertaForCausalLM
from xlmr_np.audit.goldens import load_case


@pytest.fixture(scope="module")
def golden():
    path = case_dir("generate_greedy")
    case, inputs = load_case(path)
    with np.load(path / "outputs_float32.npz") as data:
        expected = {k: data[k] for k in data.files}
    return XLMRobertaForCausalLM.from_pretrained(path), case, inputs["input_ids"], expected


def test_greedy_equals_hf_full_forward_passes(golden):
    model, case, prompt, expected = golden
    sequences = model.generate(prompt, max_new_tokens=case["max_new_tokens"])  # default eos: config's (2)
    np.testing.assert_array_equal(sequences, expected["sequences"])
    # HF's own generate() builds 0-based positions and continues differently; we deliberately do not copy it.
    assert not np.array_equal(expected["hf_generate_sequences"], expected["sequences"])


def test_cache_on_and_off_agree(golden):
    model, case, prompt, _ = golden
    np.testing.assert_array_equal(model.generate(prompt, max_new_tokens=6, use_cache=False),
                                  model.generate(prompt, max_new_tokens=6, use_cache=True))


def test_cached_step_logits_equal_full_sequence(golden):
    model, _, prompt, expected = golden
    sequences = expected["sequences"]  # prompt of 5 + 6 greedy tokens
    past = model(sequences[:, :5], use_cache=True).past_key_values
    for length in range(6, sequences.shape[1]):  # feed token length-1 alone, with the cache of the rest
        out = model(sequences[:, length - 1:length], past_key_values=past, use_cache=True)
        past = out.past_key_values
        # HF's full forward pass over `length` tokens, last position (stored by the generator)
        np.testing.assert_allclose(out.logits[:, 0], expected["step_logits"][length - 5],
                                   atol=tolerance_for(expected["step_logits"], "float32"))
        np.testing.assert_allclose(out.logits[:, 0], model(sequences[:, :length]).logits[:, -1],
                                   atol=tolerance_for(expected["step_logits"], "float32"))


def test_left_padded_batch_continues_each_prompt_as_alone(golden):
    model = golden[0]
    short, long = [0, 45, 36, 2], [0, 97, 91, 24, 73, 5]
    batch = np.array([[1, 1] + short, long])  # left padding: real tokens keep positions 2, 3, ...
    together = model.generate(batch, max_new_tokens=5, eos_token_id=None)
    alone_short = model.generate([short], max_new_tokens=5, eos_token_id=None)
    alone_long = model.generate([long], max_new_tokens=5, eos_token_id=None)
    np.testing.assert_array_equal(together[0, 2:], alone_short[0])
    np.testing.assert_array_equal(together[1], alone_long[0])


def test_eos_stops_a_row_and_pads_it(golden):
    model, _, prompt, expected = golden
    eos = int(expected["sequences"][0, 5])  # row 0's first new token
    out = model.generate(prompt, max_new_tokens=6, eos_token_id=eos)
    assert out[0, 5] == eos and (out[0, 6:] == model.config.pad_token_id).all()
    row1 = expected["sequences"][1]
    if eos not in row1[5:]:
        np.testing.assert_array_equal(out[1], row1[:out.shape[1]])


def test_sampling_is_seeded_and_top_k_1_is_greedy(golden):
    model, _, prompt, expected = golden
    a = model.generate(prompt, max_new_tokens=6, do_sample=True, seed=7, eos_token_id=None)
    b = model.generate(prompt, max_new_tokens=6, do_sample=True, seed=7, eos_token_id=None)
    np.testing.assert_array_equal(a, b)
    greedy = model.generate(prompt, max_new_tokens=6, do_sample=True, top_k=1, seed=3, eos_token_id=None)
    np.testing.assert_array_equal(greedy, expected["sequences"])
    tiny_p = model.generate(prompt, max_new_tokens=6, do_sample=True, top_p=1e-9, seed=3, eos_token_id=None)
    np.testing.assert_array_equal(tiny_p, expected["sequences"])  # top_p keeps at least the best token


def test_top_k_top_p_warpers_match_hf():
    torch = pytest.importorskip("torch")
    lp = pytest.importorskip("transformers.generation.logits_process")
    from xlmr_np.generation import _warp

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 50))
    for temperature, top_k, top_p in [(0.7, 10, 1.0), (1.0, 0, 0.8), (1.3, 20, 0.5)]:
        t = torch.tensor(scores) / temperature
        if top_k:
            t = lp.TopKLogitsWarper(top_k)(None, t)
        t = lp.TopPLogitsWarper(top_p)(None, t) if top_p < 1 else t
        ours = _warp(scores, temperature, top_k, top_p)
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(t.numpy()))
        finite = ~np.isinf(ours)
        np.testing.assert_allclose(ours[finite], t.numpy()[finite], rtol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_new_tokens": -1}, "max_new_tokens must be >= 0"),
    ({"max_new_tokens": 40}, "exceeds the 38 positions"),
    ({"do_sample": True, "temperature": 0.0}, "temperature must be > 0"),
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"do_sample": True, "top_k": -5}, "top_k must be a positive integer"),
    ({"do_sample": True, "top_k": 2.5}, "top_k must be a positive integer"),
])
def test_generate_rejects_bad_settings(golden, kwargs, message):
    with pytest.raises(ValueError, match=message):
        golden[0].generate(golden[2], **kwargs)


def test_generate_on_a_model_that_is_not_a_decoder_runs_without_a_cache():
    """A config without is_decoder: HF keeps no cache, so the cached loop must not expect one (it raised an
    attention_mask shape error on the second step). The result equals the uncached loop."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "add is_decoder=True", as HF warns
        lm = XLMRobertaForCausalLM.from_pretrained(case_dir("causal_lm_not_decoder"))
    assert not lm.config.is_decoder
    prompt = [[0, 5, 6]]
    cached = lm.generate(prompt, max_new_tokens=5, eos_token_id=None)
    np.testing.assert_array_equal(cached, lm.generate(prompt, max_new_tokens=5, eos_token_id=None, use_cache=False))
    assert cached.shape == (1, 8)
