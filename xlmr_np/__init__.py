"""xlmr_np: XLM-RoBERTa in plain, readable NumPy."""

__version__ = "0.1.0"
