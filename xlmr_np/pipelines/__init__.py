"""Task pipelines with Hugging Face's post-processing: `pipeline(task, model=DIR_OR_HUB_ID, ...)`.

    from xlmr_np.pipelines import pipeline
    fill = pipeline("fill-mask", model="models/xlmr-demo")
    fill("Paris is the <mask> of France.")          # [{"score", "token", "token_str", "sequence"}, ...]

Tasks (HF's names, and short aliases): fill-mask; text-classification ("sentiment-analysis", "classify");
token-classification ("ner"); question-answering ("qa"); feature-extraction; sentence-embeddings
("embed", "embeddings"); zero-shot-classification ("zero-shot"). Results have the shapes and keys that
transformers 4.57.6 returns (sentence-embeddings: sentence-transformers' `encode`); each module's docstring
says which HF file it follows and where it deliberately differs.

Common keyword arguments: tokenizer (a folder or an XLMRobertaTokenizer; default: the model folder),
dtype ("float32" | "float64"), batch_size (default 8; inputs are sorted by length into batches so padding
is minimal), device ("cpu" | "gpu"); any other keyword becomes a default option of every call
(e.g. top_k=3).
"""
from __future__ import annotations

from .base import Pipeline, PipelineError, default_model
from .feature_extraction import FeatureExtractionPipeline, SentenceEmbeddingPipeline
from .fill_mask import FillMaskPipeline
from .question_answering import QuestionAnsweringPipeline
from .text_classification import TextClassificationPipeline
from .token_classification import TokenClassificationPipeline
from .zero_shot import ZeroShotClassificationPipeline

TASKS = {
    "fill-mask": FillMaskPipeline,
    "text-classification": TextClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "question-answering": QuestionAnsweringPipeline,
    "feature-extraction": FeatureExtractionPipeline,
    "sentence-embeddings": SentenceEmbeddingPipeline,
    "zero-shot-classification": ZeroShotClassificationPipeline,
}
ALIASES = {
    "sentiment-analysis": "text-classification", "classify": "text-classification",
    "ner": "token-classification", "qa": "question-answering", "embed": "sentence-embeddings",
    "embeddings": "sentence-embeddings", "zero-shot": "zero-shot-classification",
}


def pipeline(task: str, model=None, **kwargs) -> Pipeline:
    """A ready pipeline for `task` on the model at `model` (a directory or a hub id in the local HF cache).

    Without `model`, fill-mask, feature-extraction and sentence-embeddings use the shipped demo model and
    text-classification the shipped language identifier (models/xlmr-langid); the other tasks say what kind
    of checkpoint they need.
    """
    name = ALIASES.get(task, task)
    if name not in TASKS:
        raise PipelineError(f"unknown task {task!r}; choose one of {', '.join(TASKS)} "
                            f"(aliases: {', '.join(ALIASES)})")
    if model is None:
        model = default_model(name)  # the shipped model for the task, as the command line does
    return TASKS[name](model, **kwargs)


__all__ = ["pipeline", "Pipeline", "PipelineError", "TASKS", "ALIASES", "FillMaskPipeline",
           "TextClassificationPipeline", "TokenClassificationPipeline", "QuestionAnsweringPipeline",
           "FeatureExtractionPipeline", "SentenceEmbeddingPipeline", "ZeroShotClassificationPipeline"]
