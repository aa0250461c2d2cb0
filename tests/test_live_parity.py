"""Live parity: random configs and inputs, xlmr_np against Hugging Face transformers 4.57.6 directly.

Tier 3 of the test plan (DESIGN.md). Hypothesis draws a config (sizes, activation, position embedding type,
layer_norm_eps, decoder / cross-attention, head class), a model whose EVERY parameter is random
(hf_helpers.randomise_parameters), saved by HF's `save_pretrained` and loaded by xlmr_np, and the inputs of
one call (padding side, attention mask, token types, position ids or inputs_embeds, head_mask, output flags,
use_cache). Every output field HF returns is compared, tuple member by tuple member, cache included.
Decoders (XLMRobertaModel / XLMRobertaForCausalLM with is_decoder) also run a cache check: a prefix with
use_cache=True, then the rest from the returned past_key_values, as one block or token by token.

Relative positions with a cache: HF 4.57.6 `XLMRobertaSelfAttention.forward` (modeling_xlm_roberta.py
L229-232) uses the single query position key_length - 1 for every query row whenever a cache object exists,
which includes a first call with use_cache=True and no past (XLMRobertaEncoder.forward L590-591 creates one;
decoders default to config.use_cache, XLMRobertaModel.forward L755-756). xlmr_np copies this on purpose
(model.relative_position_scores), so those cases are drawn like any other; the tests fail if it stops.

Reference: HF in eval mode, attn_implementation="eager", torch.set_num_threads(1). float64 runs HF after
`model.double()` on the same (float32-stored) weights and xlmr_np with dtype="float64".
Tolerances: xlmr_np.audit.goldens.tolerance_for (the project's single policy, with its reasons); float32 values
whose HF reference is itself not accurate to a tenth of it are judged in float64 (ill_conditioned_in_float32).
Examples are derandomized (CI sees the same 400 cases every run); the file takes ~40 s on the 2-core dev box.
"""
from __future__ import annotations

import tempfile
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from hypothesis import HealthCheck, event, given, settings, strategies as st  # noqa: E402

import xlmr_np  # noqa: E402
from xlmr_np.config import POSITION_EMBEDDING_TYPES  # noqa: E402
from xlmr_np.core.ops import ACTIVATIONS  # noqa: E402
from xlmr_np.audit.goldens import tolerance_for  # noqa: E402

from hf_helpers import HF_CLASSES, flatten_outputs, random_hf_model, to_torch  # noqa: E402

torch.set_num_threads(1)

# Classes whose forward takes encoder_hidden_states (HF's other heads have no such argument, and their
# encoder would index a missing cross-attention output if the config had add_cross_attention).
CROSS_CLASSES = ("XLMRobertaModel", "XLMRobertaForMaskedLM", "XLMRobertaForCausalLM")
# Classes whose forward takes use_cache / past_key_values and returns past_key_values.
CACHE_CLASSES = ("XLMRobertaModel", "XLMRobertaForCausalLM")

SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- drawing a case -----------------------------------------------------------------------------------------
@st.composite
def padded_rows(draw, rows: int, length: int):
    """Padding side and per-row real lengths (>= 1) for `rows` sequences of `length` tokens."""
    side = draw(st.sampled_from(["none", "right", "left"]))
    if side == "none":
        return side, [length] * rows
    return side, draw(st.lists(st.integers(1, length), min_size=rows, max_size=rows))


@st.composite
def cases(draw, decoder_cache=False):
    """A config dict for transformers.XLMRobertaConfig plus the description of one call (a plain dict).

    decoder_cache=True draws only decoders that can take a cache (XLMRobertaModel, XLMRobertaForCausalLM),
    with at least two tokens and a cache check; otherwise any class, decoder or not.
    """
    cls = draw(st.sampled_from(CACHE_CLASSES if decoder_cache else HF_CLASSES))
    heads, head_dim = draw(st.integers(1, 4)), draw(st.integers(2, 8))
    layers = draw(st.integers(1, 3))
    pad = draw(st.sampled_from([1, 1, 0, 3]))  # XLM-R's pad is 1; others check positions are counted from pad
    max_pos = draw(st.integers(max(6, pad + 2), 40))
    if decoder_cache:
        is_decoder = True
    elif cls == "XLMRobertaForCausalLM":
        is_decoder = draw(st.sampled_from([True, True, False]))
    else:
        is_decoder = draw(st.booleans())
    config = dict(
        vocab_size=draw(st.integers(max(5, pad + 1), 60)), hidden_size=heads * head_dim,
        num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=draw(st.integers(1, 40)),
        max_position_embeddings=max_pos, type_vocab_size=draw(st.integers(1, 3)),
        hidden_act=draw(st.sampled_from(sorted(ACTIVATIONS))),
        position_embedding_type=draw(st.sampled_from(POSITION_EMBEDDING_TYPES)),
        layer_norm_eps=10.0 ** draw(st.floats(-12.0, -0.5)), pad_token_id=pad,
        is_decoder=is_decoder, use_cache=draw(st.booleans()),
        add_cross_attention=is_decoder and cls in CROSS_CLASSES and draw(st.booleans()),
    )
    if cls in ("XLMRobertaForMaskedLM", "XLMRobertaForCausalLM"):
        config["tie_word_embeddings"] = draw(st.sampled_from([True, True, False]))
    if cls in ("XLMRobertaForSequenceClassification", "XLMRobertaForTokenClassification"):
        config["num_labels"] = draw(st.integers(1, 4))

    batch = draw(st.integers(1, 3))
    choices = draw(st.integers(1, 3)) if cls == "XLMRobertaForMultipleChoice" else None
    rows = batch * (choices or 1)
    length = draw(st.integers(2 if decoder_cache else 1, max_pos - pad - 1))  # positions run pad+1 .. max_pos-1
    side, lengths = draw(padded_rows(rows, length))
    call = dict(
        cls=cls, batch=batch, choices=choices, length=length, padding=side, lengths=lengths,
        mask=draw(st.sampled_from(["given", "given", "none"])) if side != "none" else draw(
            st.sampled_from(["given", "none"])),
        token_types=config["type_vocab_size"] > 1 and draw(st.booleans()),
        embeds=not decoder_cache and draw(st.sampled_from([False, False, False, True])),
        positions=not decoder_cache and draw(st.sampled_from([False, False, False, True])),
        head_mask=draw(st.sampled_from([None, None, "heads", "layers"])),
        output_attentions=draw(st.booleans()), output_hidden_states=draw(st.booleans()),
        use_cache=draw(st.sampled_from([None, True, False])) if cls in CACHE_CLASSES else None,
        seed=draw(st.integers(0, 2 ** 31 - 1)),
    )
    if config["add_cross_attention"]:
        call["source_length"] = draw(st.integers(1, 6))
        call["source_padding"] = draw(padded_rows(batch, call["source_length"]))
    if decoder_cache:
        call["cache_split"] = draw(st.integers(1, length - 1))
        call["cache_steps"] = draw(st.booleans())  # the rest token by token, else as one block
    return config, call


def make_inputs(config, call, rng):
    """NumPy arrays for one call, from the drawn description (values from `rng`)."""
    rows, length, pad, d = len(call["lengths"]), call["length"], config["pad_token_id"], config["hidden_size"]
    real = np.zeros((rows, length), dtype=bool)
    for r, n in enumerate(call["lengths"]):
        real[r, :n] = True
    if call["padding"] == "left":
        real = real[:, ::-1]
    # Real tokens are any id, the pad id included: HF then places them like padding, and so must we.
    ids = np.where(real, rng.integers(0, config["vocab_size"], size=(rows, length)), pad).astype(np.int64)
    shape = (call["batch"], call["choices"], length) if call["choices"] else (call["batch"], length)
    inputs = {"input_ids": ids.reshape(shape)}
    if call["mask"] == "given":
        inputs["attention_mask"] = real.astype(np.int64).reshape(shape)
    if call["token_types"]:
        inputs["token_type_ids"] = rng.integers(0, config["type_vocab_size"], size=shape)
    if call["positions"]:
        inputs["position_ids"] = rng.integers(0, config["max_position_embeddings"], size=shape)
    if call["embeds"]:
        inputs["inputs_embeds"] = rng.normal(0.0, 0.5, size=shape + (d,))
        del inputs["input_ids"]
    heads, layers = config["num_attention_heads"], config["num_hidden_layers"]
    if call["head_mask"] is not None:
        size = (heads,) if call["head_mask"] == "heads" else (layers, heads)
        # Zeros (pruned heads), ones, and scalings in between.
        inputs["head_mask"] = rng.choice([0.0, 1.0, 1.0, rng.uniform(0.1, 2.0)], size=size)
    if config["add_cross_attention"]:
        source = call["source_length"]
        inputs["encoder_hidden_states"] = rng.normal(0.0, 1.0, size=(call["batch"], source, d))
        side, lengths = call["source_padding"]
        if side != "none":
            mask = np.zeros((call["batch"], source), dtype=np.int64)
            for r, n in enumerate(lengths):
                mask[r, :n] = 1
            inputs["encoder_attention_mask"] = mask[:, ::-1].copy() if side == "left" else mask
    return inputs


# --- running both -------------------------------------------------------------------------------------------
def hf_caller(model, torch_dtype):
    """HF's model as a function of NumPy inputs (past_key_values is passed through as HF returned it)."""
    def call(**kwargs):
        converted = {k: to_torch(v, torch_dtype) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        with torch.no_grad():
            return model(**converted)
    return call


def run_calls(model, inputs, call):
    """The calls of one case on one model: [(label, flattened outputs)].

    The forward call; then, for a cache check, the prefix [0:split] with use_cache=True and the rest from the
    returned past_key_values (token by token, or as one block). Outputs are flattened right away: HF updates
    its cache object in place.
    """
    flags = dict(output_attentions=call["output_attentions"], output_hidden_states=call["output_hidden_states"])
    if call["use_cache"] is not None:
        flags["use_cache"] = call["use_cache"]
    results = [("forward", flatten_outputs(model(**inputs, **flags)))]
    if "cache_split" not in call:
        return results

    split, length = call["cache_split"], call["length"]
    flags["use_cache"] = True
    fixed = {k: v for k, v in inputs.items() if k in ("head_mask", "encoder_hidden_states", "encoder_attention_mask")}

    def block(start, stop):
        part = {k: inputs[k][:, start:stop] for k in ("input_ids", "token_type_ids") if k in inputs}
        if "attention_mask" in inputs:
            part["attention_mask"] = inputs["attention_mask"][:, :stop]  # past and new keys
        return {**part, **fixed}

    out = model(**block(0, split), **flags)
    results.append((f"cache prefix [0:{split}]", flatten_outputs(out)))
    bounds = [(t, t + 1) for t in range(split, length)] if call["cache_steps"] else [(split, length)]
    for start, stop in bounds:
        out = model(**block(start, stop), past_key_values=out.past_key_values, **flags)
        results.append((f"cached step [{start}:{stop}]", flatten_outputs(out)))
    return results


def max_diff(a, b) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def compare(ours_calls, hf_calls, dtype, skip_values=frozenset()):
    """Every field HF returns must be present, of the same shape and dtype, and within tolerance_for(HF).

    skip_values: (call label, field) pairs whose values are not compared (see ill_conditioned_in_float32).
    """
    for (where, ours), (_, theirs) in zip(ours_calls, hf_calls, strict=True):
        assert sorted(ours) == sorted(theirs), f"{where}: fields differ: ours {sorted(ours)}, HF {sorted(theirs)}"
        for name, reference in theirs.items():
            got = ours[name]
            assert got.shape == reference.shape, f"{where}: {name} shape {got.shape} != HF {reference.shape}"
            assert got.dtype == np.dtype(dtype), f"{where}: {name} is {got.dtype}, expected {dtype}"
            if (where, name) in skip_values:
                continue
            diff, limit = max_diff(got, reference), tolerance_for(reference, dtype)
            assert diff <= limit, f"{where}: {name} differs from HF by {diff:.3e} (tolerance {limit:.1e})"


# A float32 value is judged against HF float32 only where HF's own float32 rounding error (measured against
# HF float64) is at most this fraction of the float32 tolerance: the 10x margin xlmr_np/audit/goldens.py assumes.
CONDITIONING = 0.1


def ill_conditioned_in_float32(hf32_calls, hf64_calls) -> set:
    """(call label, field) pairs where HF float32 is more than CONDITIONING x tolerance from HF float64.

    Fully random tiny models are often ill-conditioned in float32: a steep activation ("laplace"), a
    LayerNorm over 2-4 nearly equal values with a small eps, three layers of relu2 and the LM head amplify
    rounding, and two correct float32 implementations then differ by more than the tolerance although both
    only round. Measured on 1200 randomly drawn cases (19k outputs): HF float32 was up to 17x the tolerance
    away from HF float64; xlmr_np float32 was about as close to HF float64 as HF float32 was (layer by layer
    their local float32 errors are equal), and its gap to HF float32 reached 5.3x HF's own error. Where HF's
    own error was <= 1/10 of the tolerance (95% of outputs) the largest xlmr_np-HF float32 gap was 0.41 of the
    tolerance; at a 1/4 cut-off it was 0.63, but a derandomized example (3-layer relu2, relative_key_query,
    HF error 0.23, xlmr_np gap 1.10) still fell through. Skipped values are checked in float64 instead,
    where the same cases match to ~1e-13.
    """
    skipped = set()
    for (where, h32), (_, h64) in zip(hf32_calls, hf64_calls, strict=True):
        for name, reference in h32.items():
            if max_diff(reference, h64[name]) > CONDITIONING * tolerance_for(reference, "float32"):
                skipped.add((where, name))
    return skipped


def check_case(config, call, dtype):
    rng = np.random.default_rng(call["seed"])
    inputs = make_inputs(config, call, rng)

    def cast(dt):
        return {k: v.astype(dt) if v.dtype.kind == "f" else v for k, v in inputs.items()}

    def ours_calls(dt):
        with warnings.catch_warnings():  # the expected "is_decoder" notices of MaskedLM / CausalLM
            warnings.simplefilter("ignore", UserWarning)
            model = getattr(xlmr_np, call["cls"]).from_pretrained(directory, dtype=dt)
        return run_calls(model, cast(dt), call)

    with tempfile.TemporaryDirectory() as directory:
        hf_model = random_hf_model(call["cls"], config, call["seed"], directory)
        if dtype == "float32":
            hf32 = run_calls(hf_caller(hf_model, torch.float32), cast("float32"), call)
            hf64 = run_calls(hf_caller(hf_model.double(), torch.float64), cast("float64"), call)
            skipped = ill_conditioned_in_float32(hf32, hf64)
            compare(ours_calls("float32"), hf32, "float32", skipped)
            if skipped:
                event("some float32 outputs ill-conditioned: case also checked in float64")
                compare(ours_calls("float64"), hf64, "float64")
        else:
            hf64 = run_calls(hf_caller(hf_model.double(), torch.float64), cast("float64"), call)
            compare(ours_calls("float64"), hf64, "float64")


# --- the tests ----------------------------------------------------------------------------------------------
# Each example takes ~10-50 ms, so the counts below keep the whole file near 30 s on the 2-core dev machine.
@settings(max_examples=200, **SETTINGS)
@given(case=cases())
def test_random_models_match_hf_float32(case):
    check_case(*case, dtype="float32")


@settings(max_examples=60, **SETTINGS)
@given(case=cases())
def test_random_models_match_hf_float64(case):
    check_case(*case, dtype="float64")


@settings(max_examples=100, **SETTINGS)
@given(case=cases(decoder_cache=True))
def test_random_decoders_with_cache_match_hf_float32(case):
    check_case(*case, dtype="float32")


@settings(max_examples=40, **SETTINGS)
@given(case=cases(decoder_cache=True))
def test_random_decoders_with_cache_match_hf_float64(case):
    check_case(*case, dtype="float64")
