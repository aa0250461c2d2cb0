"""xlmr_np.text: XLM-RoBERTa's SentencePiece tokenizer with Hugging Face's API."""

from .added_tokens import AddedToken
from .pieces import SPIECE_UNDERLINE
from .tokenizer import BatchEncoding, XLMRobertaTokenizer

__all__ = ["XLMRobertaTokenizer", "AddedToken", "BatchEncoding", "SPIECE_UNDERLINE"]
