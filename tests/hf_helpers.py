"""Random Hugging Face XLM-R models for live parity tests (transformers 4.57.6, torch CPU).

Import only after `pytest.importorskip("torch")` and `pytest.importorskip("transformers")`: this module
needs both. It builds a transformers model from a config dict, replaces EVERY parameter with random values
(so that no zero bias, unit LayerNorm or zero padding row can hide a bug), saves it as HF's
`save_pretrained` does, and turns HF outputs into flat {name: ndarray} dicts for comparison.
"""
from __future__ import annotations

import numpy as np
import torch
import transformers
from torch import nn

HF_CLASSES = (
    "XLMRobertaModel", "XLMRobertaForMaskedLM", "XLMRobertaForCausalLM", "XLMRobertaForSequenceClassification",
    "XLMRobertaForMultipleChoice", "XLMRobertaForTokenClassification", "XLMRobertaForQuestionAnswering",
)


def randomise_parameters(model: nn.Module, seed: int) -> None:
    """Overwrite every parameter, in place, from a seeded generator.

    Linear weight ~ N(0, 1/sqrt(fan_in)) (standard deviation), Linear bias ~ N(0, 0.1); LayerNorm weight
    1 + N(0, 0.2), bias N(0, 0.2); every embedding table, padding rows included, ~ N(0, 0.5). Tied
    parameters (lm_head.decoder.weight = word embeddings) are one tensor and are drawn once.
    """
    generator = torch.Generator().manual_seed(seed)
    done = set()

    def fill(tensor, mean, std):
        if id(tensor) in done:
            return
        done.add(id(tensor))
        noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float64)
        tensor.copy_((mean + std * noise).to(tensor.dtype))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                fill(module.weight, 0.0, module.in_features ** -0.5)
                if module.bias is not None:
                    fill(module.bias, 0.0, 0.1)
            elif isinstance(module, nn.LayerNorm):
                fill(module.weight, 1.0, 0.2)
                fill(module.bias, 0.0, 0.2)
            elif isinstance(module, nn.Embedding):
                fill(module.weight, 0.0, 0.5)
        # Parameters no module above owns (the LM head's separate bias vector `lm_head.bias`).
        for name, param in model.named_parameters():
            if id(param) not in done:
                fill(param, 0.0, 0.1)
    missed = [name for name, param in model.named_parameters() if id(param) not in done]
    assert not missed, f"parameters left at their initial values: {missed}"


def random_hf_model(class_name: str, config: dict, seed: int, directory=None):
    """A transformers model of `class_name` with every parameter random, in eval mode, float32.

    With `directory`, the model is also saved there (config.json + model.safetensors).
    """
    hf_config = transformers.XLMRobertaConfig(attn_implementation="eager", **config)
    torch.manual_seed(seed)  # HF's own initialisation, overwritten below, but keep it reproducible too
    model = getattr(transformers, class_name)(hf_config).eval()
    randomise_parameters(model, seed)
    if directory is not None:
        model.save_pretrained(directory, safe_serialization=True)
    return model


def to_torch(value, dtype):
    """NumPy inputs -> torch tensors: integer arrays stay int64, floats become `dtype`."""
    if value is None:
        return None
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.integer):
        return torch.from_numpy(array.astype(np.int64))
    return torch.from_numpy(array).to(dtype)


def flatten_outputs(output) -> dict:
    """A HF or xlmr_np output -> {"logits": array, "hidden_states.0": array, "past_key_values.0.1": ...}.

    HF cache objects become the legacy (k, v[, cross_k, cross_v]) tuples; `loss` is not an output here.
    """
    flat = {}

    def visit(name, value):
        if value is None:
            return
        if isinstance(value, transformers.cache_utils.Cache):
            value = value.to_legacy_cache()
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                visit(f"{name}.{i}", item)
        elif isinstance(value, torch.Tensor):
            flat[name] = value.detach().cpu().numpy().copy()  # HF may reuse its cache tensors later
        else:
            flat[name] = np.asarray(value)

    for key in output.keys():
        if key != "loss":
            visit(key, output[key])
    return flat
