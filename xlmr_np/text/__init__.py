"""xlmr_np.text: XLM-RoBERTa's SentencePiece tokenizer with Hugging Face's API."""

from .tokenizer import SPIECE_UNDERLINE, AddedToken, BatchEncoding, XLMRobertaTokenizer

__all__ = ["XLMRobertaTokenizer", "AddedToken", "BatchEncoding", "SPIECE_UNDERLINE"]
