"""xlmr_np: XLM-RoBERTa in plain, readable NumPy, checked against Hugging Face's outputs.

    import xlmr_np
    model = xlmr_np.XLMRobertaForMaskedLM.from_pretrained("path/to/checkpoint")
    logits = model(input_ids=[[0, 35378, 6661, 38, 2]]).logits

The names below are imported on first use (PEP 562), so `import xlmr_np.core` needs numpy only and
`xlmr_np.XLMRobertaModel` does not need sentencepiece: only the tokenizer and the pipelines do.
"""
from __future__ import annotations

import importlib
import warnings

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "XLMRobertaConfig": "config",
    "XLMRobertaPreTrainedModel": "modeling",
    "XLMRobertaModel": "modeling",
    "XLMRobertaForMaskedLM": "modeling",
    "XLMRobertaForCausalLM": "modeling",
    "XLMRobertaForSequenceClassification": "modeling",
    "XLMRobertaForMultipleChoice": "modeling",
    "XLMRobertaForTokenClassification": "modeling",
    "XLMRobertaForQuestionAnswering": "modeling",
    "XLMRobertaTokenizer": "text",
    "pipeline": "pipelines",
    "BGEM3": "embeddings",
    "SentenceTransformer": "embeddings",
    "CrossEncoder": "embeddings",
}

# the functional core's old addresses (xlmr_np.model.encoder, ...), kept for one release
_MOVED = {"model": "core.model", "ops": "core.ops", "heads": "core.heads"}

# subpackages and modules reachable as attributes before anything imported them (xlmr_np.inputs.prepare)
_SUBMODULES = ("audit", "backend", "cli", "config", "core", "embeddings", "errors", "generation", "inputs",
               "integrations", "modeling", "outputs", "pipelines", "runtime", "text", "weights")

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _MOVED:
        warnings.warn(f"xlmr_np.{name} is now xlmr_np.{_MOVED[name]}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        value = importlib.import_module(f".{_MOVED[name]}", __name__)
    else:
        raise AttributeError(f"module 'xlmr_np' has no attribute {name!r}")
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | set(_MOVED) | set(_SUBMODULES))
