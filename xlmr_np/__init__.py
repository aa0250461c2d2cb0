"""xlmr_np: XLM-RoBERTa in plain, readable NumPy, checked against Hugging Face's outputs.

    import xlmr_np
    model = xlmr_np.XLMRobertaForMaskedLM.from_pretrained("path/to/checkpoint")
    logits = model(input_ids=[[0, 35378, 6661, 38, 2]]).logits
"""

__version__ = "0.1.0"

from . import model  # noqa: F401  (the functional core, importable for teaching: xlmr_np.model.encoder)
from .config import XLMRobertaConfig
from .modeling import (XLMRobertaForCausalLM, XLMRobertaForMaskedLM, XLMRobertaForMultipleChoice,
                       XLMRobertaForQuestionAnswering, XLMRobertaForSequenceClassification,
                       XLMRobertaForTokenClassification, XLMRobertaModel, XLMRobertaPreTrainedModel)

from .pipelines import pipeline

from .text import XLMRobertaTokenizer

__all__ = [
    "XLMRobertaConfig", "XLMRobertaModel", "XLMRobertaForMaskedLM", "XLMRobertaForCausalLM",
    "XLMRobertaForSequenceClassification", "XLMRobertaForMultipleChoice", "XLMRobertaForTokenClassification",
    "XLMRobertaForQuestionAnswering", "XLMRobertaPreTrainedModel", "XLMRobertaTokenizer", "pipeline", "__version__",
]
