"""What the embedding models share: a model folder loaded once, tokenisation with counted truncation, and the
encoder run on length-sorted batches that hands back each input's vectors at its real tokens only.

Every embedding model (BGE-M3, sentence-transformers bi-encoders, cross-encoders) reads the encoder's output
only at real tokens: pooling, sparse weights and ColBERT vectors skip the padding, and a reranker reads the
first token. So `token_states` gives, per input, the [T_i, D] last_hidden_state of its own tokens, computed
either on padded batches (core.model.forward, the reference) or padding-free (runtime.packed_encoder: the
projections and the FFN on the packed real tokens, attention per sequence). Both give the same vectors to
rounding (tests/test_packed_encoder.py); by default a batch is packed when padding would waste much of it.

Shape legend: B batch, T tokens, D hidden, N inputs.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings

import numpy as np

from .. import inputs as inputs_module
from ..backend import array_module, to_device, to_numpy
from ..config import XLMRobertaConfig
from ..core import model as model_module
from ..errors import PipelineError
from ..pipelines.base import load_tokenizer, pad_batch, resolve_directory
from ..runtime import kernel_set, packed_encoder
from ..weights import load_params

DTYPES = ("float32", "float64")


class EmbeddingError(PipelineError):
    """An input or a model folder that an embedding model cannot work with; the message says what to change.

    `index`: the position of the offending input in the call's list, where one input is to blame."""

    def __init__(self, message, index=None):
        super().__init__(message)
        self.index = index


class EmbeddingModel:
    """A model folder (config.json, weights, sentencepiece tokenizer) loaded for embedding or scoring.

    `head`: None for the bare encoder, or a key of weights.keys.HEADS ("sequence_classification").
    `padding_free`: None (default, "auto") packs a batch when runtime.packed_encoder applies and its padded
    form would hold more than AUTO_PADDING times its real tokens; True packs every batch (and requires that
    packing applies), False always pads. Why auto: the padded path runs on the threaded encoder (elementwise
    work on every core), the packed one spends no work on padding; length-sorted batches are mostly full.
    """

    # Measured (benchmarks/bench_corpus.py --only sweep, xlm-roberta-base shapes, 2 cores, 2026-12-01): on one batch
    # of 32, the packed path was 0.95x the padded one without padding, 1.03x at 1.11x padding, 1.11x at 1.19x and
    # 1.48x at 1.62x; 1.15 packs from where it clearly wins.
    AUTO_PADDING = 1.15

    head: str | None = None

    def __init__(self, model, tokenizer=None, dtype="float32", device="cpu", kernels=None, padding_free=None):
        if dtype not in DTYPES:
            raise EmbeddingError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.kernels = kernel_set(kernels)
        self.directory = resolve_directory(model)
        self.config = XLMRobertaConfig.from_pretrained(self.directory)
        with warnings.catch_warnings():
            # extra weights (a pooler, a head this class does not use) are fine: they stay unused
            warnings.filterwarnings("ignore", message=".*weight\\(s\\) this model does not use")
            self.params, _ = load_params(self.directory, self.config, self.head, False, np.dtype(dtype))
        if device != "cpu":
            self.params = to_device(self.params, device)
        self.tokenizer = load_tokenizer(self.directory, tokenizer)
        if padding_free and not packed_encoder.applies(self.config, self.params):
            raise EmbeddingError("padding_free=True needs NumPy parameters and an encoder without a decoder mask "
                                 "(config.is_decoder false)")
        self.padding_free = padding_free  # None: auto, per batch
        self.truncated = 0  # how many inputs the last call truncated
        self.show_progress = False

    @property
    def can_pack(self) -> bool:
        """Whether the padding-free path can serve these parameters (NumPy arrays, not a decoder)."""
        return packed_encoder.applies(self.config, self.params)

    @property
    def dtype(self):
        return np.dtype(self.params["embeddings.word"].dtype)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    # --- tokenisation -------------------------------------------------------------------------------------
    def token_limit(self, max_length=None) -> int:
        """The longest token sequence used: max_length (or the tokenizer's), capped by the position table."""
        limit = self.config.max_tokens
        if max_length is not None:
            if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
                raise EmbeddingError(f"max_length must be an integer >= 2, got {max_length!r}")
            limit = min(limit, max_length)
        return limit

    def tokenize(self, texts, pairs=None, max_length=None, on_too_long="truncate"):
        """Token ids of each text (or (text, pair)), truncated to `max_length` as HF's tokenizer truncates
        ("longest_first"). `on_too_long`: "truncate" (counted in self.truncated) or "error" (raises EmbeddingError
        naming the first input that is too long). Returns a list of id lists."""
        if on_too_long not in ("truncate", "error"):
            raise EmbeddingError(f"on_too_long must be 'truncate' or 'error', got {on_too_long!r}")
        limit = self.token_limit(max_length)
        self.truncated = 0
        if not texts:
            return []
        full = self.tokenizer(list(texts), None if pairs is None else list(pairs), verbose=False)["input_ids"]
        long_rows = [i for i, ids in enumerate(full) if len(ids) > limit]
        self.truncated = len(long_rows)
        if long_rows and on_too_long == "error":
            first = long_rows[0]
            error = EmbeddingError(f"input {first} has {len(full[first])} tokens, more than the limit of {limit} "
                                   f"({len(long_rows)} input(s) too long); shorten it or let it be truncated",
                                   index=first)
            error.detail = f"{len(full[first])} tokens, more than the limit of {limit}"
            raise error
        if long_rows:
            with quiet_pair_truncation():  # HF's slow tokenizer warns on every pair it cuts; the fast one does not
                cut = self.tokenizer([texts[i] for i in long_rows],
                                     None if pairs is None else [pairs[i] for i in long_rows],
                                     truncation="longest_first", max_length=limit, verbose=False)["input_ids"]
            full = list(full)
            for i, ids in zip(long_rows, cut):
                full[i] = ids
        return [list(ids) for ids in full]

    # --- the encoder --------------------------------------------------------------------------------------
    def padded_states(self, sequences):
        """last_hidden_state of each sequence at its real tokens ([T_i, D]), from one right-padded batch."""
        ids, mask = pad_batch(sequences, self.config.pad_token_id)  # [B, T], [B, T]
        xp = array_module(self.params["embeddings.word"])
        checked = inputs_module.prepare(self.config, xp, self.dtype, input_ids=xp.asarray(ids),
                                        attention_mask=xp.asarray(mask))
        hidden = model_module.forward(self.params, self.config, checked, kernels=self.kernels)["last_hidden_state"]
        hidden = to_numpy(hidden)  # [B, T, D]
        return [hidden[row, :len(seq)] for row, seq in enumerate(sequences)]

    def packs(self, sequences) -> bool:
        """Whether this batch runs padding-free."""
        if self.padding_free is not None:
            return bool(self.padding_free)
        if not self.can_pack or not sequences:
            return False
        lengths = [len(s) for s in sequences]
        return max(lengths) * len(lengths) > self.AUTO_PADDING * sum(lengths)

    def batch_states(self, sequences):
        """[T_i, D] per sequence of one batch: padding-free or from a padded batch (see `padding_free`)."""
        if self.packs(sequences):
            return packed_encoder.encode(self.params, self.config, sequences, kernels=self.kernels)
        return self.padded_states(sequences)

    def token_states(self, sequences, batch_size):
        """Yield (rows, states) for length-sorted batches of `sequences` (lists of ids): states[j] is the
        [T_j, D] last_hidden_state of input rows[j]. Callers put their results back in input order."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise EmbeddingError(f"batch_size must be a positive integer, got {batch_size!r}")
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        total = len(order)
        for begin in range(0, total, batch_size):
            rows = order[begin:begin + batch_size]
            yield rows, self.batch_states([sequences[i] for i in rows])
            if self.show_progress:
                done = min(begin + batch_size, total)
                print(f"\rBatches: {done}/{total} inputs", end="\n" if done == total else "", file=sys.stderr)

    def __repr__(self):
        return (f"{type(self).__name__}({os.fspath(self.directory)!r}, dtype={self.dtype.name}, "
                f"padding_free={self.padding_free})")

    def results(self, rows, single, convert_to_numpy):
        """What encode/predict return: one row for a single input, else a list, or the rows stacked [N, ...]."""
        self.show_progress = False
        if single:
            return rows[0]
        if not convert_to_numpy:
            return rows
        return np.stack(rows) if rows else np.asarray([], dtype=self.dtype)


class _DropPairTruncationNotice(logging.Filter):
    def filter(self, record):
        return "overflowing tokens are not returned" not in record.getMessage()


@contextlib.contextmanager
def quiet_pair_truncation():
    """Drop the tokenizer's "overflowing tokens are not returned" notice while the block runs (truncation is
    counted in EmbeddingModel.truncated instead)."""
    logger, notice = logging.getLogger("xlmr_np.tokenizer"), _DropPairTruncationNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def as_text_list(sentences, what="sentences"):
    """(list of strings, whether one string was given); anything but strings is an EmbeddingError."""
    single = isinstance(sentences, str)
    items = [sentences] if single else sentences
    if not isinstance(items, (list, tuple)):
        try:
            items = list(items)
        except TypeError:
            raise EmbeddingError(f"{what} must be a string or a list of strings, got {type(sentences).__name__}") \
                from None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise EmbeddingError(f"{what}[{i}] must be a string, got {type(item).__name__}")
    return list(items), single


def l2_normalize(x):
    """x / max(||x||_2, 1e-12) along the last axis (torch.nn.functional.normalize)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def linear(x, weight, bias=None):
    """x W^T + b (torch.nn.Linear) for the small heads read from side files."""
    out = x @ weight.T
    return out + bias if bias is not None else out
