"""What every task pipeline shares: loading a model directory, length-sorted batching, truncation.

Reference behaviour: transformers 4.57.6 `pipelines/base.py` (`Pipeline`, `ChunkPipeline`, `pad_collate_fn`).
HF runs one input at a time unless `batch_size` is given, and then pads each batch to its longest member in
input order. Here inputs (or their chunks: QA windows, zero-shot pairs) are sorted by token count and cut into
batches of similar length, so padding is minimal; results go back to the input order. Padding changes
nothing but rounding: pad positions are masked out of attention, as in HF.

Shape legend: B batch, T tokens, D hidden.
"""
from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from .. import inputs as inputs_module
from ..backend import array_module, to_device, to_numpy
from ..config import XLMRobertaConfig
from ..core import model as model_module
from ..errors import PipelineError, WeightsError
from ..runtime import kernel_set
from ..weights import load_params, resolve_model_dir

DTYPES = ("float32", "float64")

# what each head is called in the checkpoint, for error messages
HEAD_WEIGHTS = {
    "masked_lm": "an LM head (lm_head.* weights, as XLMRobertaForMaskedLM saves)",
    "sequence_classification": "a sequence-classification head (classifier.dense / classifier.out_proj, as "
                               "XLMRobertaForSequenceClassification saves)",
    "token_classification": "a token-classification head (classifier.weight/bias, as "
                            "XLMRobertaForTokenClassification saves)",
    "question_answering": "a question-answering head (qa_outputs.*, as XLMRobertaForQuestionAnswering saves)",
}


# The models shipped with xlmr_np (models/ in the repository, <prefix>/share/xlmr_np/models after a regular
# install) and the tasks each serves without model=: the same defaults as the command line.
SHIPPED_MODELS = {
    "xlmr-demo": ("fill-mask", "feature-extraction", "sentence-embeddings"),
    "xlmr-langid": ("text-classification",),  # language identification, 23 languages (its README.md)
}
# what to pass for the other tasks (tiny random checkpoints made by tools/make_pipeline_goldens.py to try them)
NEEDS = {
    "token-classification": ("a token-classification (NER) checkpoint", "reference_outputs/pipelines/ner"),
    "question-answering": ("a question-answering checkpoint", "reference_outputs/pipelines/qa"),
    "zero-shot-classification": ("an NLI checkpoint (entailment label)", "reference_outputs/pipelines/nli"),
}


def shipped_model(name: str) -> Path:
    """The folder of a shipped model: beside the package (a checkout or an editable install), or where a regular
    `pip install` puts it (setup.cfg data_files)."""
    package = Path(__file__).resolve().parents[1]  # xlmr_np/
    for candidate in (package.parent / "models" / name, Path(sys.prefix) / "share" / "xlmr_np" / "models" / name):
        if (candidate / "config.json").is_file():
            return candidate
    raise PipelineError(f"the shipped model {name} is not installed (looked beside {package} and under "
                        f"{sys.prefix}/share/xlmr_np/models); pass model=DIR")


def default_model(task: str) -> Path:
    """The shipped model that serves `task` when no model is given, or an error saying what the task needs."""
    for name, tasks in SHIPPED_MODELS.items():
        if task in tasks:
            return shipped_model(name)
    kind, example = NEEDS.get(task, ("a checkpoint for this task", None))
    hint = f" (a tiny random one to try it: {example} in the repository)" if example else ""
    raise PipelineError(f"the {task} pipeline needs {kind}: pass model=DIR{hint}; no shipped model serves it")


def resolve_directory(model):
    """A local model directory: a path, or a hub id found through xlmr_np.weights.resolve_model_dir."""
    return Path(resolve_model_dir(model))


def load_tokenizer(directory, tokenizer=None):
    """The tokenizer object given, or the one saved in `directory` (sentencepiece.bpe.model + json files)."""
    from ..text import XLMRobertaTokenizer

    if tokenizer is None:
        tokenizer = directory
    if isinstance(tokenizer, (str, os.PathLike)):
        path = Path(tokenizer)
        if not (path / "sentencepiece.bpe.model").is_file():
            raise PipelineError(f"{path} has no sentencepiece.bpe.model: pass tokenizer=DIR (a folder with the "
                                f"XLM-R sentencepiece model) or a tokenizer object")
        return XLMRobertaTokenizer.from_pretrained(path)
    return tokenizer


class Pipeline:
    """Base class: holds config, parameters and tokenizer, and runs the encoder on padded batches.

    Subclasses set `task`, `head` (a key of weights.keys.HEADS, or None for the bare encoder) and implement
    `__call__`. Keyword arguments given to the constructor become defaults for every call.
    """

    task = ""
    head: str | None = None
    OPTIONS: dict = {}  # call options and their defaults

    def __init__(self, model, tokenizer=None, dtype="float32", batch_size=8, device="cpu", kernels=None, **defaults):
        self.kernels = kernel_set(kernels)  # "fast" (default, or $XLMR_NP_KERNELS) or "reference"
        if dtype not in DTYPES:
            raise PipelineError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise PipelineError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.directory = resolve_directory(model)
        self.config = XLMRobertaConfig.from_pretrained(self.directory)
        self.check_config(self.config)
        self.params = self._load_params(dtype)
        if device != "cpu":
            self.params = to_device(self.params, device)
        self.tokenizer = load_tokenizer(self.directory, tokenizer)
        self.batch_size = batch_size
        self.defaults = self.options(dict(defaults), self.OPTIONS)
        self.progress = None  # optional callable(done, total), called after each batch (the CLI's progress bar)
        self._warned = set()

    # --- loading ----------------------------------------------------------------------------------------
    def check_config(self, config):
        """Raise PipelineError if the config cannot serve this task (overridden where it matters)."""

    def _load_params(self, dtype):
        try:
            with warnings.catch_warnings():
                # A checkpoint with more heads than this task needs is fine: the other weights stay unused.
                warnings.filterwarnings("ignore", message=".*weight\\(s\\) this model does not use")
                params, _ = load_params(self.directory, self.config, self.head, False, np.dtype(dtype))
        except WeightsError as err:
            if self.head is not None and re.search(r"lacks \d+ weight", str(err)):
                archs = ", ".join(self.config.architectures or ["(not stated in config.json)"])
                raise PipelineError(
                    f"the {self.task!r} pipeline needs {HEAD_WEIGHTS[self.head]}, but {self.directory} does not "
                    f"have one (architectures: {archs}); use a checkpoint fine-tuned for this task") from err
            raise
        return params

    def warn_once(self, key: str, message: str):
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    # --- options ----------------------------------------------------------------------------------------
    def options(self, given: dict, allowed: dict) -> dict:
        """Merge call options over constructor defaults over `allowed` (name -> default); unknown names raise."""
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise PipelineError(f"the {self.task} pipeline got unknown option(s) {unknown}; "
                                f"known: {sorted(allowed)}")
        merged = dict(allowed)
        merged.update({k: v for k, v in getattr(self, "defaults", {}).items() if k in allowed})
        merged.update(given)
        return merged

    @property
    def max_tokens(self) -> int:
        """Longest token sequence the model accepts: the tokenizer's model_max_length, capped by the positions."""
        limit = self.config.max_tokens
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < limit:
            limit = tokenizer_limit
        return limit

    def encode(self, text, text_pair=None, truncation="longest_first", what="input"):
        """Token ids of one text (or pair); too long inputs are truncated to `max_tokens` with a warning.

        HF's fill-mask/text-classification/feature-extraction pipelines do not truncate, so a long input fails
        inside the model (an index error); here it is cut to the model's limit and a warning says so.
        """
        enc = self.tokenizer(text, text_pair, verbose=False)
        ids = list(enc["input_ids"])
        if len(ids) > self.max_tokens:
            self.warn_once("truncated", f"{what} of {len(ids)} tokens truncated to the model's limit of "
                                        f"{self.max_tokens} tokens ({truncation} truncation)")
            enc = self.tokenizer(text, text_pair, truncation=truncation, max_length=self.max_tokens, verbose=False)
            ids = list(enc["input_ids"])
        return ids

    def encode_texts(self, inputs):
        """One string or a list of them, each checked and encoded: (a list of id lists, whether one was given)."""
        texts, single = as_list(inputs, "text")
        sequences = []
        for i, text in enumerate(texts):
            check_text(text, f"input {i}")
            sequences.append(self.encode(text, what=f"input {i}"))
        return sequences, single

    # --- the model --------------------------------------------------------------------------------------
    def checked_inputs(self, ids, mask):
        """Padded ids/mask [B, T] (NumPy) as the model's checked inputs, on the parameters' backend."""
        word = self.params["embeddings.word"]
        xp = array_module(word)
        return inputs_module.prepare(self.config, xp, word.dtype, input_ids=xp.asarray(ids),
                                     attention_mask=xp.asarray(mask))

    def hidden_states(self, ids, mask):
        """last_hidden_state [B, T, D] of the encoder for padded ids/mask [B, T] (on the parameters' backend)."""
        checked = self.checked_inputs(ids, mask)
        return model_module.forward(self.params, self.config, checked, kernels=self.kernels)["last_hidden_state"]

    def run_batches(self, sequences, compute, batch_size=None):
        """compute(ids [B, T], mask [B, T], rows) for length-sorted batches; results in input order.

        `sequences` is a list of token-id lists; `compute` returns one result per row of its batch.
        """
        batch_size = batch_size or self.batch_size
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        results = [None] * len(sequences)
        done = 0
        for begin in range(0, len(order), batch_size):
            rows = order[begin:begin + batch_size]
            ids, mask = pad_batch([sequences[i] for i in rows], self.config.pad_token_id)  # [B, T], [B, T]
            for i, result in zip(rows, compute(ids, mask, rows)):
                results[i] = result
            done += len(rows)
            if self.progress is not None:
                self.progress(done, len(sequences))
        return results

    def __repr__(self):
        return f"{type(self).__name__}(task={self.task!r}, model={os.fspath(self.directory)!r})"


def pad_batch(sequences, pad_id):
    """Right-pad token lists to the longest: ids [B, T] (pad_id) and attention mask [B, T] (0 at padding)."""
    length = max(len(s) for s in sequences)
    ids = np.full((len(sequences), length), pad_id, dtype=np.int64)  # [B, T]
    mask = np.zeros((len(sequences), length), dtype=np.int64)  # [B, T]
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    return ids, mask


def host(array):
    """A NumPy array from any backend (post-processing runs on the host)."""
    return to_numpy(array)


def as_list(inputs, what: str):
    """(list of inputs, whether a single one was given): HF unwraps the result of a single input."""
    if isinstance(inputs, (list, tuple)):
        if len(inputs) == 0:
            raise PipelineError(f"no {what} given: pass a string or a non-empty list")
        return list(inputs), False
    return [inputs], True


def check_text(text, where: str):
    if not isinstance(text, str):
        raise PipelineError(f"{where} must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates (e.g. undecodable bytes read with surrogateescape)
        raise PipelineError(f"{where} is not valid Unicode text: {text[err.start:err.end]!r} at character "
                            f"{err.start} is a lone surrogate; decode the input with errors='replace'") from None
