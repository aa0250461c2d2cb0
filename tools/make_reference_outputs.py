"""Generate the golden reference outputs for xlmr_np from Hugging Face transformers 4.57.x.

Builds small XLM-RoBERTa checkpoints whose every parameter is drawn at random, saves them with
HF's own `save_pretrained(..., safe_serialization=True)`, and records what HF computes on them
(eager attention, eval mode) in float32 and float64. xlmr_np's tests and `python -m xlmr_np verify`
compare against these files, so nothing here may come from xlmr_np itself.

Layout written (one folder per case, see reference_outputs/README.md):
    reference_outputs/cases/<case>/{config.json, model.safetensors, case.json, inputs.npz,
                                    outputs_float32.npz, outputs_float64.npz}
    reference_outputs/MANIFEST.json   versions, seeds, sha256 of every file, numeric diagnostics
    reference_outputs/README.md       how to regenerate and what each case covers

Usage:
    python tools/make_reference_outputs.py                 # regenerate everything, then self-check
    python tools/make_reference_outputs.py --only a,b      # regenerate some cases (MANIFEST keeps the rest)
    python tools/make_reference_outputs.py --check         # only re-run HF on the stored files and compare

Reference behaviour: transformers 4.57.6 `models/xlm_roberta/modeling_xlm_roberta.py` (XLMRobertaModel.forward,
XLMRobertaForCausalLM.forward, GenerationMixin.generate); torch 2.13 CPU with one thread so reruns are bit-identical.
"""

import argparse
import datetime
import hashlib
import io
import json
import math
import platform
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import safetensors
import torch
import transformers
from torch import nn
from transformers import (
    XLMRobertaConfig,
    XLMRobertaForCausalLM,
    XLMRobertaForMaskedLM,
    XLMRobertaForMultipleChoice,
    XLMRobertaForQuestionAnswering,
    XLMRobertaForSequenceClassification,
    XLMRobertaForTokenClassification,
    XLMRobertaModel,
)
from transformers.activations import ACT2CLS
from transformers.models.xlm_roberta.modeling_xlm_roberta import XLMRobertaLMHead

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()  # HF's expected warnings (no mask, sdpa fallback) are documented in README

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "reference_outputs"
CASES_DIR = OUT_DIR / "cases"
SCRIPT_NAME = "tools/make_reference_outputs.py"
EXPECTED_VERSIONS = {"torch": "2.13.0", "transformers": "4.57.6"}

CLASSES = {
    cls.__name__: cls
    for cls in (
        XLMRobertaModel,
        XLMRobertaForMaskedLM,
        XLMRobertaForCausalLM,
        XLMRobertaForSequenceClassification,
        XLMRobertaForMultipleChoice,
        XLMRobertaForTokenClassification,
        XLMRobertaForQuestionAnswering,
    )
}

PAD, BOS, EOS = 1, 0, 2
TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    pad_token_id=PAD,
    bos_token_id=BOS,
    eos_token_id=EOS,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)

# Activations in ACT2CLS that carry learned parameters of their own: not part of the XLM-R state dict
# layout xlmr_np reads, so they get no golden (README says so).
SKIPPED_ACTIVATIONS = {
    "prelu": "nn.PReLU has a learned slope parameter (intermediate.intermediate_act_fn.weight)",
    "xielu": "XIELUActivation has learned alpha_p/alpha_n parameters and bfloat16 buffers",
}
ACT_GAIN = 5.0  # intermediate.dense weights scaled so pre-activations (std ~5) reach gelu_10's clip and relu6's cap


# ----------------------------------------------------------------------------- inputs

def padded_ids(rng, lengths, seq_len, vocab, left=False):
    """Rows `<s> random… </s>` of the given lengths, padded with PAD to seq_len; returns (ids, mask)."""
    ids = np.full((len(lengths), seq_len), PAD, dtype=np.int64)
    mask = np.zeros((len(lengths), seq_len), dtype=np.int64)
    for b, n in enumerate(lengths):
        row = np.concatenate([[BOS], rng.integers(3, vocab, n - 2), [EOS]])  # ids 3.. avoid bos/pad/eos
        sl = slice(seq_len - n, seq_len) if left else slice(0, n)
        ids[b, sl] = row
        mask[b, sl] = 1
    return ids, mask


def f32_exact(a):
    """float64 array holding float32-representable values, so both runs see identical inputs."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def std_inputs(lengths=(12, 9, 5), seq_len=12, left=False, vocab=99):
    def make(rng):
        ids, mask = padded_ids(rng, lengths, seq_len, vocab, left=left)
        return {"input_ids": ids, "attention_mask": mask}
    return make


def inputs_no_mask(rng):
    ids, _ = padded_ids(rng, (12, 9, 5), 12, 99)
    return {"input_ids": ids}


def inputs_multiple_choice(rng):
    B, C, T = 2, 3, 10
    ids = np.full((B, C, T), PAD, dtype=np.int64)
    mask = np.zeros((B, C, T), dtype=np.int64)
    types = np.zeros((B, C, T), dtype=np.int64)
    for b in range(B):
        for c in range(C):
            first, second = int(rng.integers(2, 4)), int(rng.integers(1, 4))
            row = np.concatenate([[BOS], rng.integers(3, 99, first), [EOS, EOS], rng.integers(3, 99, second), [EOS]])
            n = len(row)
            ids[b, c, :n] = row
            mask[b, c, :n] = 1
            types[b, c, first + 2:n] = 1  # second segment of the pair
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def inputs_token_types(rng):
    ids, mask = padded_ids(rng, (12, 10, 6), 12, 99)
    types = np.zeros_like(ids)
    types[0, 6:12] = 1
    types[1, 3:10] = 1
    types[2, 1:3] = 1
    types[2, 4] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def inputs_head_mask_1d(rng):
    d = std_inputs()(rng)
    d["head_mask"] = np.array([1.0, 0.0, 0.5, 0.25])  # [H]
    return d


def inputs_head_mask_2d(rng):
    d = std_inputs()(rng)
    d["head_mask"] = np.array([[1.0, 0.5, 0.0, 1.0], [0.25, 1.0, 1.0, 0.0]])  # [L, H]
    return d


def inputs_mask_3d(rng):
    ids, pad_mask = padded_ids(rng, (8, 7, 5), 8, 99)
    B, T = ids.shape
    mask = (rng.random((B, T, T)) < 0.6).astype(np.int64)  # [B, T, S] arbitrary pattern
    mask[:, np.arange(T), np.arange(T)] = 1  # every query sees itself …
    mask *= pad_mask[:, None, :]  # … and padding keys stay hidden
    mask[2, 3, :] = 0  # except one fully masked query row: HF eager gives uniform attention there
    return {"input_ids": ids, "attention_mask": mask}


def inputs_mask_nonbinary(rng):
    ids, _ = padded_ids(rng, (8, 8, 8), 8, 99)
    mask = np.array([
        [1, 1, 0.5, 1, 1, 0.5, 1, 0],  # 0.5 adds min/2: as good as masked next to the 1s
        [0.75] * 8,  # every key gets the same min/4: uniform attention
        [0.5, 0.25, 0.5, 0, 0.5, 0.25, 0, 0],  # only the 0.5 keys survive, uniformly weighted
    ])
    return {"input_ids": ids, "attention_mask": mask}


def inputs_position_ids(rng):
    ids, mask = padded_ids(rng, (10, 10, 6), 10, 99)
    pos = np.stack([
        np.arange(10),  # 0-based, as HF generate() builds them
        rng.integers(0, 40, 10),  # arbitrary, repeats allowed, pad row 1 included
        np.concatenate([np.arange(2, 8), [1, 1, 1, 1]]),  # what HF would build itself
    ]).astype(np.int64)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos}


def inputs_embeds(rng):
    _, mask = padded_ids(rng, (9, 6, 9), 9, 99)
    return {"inputs_embeds": f32_exact(rng.normal(0.0, 0.5, (3, 9, 32))), "attention_mask": mask}


def inputs_cross(lengths=(9, 7, 4), seq_len=9, enc_lengths=(7, 5, 3)):
    def make(rng):
        ids, mask = padded_ids(rng, lengths, seq_len, 99)
        S = 7
        enc_mask = np.zeros((len(enc_lengths), S), dtype=np.int64)
        for b, n in enumerate(enc_lengths):
            enc_mask[b, :n] = 1
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "encoder_hidden_states": f32_exact(rng.normal(0.0, 1.0, (len(enc_lengths), S, 32))),
            "encoder_attention_mask": enc_mask,
        }
    return make


def inputs_prompt(rng):
    prompt = np.concatenate([np.full((2, 1), BOS), rng.integers(3, 99, (2, 4))], axis=1)  # [2, 5], no eos, no pad
    return {"input_ids": prompt.astype(np.int64)}


def inputs_real_width(rng):
    ids = np.concatenate([[BOS], rng.integers(3, 100, 510), [EOS]])[None, :].astype(np.int64)  # [1, 512]
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


# ----------------------------------------------------------------------------- cases

@dataclass
class Case:
    name: str
    cls: str
    seed: int
    description: str
    make_inputs: Callable
    config: dict = field(default_factory=dict)  # overrides of TINY
    call: dict = field(default_factory=dict)  # non-array keyword arguments of the HF call
    mode: str = "forward"
    extra: dict = field(default_factory=dict)  # mode-specific keys for case.json (split, max_new_tokens)
    save_dtype: str = "float32"
    act_gain: float = 1.0
    tiny: bool = True  # start from TINY (False: config is complete)
    notes: list = field(default_factory=list)


PROTOCOLS = {
    "cache": "logits: one call on all inputs (use_cache=False). step1.logits: input_ids[:, :split], "
             "attention_mask[:, :split], use_cache=True. step2.logits: input_ids[:, split:], the full "
             "attention_mask [B, T], past_key_values = step1's cache. steps.logits [B, T-split, V]: after a fresh "
             "step1, token t alone with attention_mask[:, :t+1] and the growing cache, t = split..T-1. "
             "encoder_hidden_states/encoder_attention_mask (if present) are passed in every call.",
    "generate": "sequences: prompt plus max_new_tokens greedy tokens, each the argmax of the last position's "
                "logits of a full forward pass over the whole current sequence (no attention_mask, no cache); "
                "step_logits [max_new_tokens, B, V] are those last-position logits. hf_generate_sequences: "
                "model.generate(input_ids, max_new_tokens, do_sample=False), for documentation only.",
}

OH_OA = {"output_hidden_states": True, "output_attentions": True}
OH = {"output_hidden_states": True}
OA = {"output_attentions": True}
DECODER = {"is_decoder": True}


def act_cases():
    out = []
    for i, act in enumerate(sorted(ACT2CLS)):
        if act in SKIPPED_ACTIVATIONS:
            continue
        out.append(Case(
            f"act_{act}", "XLMRobertaForMaskedLM", 300 + i,
            f'hidden_act="{act}" (ACT2CLS[{act!r}] = {_act_desc(act)}); intermediate.dense weights ×{ACT_GAIN} so '
            "pre-activations (std ≈ 5) go beyond ±12: gelu_10 clips, relu6 caps, tanh/sigmoid/laplace saturate "
            "(range in case.json); padded batch, output_hidden_states",
            std_inputs(), config={"hidden_act": act}, call=OH, act_gain=ACT_GAIN,
        ))
    return out


def _act_desc(act):
    entry = ACT2CLS[act]
    cls, kwargs = entry if isinstance(entry, tuple) else (entry, {})
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


CASES = [
    Case("model_base", "XLMRobertaModel", 101,
         "XLMRobertaModel with pooler; right padding (lengths 12, 9, 5), output_hidden_states + output_attentions",
         std_inputs(), call=OH_OA),
    Case("model_left_padding", "XLMRobertaModel", 102,
         "XLMRobertaModel with pooler; left padding (lengths 12, 9, 5): positions count non-pad tokens only, "
         "so real tokens get 2, 3, … as with right padding; the pooler reads position 0, which is a pad for "
         "left-padded rows", std_inputs(left=True), call=OH_OA),
    Case("model_no_attention_mask", "XLMRobertaModel", 103,
         "XLMRobertaModel on a padded batch WITHOUT attention_mask: HF attends to the pads (mask of ones); "
         "pads still get position 1", inputs_no_mask, call=OH),
    Case("masked_lm", "XLMRobertaForMaskedLM", 104,
         "XLMRobertaForMaskedLM, tied lm_head.decoder.weight (not saved, as HF does); right padding",
         std_inputs(), call=OH_OA),
    Case("masked_lm_untied", "XLMRobertaForMaskedLM", 105,
         "XLMRobertaForMaskedLM with tie_word_embeddings=False: lm_head.decoder.weight is its own saved tensor; "
         "in 4.57 lm_head.decoder.bias is still the same Parameter as lm_head.bias, so only lm_head.bias is saved",
         std_inputs(), config={"tie_word_embeddings": False}, call=OH_OA),
    Case("sequence_classification", "XLMRobertaForSequenceClassification", 106,
         "XLMRobertaForSequenceClassification, num_labels 3 with custom id2label; head reads token 0 "
         "(dense → tanh → out_proj), no pooler", std_inputs(), call=OH_OA,
         config={"num_labels": 3, "id2label": {0: "negative", 1: "neutral", 2: "positive"},
                 "label2id": {"negative": 0, "neutral": 1, "positive": 2}}),
    Case("multiple_choice", "XLMRobertaForMultipleChoice", 107,
         "XLMRobertaForMultipleChoice, input_ids/attention_mask/token_type_ids [B=2, C=3, T=10] (pair layout "
         "<s> A </s></s> B </s>, second segment type 1, type_vocab_size 2), flattened to [6, 10]; uses the pooler; "
         "hidden_states/attentions are [B*C, …]", inputs_multiple_choice, config={"type_vocab_size": 2}, call=OH_OA),
    Case("token_classification", "XLMRobertaForTokenClassification", 108,
         "XLMRobertaForTokenClassification, num_labels 5", std_inputs(), config={"num_labels": 5}, call=OH_OA),
    Case("question_answering", "XLMRobertaForQuestionAnswering", 109,
         "XLMRobertaForQuestionAnswering (qa_outputs → start_logits, end_logits)", std_inputs(), call=OH_OA),
    Case("causal_lm", "XLMRobertaForCausalLM", 110,
         "XLMRobertaForCausalLM with is_decoder=True: causal mask times padding mask; right padding",
         std_inputs(), config=DECODER, call=OH_OA),
    Case("causal_lm_not_decoder", "XLMRobertaForCausalLM", 111,
         "XLMRobertaForCausalLM with is_decoder=False: HF only warns, attention stays bidirectional",
         std_inputs(), call=OA),
    *act_cases(),
    Case("relative_key", "XLMRobertaModel", 201,
         'position_embedding_type="relative_key" (distance_embedding [2*40-1, Dh], no absolute positions added); '
         "right padding, lengths 16, 11, 6", std_inputs((16, 11, 6), 16),
         config={"position_embedding_type": "relative_key"}, call=OH_OA),
    Case("relative_key_query", "XLMRobertaModel", 202,
         'position_embedding_type="relative_key_query" (query and key terms); right padding, lengths 16, 11, 6',
         std_inputs((16, 11, 6), 16), config={"position_embedding_type": "relative_key_query"}, call=OH_OA),
    Case("head_mask_1d", "XLMRobertaModel", 203,
         "head_mask [H] = [1, 0, 0.5, 0.25] applied to every layer; returned attentions are the masked "
         "probabilities (a 0 head has rows summing to 0)", inputs_head_mask_1d, call=OH_OA),
    Case("head_mask_2d", "XLMRobertaModel", 204,
         "head_mask [L, H] = [[1, 0.5, 0, 1], [0.25, 1, 1, 0]]", inputs_head_mask_2d, call=OH_OA),
    Case("token_types", "XLMRobertaModel", 205,
         "type_vocab_size 2 with mixed token_type_ids (0/1 runs, pads typed 0)", inputs_token_types,
         config={"type_vocab_size": 2}, call=OH),
    Case("mask_3d", "XLMRobertaModel", 206,
         "3-D attention_mask [B, T, S] with arbitrary zeros besides padding; query row (b=2, t=3) is fully "
         "masked, where HF eager adds finfo.min to every score and so attends uniformly to all keys",
         inputs_mask_3d, call=OH_OA),
    Case("mask_nonbinary", "XLMRobertaModel", 207,
         "2-D float attention_mask with values 0.75/0.5/0.25: 4.57 adds (1-m)*finfo(dtype).min, so any m<1 next "
         "to a 1 is effectively masked, a row of all 0.75 attends uniformly, and in a row of 0.5/0.25/0 only the "
         "0.5 keys survive (uniformly). Stored as float64, cast to the run dtype", inputs_mask_nonbinary, call=OH_OA),
    Case("position_ids_explicit", "XLMRobertaModel", 208,
         "explicit position_ids (0-based row, arbitrary row with repeats, HF-style row)", inputs_position_ids,
         call=OH),
    Case("inputs_embeds", "XLMRobertaModel", 209,
         "inputs_embeds [3, 9, 32] instead of input_ids, with a padded attention_mask: HF positions are "
         "2..T+1 for every row (no padding detection from embeddings)", inputs_embeds, call=OH),
    Case("longest", "XLMRobertaModel", 210,
         "max_position_embeddings 40 → longest input 40-1-1 = 38 tokens (positions up to 39); second row "
         "length 21", std_inputs((38, 21), 38), call=OH),
    Case("decoder_cross_attention", "XLMRobertaForCausalLM", 211,
         "XLMRobertaForCausalLM, is_decoder + add_cross_attention; encoder_hidden_states [3, 7, 32] with "
         "padded encoder_attention_mask (7, 5, 3 valid); padded decoder input; cross_attentions stored",
         inputs_cross(), config={"is_decoder": True, "add_cross_attention": True}, call=OH_OA),
    Case("cache_decoder", "XLMRobertaForCausalLM", 212,
         "KV cache: is_decoder, no padding, B=2, T=10, split 6: step1 = first 6 tokens with use_cache, step2 = "
         "last 4 with past_key_values and the full [B, T] mask; steps = one token at a time after step1",
         std_inputs((10, 10), 10), config=DECODER, mode="cache", extra={"split": 6}),
    Case("cache_cross_attention", "XLMRobertaForCausalLM", 213,
         "KV cache with cross-attention (encoder states and mask passed at every step; HF reuses the cached "
         "cross K/V after the first step); B=3, T=9, split 5, encoder mask padded",
         inputs_cross((9, 9, 9), 9), config={"is_decoder": True, "add_cross_attention": True},
         mode="cache", extra={"split": 5}),
    Case("cache_padded", "XLMRobertaForCausalLM", 214,
         "KV cache with right padding: lengths 10, 8, 5, T=10, split 6, so row 2 has padding inside the cached "
         "prompt and rows 1-2 feed pads in step 2; every pad comes after all real tokens of its row, so "
         "cached and full-sequence runs agree", std_inputs((10, 8, 5), 10), config=DECODER, mode="cache",
         extra={"split": 6}),
    Case("generate_greedy", "XLMRobertaForCausalLM", 216,
         "greedy continuation of 2 prompts of length 5 by repeated full forward passes (positions 2, 3, … from "
         "input_ids), 6 new tokens; hf_generate_sequences = model.generate(), which uses 0-based positions "
         "from the attention mask and may continue differently", inputs_prompt, config=DECODER,
         mode="generate", extra={"max_new_tokens": 6}),
    Case("checkpoint_f16", "XLMRobertaForMaskedLM", 217,
         "XLMRobertaForMaskedLM saved with float16 weights; outputs are HF's after from_pretrained(dtype=float32) "
         "(weights rounded to f16, then upcast) and that model .to(float64)", std_inputs(), call=OH,
         save_dtype="float16"),
    Case("checkpoint_bf16", "XLMRobertaForMaskedLM", 218,
         "as checkpoint_f16 with bfloat16 weights", std_inputs(), call=OH, save_dtype="bfloat16"),
    Case("real_width", "XLMRobertaModel", 219,
         "one layer at xlm-roberta-base width (hidden 768, 12 heads, intermediate 3072, max_position_embeddings "
         "514), vocab 100, one 512-token sequence (positions up to 513); float16 weights; only "
         "last_hidden_state and pooler_output stored", inputs_real_width, save_dtype="float16",
         config=dict(TINY, vocab_size=100, hidden_size=768, num_hidden_layers=1, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=514), tiny=False),
]


# ----------------------------------------------------------------------------- model building

def make_config(case):
    cfg = dict(case.config) if not case.tiny else dict(TINY, **case.config)
    return XLMRobertaConfig(**cfg)


def randomize_(model, seed, act_gain=1.0):
    """Overwrite every parameter with seeded random values (HF's own init is mostly zeros and ones)."""
    torch.manual_seed(seed)
    done = set()

    def fill(param, values):
        if id(param) in done:  # tied: already drawn through its owner
            return
        with torch.no_grad():
            param.copy_(values)
        done.add(id(param))

    for name, mod in model.named_modules():  # parents come before children: lm_head.bias before lm_head.decoder
        if isinstance(mod, nn.Embedding):  # word, position (pad rows included), token type, distance
            fill(mod.weight, torch.randn(mod.weight.shape) * 0.5)
        elif isinstance(mod, nn.LayerNorm):
            fill(mod.weight, 1.0 + 0.2 * torch.randn(mod.weight.shape))
            fill(mod.bias, 0.2 * torch.randn(mod.bias.shape))
        elif isinstance(mod, XLMRobertaLMHead):
            fill(mod.bias, 0.3 * torch.randn(mod.bias.shape))
        elif isinstance(mod, nn.Linear):
            gain = act_gain if name.endswith("intermediate.dense") else 1.0
            fill(mod.weight, torch.randn(mod.weight.shape) * (gain / math.sqrt(mod.in_features)))
            if mod.bias is not None:
                fill(mod.bias, 0.1 * torch.randn(mod.bias.shape))
    missed = [n for n, p in model.named_parameters(remove_duplicate=False) if id(p) not in done]
    if missed:
        raise RuntimeError(f"parameters left at HF's init: {missed}")


def build_and_save(case, case_dir):
    cls = CLASSES[case.cls]
    config = make_config(case)
    config._attn_implementation = "eager"
    model = cls(config).eval()
    randomize_(model, case.seed, case.act_gain)
    if case.save_dtype != "float32":
        model = model.to(getattr(torch, case.save_dtype))
    model.save_pretrained(case_dir, safe_serialization=True)
    return model


def load(case_dir, cls_name, dtype, attn="eager"):
    """HF from_pretrained in float32 (half checkpoints upcast), then .to(float64) if asked."""
    model, info = CLASSES[cls_name].from_pretrained(
        case_dir, dtype=torch.float32, attn_implementation=attn, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise RuntimeError(f"{case_dir}: HF did not load the checkpoint cleanly: {problems}")
    return model.to(dtype).eval()


# ----------------------------------------------------------------------------- running HF

def to_torch(arrays, dtype):
    """Integer arrays → int64 tensors; float arrays (stored float64) → the run dtype."""
    return {k: torch.from_numpy(a).to(dtype if a.dtype.kind == "f" else torch.int64) for k, a in arrays.items()}


def flatten(out, dtype):
    """HF ModelOutput → {field: array}; tuples become field.0, field.1, …; no past_key_values."""
    res = {}
    for key, val in out.items():
        if key in ("past_key_values", "loss"):
            continue
        items = [(key, val)] if isinstance(val, torch.Tensor) else [(f"{key}.{i}", t) for i, t in enumerate(val)]
        for k, t in items:
            if t.dtype != dtype:
                raise RuntimeError(f"{k} came back as {t.dtype}, expected {dtype}")
            res[k] = t.detach().numpy().copy()
    return res


@torch.no_grad()
def run_case(model, case_json, arrays, dtype):
    mode, call = case_json["mode"], case_json["call"]
    inp = to_torch(arrays, dtype)
    if mode == "forward":
        return flatten(model(**inp, **call, return_dict=True), dtype)
    if mode == "cache":
        return run_cache(model, inp, call, case_json["split"], dtype)
    if mode == "generate":
        return run_generate(model, inp, case_json["max_new_tokens"], dtype)
    raise ValueError(mode)


def run_cache(model, inp, call, k, dtype):
    ids, mask = inp["input_ids"], inp["attention_mask"]
    enc = {key: inp[key] for key in ("encoder_hidden_states", "encoder_attention_mask") if key in inp}
    T = ids.shape[1]
    res = {"logits": model(**inp, **call, use_cache=False).logits}
    first = model(input_ids=ids[:, :k], attention_mask=mask[:, :k], use_cache=True, **enc)
    res["step1.logits"] = first.logits
    second = model(input_ids=ids[:, k:], attention_mask=mask, past_key_values=first.past_key_values,
                   use_cache=True, **enc)
    res["step2.logits"] = second.logits
    out = model(input_ids=ids[:, :k], attention_mask=mask[:, :k], use_cache=True, **enc)  # fresh cache
    steps = []
    for t in range(k, T):
        out = model(input_ids=ids[:, t:t + 1], attention_mask=mask[:, :t + 1],
                    past_key_values=out.past_key_values, use_cache=True, **enc)
        steps.append(out.logits[:, 0])
    res["steps.logits"] = torch.stack(steps, dim=1)  # [B, T-k, V]
    for key, t in res.items():
        if t.dtype != dtype:
            raise RuntimeError(f"{key} came back as {t.dtype}, expected {dtype}")
    return {key: t.numpy().copy() for key, t in res.items()}


def run_generate(model, inp, n, dtype):
    prompt = inp["input_ids"]
    seq, step_logits = prompt, []
    for _ in range(n):  # repeated full forward passes, no mask, positions from input_ids
        last = model(input_ids=seq, use_cache=False).logits[:, -1]  # [B, V]
        step_logits.append(last)
        seq = torch.cat([seq, last.argmax(-1, keepdim=True)], dim=1)
    hf = model.generate(prompt, max_new_tokens=n, do_sample=False)
    return {"sequences": seq.numpy().copy(), "step_logits": torch.stack(step_logits).numpy().copy(),
            "hf_generate_sequences": hf.numpy().copy()}


# ----------------------------------------------------------------------------- files

def write_npz(path, arrays):
    """np.savez_compressed layout (np.load reads it), with fixed zip timestamps so reruns hash the same."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def read_npz(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def max_abs_diff(a, b):
    out = {}
    for k in a:
        if k in b and a[k].dtype.kind == "f":
            out[k] = float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64))))
    return out


# ----------------------------------------------------------------------------- generation

def generate_case(case):
    case_dir = CASES_DIR / case.name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    rng = np.random.default_rng(case.seed)
    arrays = case.make_inputs(rng)
    built = build_and_save(case, case_dir)
    case_json = {"class": case.cls, "mode": case.mode, "call": case.call, "description": case.description,
                 "seed": case.seed, **case.extra}
    if case.mode in PROTOCOLS:
        case_json["protocol"] = PROTOCOLS[case.mode]
    if case.save_dtype != "float32":
        case_json["checkpoint_dtype"] = case.save_dtype
    if case.act_gain != 1.0:
        case_json["intermediate_dense_weight_gain"] = case.act_gain
    diag = {}

    outs = {}
    for dtype in (torch.float32, torch.float64):
        model = load(case_dir, case.cls, dtype)
        outs[dtype] = run_case(model, case_json, arrays, dtype)
    if case.name == "real_width":
        outs = {d: {k: v for k, v in o.items() if k in ("last_hidden_state", "pooler_output")}
                for d, o in outs.items()}

    if case.save_dtype == "float32":  # the saved file must carry the in-memory model; reloaded tensors sit at
        # other memory alignments, so torch's vector kernels may round the last bit differently
        again = run_case(built, case_json, arrays, torch.float32)
        d = max(max_abs_diff(again, outs[torch.float32]).values())
        diag["built_vs_reloaded_float32_max_abs_diff"] = d
        if d > 1e-5:
            raise RuntimeError(f"{case.name}: reloaded model differs from the built one by {d}")
    o32, o64 = outs[torch.float32], outs[torch.float64]
    diffs = max_abs_diff(o32, o64)
    diag["float32_vs_float64_max_abs_diff"] = max(diffs.values())
    diag["float32_vs_float64_worst_output"] = max(diffs, key=diffs.get)
    for key in ("logits", "start_logits", "last_hidden_state"):
        if key in o64:
            diag[f"{key}_std"] = float(o64[key].std())
            diag[f"{key}_max_abs"] = float(np.abs(o64[key]).max())
            break
    if case.mode == "forward":
        sdpa = run_case(load(case_dir, case.cls, torch.float32, attn="sdpa"), case_json, arrays, torch.float32)
        diag["sdpa_vs_eager_float32_max_abs_diff"] = max(max_abs_diff(o32, sdpa).values())
    if case.mode == "cache":
        k = case.extra["split"]
        for name, o, tol in (("float32", o32, 1e-5), ("float64", o64, 1e-12)):
            full = o["logits"]
            d = max(np.abs(o["step1.logits"] - full[:, :k]).max(), np.abs(o["step2.logits"] - full[:, k:]).max(),
                    np.abs(o["steps.logits"] - full[:, k:]).max())
            diag[f"cache_vs_full_{name}_max_abs_diff"] = float(d)
            if d > tol:
                raise RuntimeError(f"{case.name}: cached logits differ from the full run by {d} in {name}")
    if case.mode == "generate":
        if not np.array_equal(o32["sequences"], o64["sequences"]):
            raise RuntimeError(f"{case.name}: float32 and float64 greedy paths differ; pick another seed")
        prompt_len = arrays["input_ids"].shape[1]
        new, hf_new = o32["sequences"][:, prompt_len:], o32["hf_generate_sequences"][:, prompt_len:]
        if np.isin(new, [BOS, PAD, EOS]).any() or np.isin(hf_new, [PAD, EOS]).any():  # keep eos handling out
            raise RuntimeError(f"{case.name}: a greedy path emits bos/pad/eos ({new}, {hf_new}); pick another seed")
        diag["hf_generate_differs"] = bool(not np.array_equal(o32["sequences"], o32["hf_generate_sequences"]))
    if case.act_gain != 1.0:
        diag.update(preactivation_stats(case_dir, case.cls, arrays))
        case_json["preactivation_range"] = [diag["preact_min"], diag["preact_max"]]
        if diag["preact_max"] < 11 or diag["preact_min"] > -11:
            raise RuntimeError(f"{case.name}: pre-activations stay inside ±11; the clipping regions go untested")
    std_key = next((k for k in diag if k.endswith("_std")), None)
    if std_key and not 0.1 < diag[std_key] < 10:  # O(1) spread: neither ~0 nor saturating
        raise RuntimeError(f"{case.name}: {std_key} = {diag[std_key]} is not O(1)")

    (case_dir / "case.json").write_text(json.dumps(case_json, indent=2) + "\n")
    write_npz(case_dir / "inputs.npz", arrays)
    write_npz(case_dir / "outputs_float32.npz", o32)
    write_npz(case_dir / "outputs_float64.npz", o64)
    return diag


def preactivation_stats(case_dir, cls_name, arrays):
    """Range of the intermediate.dense outputs (the activation's inputs) on real tokens, float64."""
    model = load(case_dir, cls_name, torch.float64)
    seen = []
    hooks = [m.intermediate.dense.register_forward_hook(lambda mod, i, o: seen.append(o))
             for m in model.base_model.encoder.layer]
    with torch.no_grad():
        model(**to_torch(arrays, torch.float64))
    for h in hooks:
        h.remove()
    mask = torch.from_numpy(arrays["attention_mask"]).bool()
    x = torch.cat([s[mask] for s in seen]).flatten()
    return {"preact_min": round(float(x.min()), 3), "preact_max": round(float(x.max()), 3),
            "preact_frac_above_6": round(float((x > 6).double().mean()), 4),
            "preact_frac_above_10": round(float((x > 10).double().mean()), 4)}


def check_case(case_dir):
    """Reload the stored checkpoint in HF, rerun the stored inputs and demand bit-identical outputs."""
    case_json = json.loads((case_dir / "case.json").read_text())
    arrays = read_npz(case_dir / "inputs.npz")
    for dtype, fname in ((torch.float32, "outputs_float32.npz"), (torch.float64, "outputs_float64.npz")):
        stored = read_npz(case_dir / fname)
        got = run_case(load(case_dir, case_json["class"], dtype), case_json, arrays, dtype)
        for k, v in stored.items():
            if got[k].dtype != v.dtype or not np.array_equal(got[k], v):
                raise RuntimeError(f"{case_dir.name}/{fname}: {k} is not reproduced")
    return True


def case_files(case_dir):
    return {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in sorted(case_dir.iterdir())}


def versions():
    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__, "safetensors": safetensors.__version__}


def write_manifest(diags):
    path = OUT_DIR / "MANIFEST.json"
    old = json.loads(path.read_text())["cases"] if path.exists() else {}
    cases = {}
    for case in CASES:
        case_dir = CASES_DIR / case.name
        if not case_dir.exists():
            continue
        entry = old.get(case.name, {}) if case.name not in diags else {"diagnostics": diags[case.name]}
        entry.update({"class": case.cls, "mode": case.mode, "seed": case.seed, "description": case.description,
                      "files": case_files(case_dir)})
        cases[case.name] = entry
    manifest = {
        "generator": SCRIPT_NAME,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions(),
        "torch_num_threads": torch.get_num_threads(),
        "attn_implementation": "eager",
        "skipped_activations": SKIPPED_ACTIVATIONS,
        "total_bytes": sum(f["bytes"] for c in cases.values() for f in c["files"].values()),
        "cases": cases,
    }
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


README_HEAD = """\
# reference_outputs: Hugging Face goldens for xlmr_np

Every number in this folder was computed by Hugging Face transformers {transformers} (torch {torch}, CPU, one
thread) on small XLM-RoBERTa checkpoints whose **every** parameter is random. xlmr_np's tests and
`python -m xlmr_np verify` compare against these files; nothing here comes from xlmr_np.

Regenerate (needs the `ref` extra: torch==2.13.0, transformers==4.57.6):

    python tools/make_reference_outputs.py            # all cases, then MANIFEST.json, this README and a self-check
    python tools/make_reference_outputs.py --only masked_lm,cache_decoder
    python tools/make_reference_outputs.py --check    # re-run HF on the stored files, demand bit-identical outputs

With the same versions the script rewrites byte-identical files (fixed zip timestamps, one torch thread);
`MANIFEST.json` holds the sha256 of every file, the versions, seeds and numeric diagnostics per case.

## Layout of a case: `cases/<case>/`

| file | content |
|---|---|
| `config.json`, `model.safetensors` | written by HF `model.save_pretrained(dir, safe_serialization=True)`: tied `lm_head.decoder.*` keys are omitted as HF omits them; float32 unless the case says `checkpoint_dtype` (float16 / bfloat16) |
| `case.json` | `class` (HF class name), `mode` (`forward`, `cache`, `generate`), `call` (non-array keyword arguments of the HF call), `description`, `seed`, and per mode `split` / `max_new_tokens` / `protocol`; `checkpoint_dtype` for half checkpoints; `intermediate_dense_weight_gain` and `preactivation_range` for activation cases |
| `inputs.npz` | one array per HF keyword: `input_ids`, `attention_mask`, `token_type_ids`, `position_ids` (int64); `head_mask`, `inputs_embeds`, `encoder_hidden_states` and non-binary masks are float64 holding float32-exact values, cast to the run dtype for each run; `encoder_attention_mask` (int64) |
| `outputs_float32.npz`, `outputs_float64.npz` | HF outputs in that dtype: field names as HF names them (`last_hidden_state`, `pooler_output`, `logits`, `start_logits`, `end_logits`), tuples flattened as `hidden_states.0` … `hidden_states.L`, `attentions.0` …, `cross_attentions.0` …; no `past_key_values`. `cache` mode: `logits`, `step1.logits`, `step2.logits`, `steps.logits`; `generate` mode: `sequences`, `step_logits`, `hf_generate_sequences` |

The npz files are zip archives in `np.savez_compressed` layout: `np.load` reads them.

## How the outputs were computed

- Each model is loaded back from its own folder with `from_pretrained(dir, dtype=torch.float32,
  attn_implementation="eager")` (the script checks that no key is missing or unexpected), put in eval mode
  (dropout off), and called with `return_dict=True`, the arrays of `inputs.npz` and the keywords in `call`.
- **Attention is `eager`.** In 4.57 sdpa falls back to eager anyway for relative positions, `head_mask` and
  `output_attentions`; elsewhere the two agree to {sdpa} in float32 on these cases (`sdpa_vs_eager_float32_max_abs_diff`
  in MANIFEST).
- float64: the same loaded model `.to(torch.float64)`, float inputs cast to float64 (they are float32-exact).
  The mask value is then `finfo(float64).min`.
- Half checkpoints (`checkpoint_f16`, `checkpoint_bf16`, `real_width`): the float32 outputs are HF's after loading the
  file with `dtype=torch.float32` (weights rounded to half when saved, then widened), float64 the same model `.to(float64)`.
- HF float32 vs HF float64 differ by at most {f32f64} over all stored outputs (per case in MANIFEST); that is the size
  of float32 rounding at these activation scales (logits reach |x| ≈ 12).

## How the random parameters are drawn

`torch.manual_seed(seed)`, then one pass over `model.named_modules()` overwrites every parameter (the script
fails if any parameter keeps HF's init):

| parameter | distribution |
|---|---|
| `nn.Embedding` weights: word, position (the padding rows too), token type, `distance_embedding` | N(0, 0.5²) |
| `nn.Linear` weight (out, in) | N(0, 1/in), so a unit-scale input gives unit-scale outputs; `intermediate.dense` × {gain} in the `act_*` cases |
| `nn.Linear` bias | N(0, 0.1²) |
| LayerNorm weight / bias | 1 + N(0, 0.2²) / N(0, 0.2²) |
| `lm_head.bias` (= `lm_head.decoder.bias`) | N(0, 0.3²) |

Tied weights stay tied (`lm_head.decoder.weight` is the word-embedding Parameter). Inputs come from
`numpy.random.default_rng(seed)`: ids are `<s>=0`, random ids in 3..V-1 (never pad 1), `</s>=2`, then pad 1 with
`attention_mask` 0 where a case pads.

Tiny config unless a case says otherwise: vocab_size 99, hidden_size 32, 2 layers, 4 heads, intermediate_size 37,
max_position_embeddings 40, type_vocab_size 1, layer_norm_eps 1e-5, pad/bos/eos 1/0/2, hidden_act "gelu",
dropout 0.1 (inactive in eval). Padded batches are 3 rows of lengths 12, 9, 5.

## Cases

| case | class | mode | size | what it covers |
|---|---|---|---|---|
"""

README_TAIL = """
Total: {total:.1f} MB ({total_mib:.2f} MiB). `real_width` alone is {rw:.1f} MB: {rw_weights:.1f} MB of float16 weights
(a 768×3072 layer pair cannot be smaller) plus its 512×768 outputs in float32 and float64.

## Not covered, and why

- `hidden_act` "prelu" and "xielu": {skipped}. They are not part of the XLM-R parameter layout.
- Cache with padding *inside* a sequence (a padded prompt continued by real tokens): HF then numbers the new tokens
  `past_len + 1 + …`, counting the cached pads, while a full-sequence run counts only non-pad tokens, so cached and
  full runs disagree by design. `cache_padded` instead pads only at the end of each row (row 2's prompt ends in pads
  and its continuation is all pads), where both agree.
- Relative position types with a cache: 4.57 uses the single query index `S-1` for every new query, which is
  right only for one-token steps; no golden.
- 4-D attention masks: 4.57 raises a ValueError (ModuleUtilsMixin.get_extended_attention_mask).

## HF 4.57.6 behaviours these cases pin down

- Positions come from `input_ids`: `cumsum(ids != pad) * (ids != pad) + pad`, so left and right padding give
  real tokens the same positions 2, 3, … and pads position 1 (`model_left_padding`, `longest` reaches position 39 = max_pos-1).
  From `inputs_embeds` they are `2..T+1` whatever the mask (`inputs_embeds`). With a cache they continue at
  `past_len + 2` (`cache_*`).
- Masks are additive `(1 - m) * finfo(dtype).min`, in the model's dtype. A fully masked query row therefore attends
  uniformly to every key (`mask_3d`, row b=2, t=3); a non-binary 2-D mask is used as weights, not binarized
  (`mask_nonbinary`); a decoder multiplies the causal mask by the padding mask.
- No `attention_mask` with padded ids means pads are attended (`model_no_attention_mask`).
- `head_mask` multiplies the attention probabilities after softmax; the returned `attentions` are the masked ones.
- The LM head always uses the erf GELU, whatever `hidden_act` is; the pooler always uses tanh. In 4.57
  `lm_head.decoder.bias` is `lm_head.bias` even when `tie_word_embeddings=False` (`masked_lm_untied` saves
  `lm_head.decoder.weight` and `lm_head.bias`, no `lm_head.decoder.bias`).
- `XLMRobertaForMultipleChoice` flattens [B, C, T] to [B·C, T] and runs with the pooler; `ForCausalLM` with
  `is_decoder=False` only warns and stays bidirectional (`causal_lm_not_decoder`).
- Greedy decoding by repeated full passes (`sequences`) differs from HF's `model.generate()`
  (`hf_generate_sequences`{gen_note}): generate passes 0-based position ids built from the attention mask
  (`cumsum - 1`), a plain forward starts at 2 (GenerationMixin.prepare_inputs_for_generation). xlmr_np follows the full-pass definition.
- Reloading shifts tensors to other memory alignments, so torch may round the last bit differently from the model
  that was saved (up to {built:.1e} here); the stored outputs are those of the reloaded model, which reruns
  bit-identically (`--check`).
"""


def write_readme(manifest):
    cases = manifest["cases"]
    diags = [c.get("diagnostics", {}) for c in cases.values()]
    rows = []
    for case in CASES:
        if case.name not in cases:
            continue
        size = sum(f["bytes"] for f in cases[case.name]["files"].values())
        desc = case.description.replace("|", "\\\\|")
        rows.append(f"| `{case.name}` | {case.cls} | {case.mode} | {size / 1e3:.0f} kB | {desc} |")
    rw = cases.get("real_width", {}).get("files", {})
    gen = cases.get("generate_greedy", {}).get("diagnostics", {})
    text = README_HEAD.format(
        transformers=manifest["versions"]["transformers"], torch=manifest["versions"]["torch"],
        sdpa=f'{max(d.get("sdpa_vs_eager_float32_max_abs_diff", 0) for d in diags):.1e}',
        f32f64=f'{max(d.get("float32_vs_float64_max_abs_diff", 0) for d in diags):.1e}',
        gain=ACT_GAIN,
    ) + "\n".join(rows) + "\n" + README_TAIL.format(
        total=manifest["total_bytes"] / 1e6, total_mib=manifest["total_bytes"] / 2**20,
        rw=sum(f["bytes"] for f in rw.values()) / 1e6, rw_weights=rw.get("model.safetensors", {"bytes": 0})["bytes"] / 1e6,
        skipped="; ".join(f"{k}: {v}" for k, v in SKIPPED_ACTIVATIONS.items()),
        gen_note=", which differs here" if gen.get("hf_generate_differs") else "",
        built=max(d.get("built_vs_reloaded_float32_max_abs_diff", 0) for d in diags),
    )
    (OUT_DIR / "README.md").write_text(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated case names to regenerate")
    parser.add_argument("--check", action="store_true", help="only verify the stored cases against HF")
    args = parser.parse_args(argv)
    for lib, want in EXPECTED_VERSIONS.items():
        have = versions()[lib].split("+")[0]
        if have != want:
            print(f"warning: {lib} {have} installed, goldens are defined for {want}", file=sys.stderr)

    names = [c.name for c in CASES]
    if len(set(names)) != len(names):
        raise RuntimeError("duplicate case names")
    selected = [c for c in CASES if args.only is None or c.name in args.only.split(",")]
    if args.only and len(selected) != len(args.only.split(",")):
        raise SystemExit(f"unknown case in --only; known: {', '.join(names)}")

    if not args.check:
        diags = {}
        for case in selected:
            diags[case.name] = generate_case(case)
            print(f"wrote {case.name:28s} {json.dumps(diags[case.name])}")
        write_readme(write_manifest(diags))

    manifest = json.loads((OUT_DIR / "MANIFEST.json").read_text())
    for case in selected:
        case_dir = CASES_DIR / case.name
        recorded = manifest["cases"][case.name]["files"]
        if {n: f["sha256"] for n, f in case_files(case_dir).items()} != {n: f["sha256"] for n, f in recorded.items()}:
            raise RuntimeError(f"{case.name}: files do not match MANIFEST.json sha256")
        check_case(case_dir)
        print(f"check {case.name:28s} ok")
    total = sum(p.stat().st_size for p in CASES_DIR.rglob("*") if p.is_file())
    print(f"{len(selected)} cases checked; reference_outputs/cases holds {total / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
