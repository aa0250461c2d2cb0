"""Record Hugging Face 4.57.6 pipeline outputs for xlmr_np's pipeline tests.

Builds small XLM-RoBERTa checkpoints whose every parameter is random and whose vocabulary is the shipped
multilingual tokenizer's (reference_outputs/tokenizer, vocab_size = len(tokenizer) = 8002), one per head
(masked LM, 3-label and 1-label sequence classifiers, a BIO token classifier, QA, two NLI heads with the
entailment label in different places, a bare encoder, and a sentence-transformers folder), and runs
`transformers.pipeline(...)` on each task and option. Nothing here comes from xlmr_np.

Tokenizers: fill-mask, text-classification, zero-shot and feature-extraction run with HF's *slow*
XLMRobertaTokenizer (what xlmr_np.tokenizer reproduces). token-classification and question-answering need
character offsets, which only HF's *fast* tokenizer returns: those cases run with XLMRobertaTokenizerFast
converted from the same sentencepiece model (no tokenizer.json, so 4.57.6's SpmConverter pipeline:
Precompiled + Strip(right) + Replace("  +" -> "▁") normaliser, Metaspace(split=True) pre-tokeniser).
xlmr_np's offsets are that tokenizer's (xlmr_np/text/fast_offsets.py), so the inputs include the spots where
they differ from sentencepiece's own spans (leading, doubled and trailing spaces, tabs and newlines, a lone
"▁" piece, unknown and control characters, combining marks): QUIRKY_NER and QUIRKY_CONTEXT.

Sentence-embedding goldens come from sentence-transformers' own Pooling/Normalize modules applied to HF's
last_hidden_state (sentence-transformers 6.2 needs transformers 5; its Pooling module alone works with
4.57.6: `pip install sentence-transformers`, then put transformers==4.57.6 back).

Written: reference_outputs/pipelines/<model>/{config.json, model.safetensors} (the tokenizer is the shared
reference_outputs/tokenizer; the sentence-transformers folder adds modules.json, 1_Pooling/, 2_Normalize/),
reference_outputs/pipelines/goldens.json (one record per call: task, model, inputs, options, HF's result),
reference_outputs/pipelines/MANIFEST.json (versions, seeds, sha256 of every file).

Usage: python tools/make_pipeline_goldens.py   (about a minute; torch runs on one thread)
"""

import datetime
import hashlib
import json
import logging
import platform
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import sentencepiece
import torch
import transformers
from transformers import (XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaForQuestionAnswering,
                          XLMRobertaForSequenceClassification, XLMRobertaForTokenClassification, XLMRobertaModel,
                          XLMRobertaTokenizer, XLMRobertaTokenizerFast)

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = ROOT / "reference_outputs" / "tokenizer"
OUT = ROOT / "reference_outputs" / "pipelines"

NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]

# name -> (HF class, config overrides, seed, parameter scale)
MODELS = {
    "masked_lm": (XLMRobertaForMaskedLM, {}, 101),
    "classifier": (XLMRobertaForSequenceClassification,
                   {"id2label": {0: "negative", 1: "neutral", 2: "positive"}}, 102),
    "scorer": (XLMRobertaForSequenceClassification, {"id2label": {0: "relevance"}}, 103),
    "regressor": (XLMRobertaForSequenceClassification,
                  {"id2label": {0: "LABEL_0"}, "problem_type": "regression"}, 104),
    "ner": (XLMRobertaForTokenClassification, {"id2label": dict(enumerate(NER_LABELS))}, 105),
    "qa": (XLMRobertaForQuestionAnswering, {}, 106),
    "nli": (XLMRobertaForSequenceClassification,
            {"id2label": {0: "contradiction", 1: "neutral", 2: "entailment"}}, 107),
    "nli_entailment_first": (XLMRobertaForSequenceClassification,
                             {"id2label": {0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"}}, 108),
    "encoder": (XLMRobertaModel, {}, 109),
}

SENTENCES = [
    "Paris is the capital of France.",
    "Das Wetter ist heute schön, aber morgen regnet es.",
    "Je pense donc je suis.",
    "Мы любим читать книги вечером.",
    "東京は日本の首都です。",
    "The file could not be opened: permission denied.",
]
NER_SENTENCES = [
    "Angela Merkel met Emmanuel Macron in Berlin.",
    "My name is Wolfgang and I live in Berlin.",
    "Apple Inc. opened a new office in São Paulo, Brazil.",
    "Предприятие Газпром находится в Москве.",
]
LONG_NER = ("The committee in Geneva met on Monday. " * 6).strip()
# where the fast tokenizer's offsets differ from sentencepiece's spans (see the module docstring)
QUIRKY_NER = ["  Angela  Merkel\tmet   Emmanuel Macron in\nBerlin.  ", "\x07Wolfgang lives in ☃ Berlin",
              "Apple\u3000Inc. opened   an office in Sa\u0303o Paulo ﬁne\x07 ", " ☃  Gazprom  в  Москве"]
QUIRKY_CONTEXT = ("  My name is  Wolfgang\tand I live in\nBerlin.   I work for the city ☃ library,  where we keep "
                  "old maps\x07 and letters.  ")
CONTEXT = ("My name is Wolfgang and I live in Berlin. I work for the city library, where we keep old maps, "
           "letters and photographs. On weekends I travel to Hamburg or Munich to visit my family.")
LONG_CONTEXT = " ".join([CONTEXT] * 3)


def config_for(overrides):
    base = dict(vocab_size=8002, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=32, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                pad_token_id=1, bos_token_id=0, eos_token_id=2)
    base.update(overrides)
    if "id2label" in base:
        base["label2id"] = {v: k for k, v in base["id2label"].items()}
    return XLMRobertaConfig(**base)


def randomize_(model, seed):
    """Every parameter random: weights N(0, 0.4^2) (so outputs are far from uniform), norms around 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            values = torch.randn(param.shape, generator=gen, dtype=torch.float64) * 0.4
            if "LayerNorm" in name or "layer_norm" in name:
                values = 1.0 + values if name.endswith("weight") else values * 0.25
            param.copy_(values.to(param.dtype))


def build_models():
    made = {}
    for name, (cls, overrides, seed) in MODELS.items():
        torch.manual_seed(seed)
        model = cls(config_for(overrides)).eval()
        randomize_(model, seed)
        folder = OUT / name
        if folder.exists():
            shutil.rmtree(folder)
        model.save_pretrained(folder, safe_serialization=True)  # the tokenizer stays in TOKENIZER_DIR (shared)
        made[name] = model
    # a sentence-transformers folder around the encoder: modules.json + 1_Pooling/config.json (+ Normalize)
    for name, pooling, normalize in (("st_cls_normalized", "cls", True),):
        folder = OUT / name
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(OUT / "encoder", folder)
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
            (folder / "2_Normalize").mkdir()
        (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
        (folder / "1_Pooling").mkdir()
        legacy = {"word_embedding_dimension": 16, "pooling_mode_cls_token": pooling == "cls",
                  "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
                  "pooling_mode_mean_sqrt_len_tokens": False}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(legacy, indent=2) + "\n")
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}) + "\n")
    return made


def to_json(value):
    """HF results (floats, numpy scalars, nested lists/dicts) as plain JSON values."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, torch.Tensor):
        return to_json(value.tolist())
    return value


def cases():
    """(name, hf task, model, tokenizer kind, pipeline(...) kwargs, call args, call kwargs)."""
    masked = [s.replace("capital", "<mask>") for s in SENTENCES[:1]] + [
        "Das Wetter ist heute <mask>, aber morgen regnet es.", "Je pense donc je <mask>.",
        "Мы любим <mask> книги вечером."]
    out = [
        ("fill_mask_single", "fill-mask", "masked_lm", "slow", {}, [masked[0]], {}),
        ("fill_mask_batch", "fill-mask", "masked_lm", "slow", {}, [masked], {}),
        ("fill_mask_list_of_one", "fill-mask", "masked_lm", "slow", {}, [[masked[1]]], {}),
        ("fill_mask_top_k", "fill-mask", "masked_lm", "slow", {}, [masked[2]], {"top_k": 12}),
        ("fill_mask_two_masks", "fill-mask", "masked_lm", "slow", {}, ["<mask> is the <mask> of France."],
         {"top_k": 3}),
        ("fill_mask_targets", "fill-mask", "masked_lm", "slow", {}, [masked[0]],
         {"targets": ["▁Paris", "▁city", "Berlin", "▁the", "▁city"], "top_k": 10}),
        ("fill_mask_target_str", "fill-mask", "masked_lm", "slow", {}, [masked[3]], {"targets": "▁книги"}),
        ("fill_mask_batch_size", "fill-mask", "masked_lm", "slow", {"batch_size": 3}, [masked], {"top_k": 2}),
        ("classify_legacy", "text-classification", "classifier", "slow", {}, [SENTENCES[0]], {}),
        ("classify_legacy_batch", "text-classification", "classifier", "slow", {}, [SENTENCES], {}),
        ("classify_top_k_none", "text-classification", "classifier", "slow", {}, [SENTENCES[1]], {"top_k": None}),
        ("classify_top_k_2", "text-classification", "classifier", "slow", {}, [SENTENCES[:3]], {"top_k": 2}),
        ("classify_sigmoid", "text-classification", "classifier", "slow", {}, [SENTENCES[2]],
         {"function_to_apply": "sigmoid", "top_k": None}),
        ("classify_none", "text-classification", "classifier", "slow", {}, [SENTENCES[3]],
         {"function_to_apply": "none", "top_k": None}),
        ("classify_pair", "text-classification", "classifier", "slow", {},
         [{"text": "Where is the capital?", "text_pair": SENTENCES[0]}], {}),
        ("classify_pairs", "text-classification", "scorer", "slow", {},
         [[{"text": "Where is the capital?", "text_pair": s} for s in SENTENCES[:4]]], {"top_k": 1}),
        ("classify_single_label_sigmoid", "text-classification", "scorer", "slow", {}, [SENTENCES[4]], {}),
        ("classify_regression", "text-classification", "regressor", "slow", {}, [SENTENCES[5]], {}),
        ("ner_none", "token-classification", "ner", "fast", {}, [NER_SENTENCES[0]], {}),
        ("ner_none_all_labels", "token-classification", "ner", "fast", {}, [NER_SENTENCES[1]],
         {"ignore_labels": []}),
        ("ner_batch", "token-classification", "ner", "fast", {}, [NER_SENTENCES], {}),
        ("ner_long_stride", "token-classification", "ner", "fast", {"tokenizer_max": 32}, [LONG_NER],
         {"aggregation_strategy": "simple", "stride": 8}),
        ("ner_quirky_none", "token-classification", "ner", "fast", {}, [QUIRKY_NER], {}),
        ("ner_quirky_simple", "token-classification", "ner", "fast", {}, [QUIRKY_NER],
         {"aggregation_strategy": "simple"}),
        ("ner_quirky_first_keep_o", "token-classification", "ner", "fast", {}, [QUIRKY_NER],
         {"aggregation_strategy": "first", "ignore_labels": []}),
        ("ner_quirky_average", "token-classification", "ner", "fast", {}, [QUIRKY_NER],
         {"aggregation_strategy": "average"}),
    ]
    for strategy in ("simple", "first", "average", "max"):
        out.append((f"ner_{strategy}", "token-classification", "ner", "fast", {}, [NER_SENTENCES],
                    {"aggregation_strategy": strategy}))
        out.append((f"ner_{strategy}_keep_o", "token-classification", "ner", "fast", {}, [NER_SENTENCES[2]],
                    {"aggregation_strategy": strategy, "ignore_labels": []}))
    questions = ["Where do I live?", "What is my name?", "Where does my family live?"]
    out += [
        ("qa_single", "question-answering", "qa", "fast", {}, [], {"question": questions[0], "context": CONTEXT}),
        ("qa_top_k", "question-answering", "qa", "fast", {}, [],
         {"question": questions[1], "context": CONTEXT, "top_k": 5}),
        ("qa_batch", "question-answering", "qa", "fast", {}, [],
         {"question": questions, "context": CONTEXT, "top_k": 2}),
        ("qa_impossible", "question-answering", "qa", "fast", {}, [],
         {"question": questions[2], "context": CONTEXT, "top_k": 3, "handle_impossible_answer": True}),
        ("qa_max_answer_len", "question-answering", "qa", "fast", {}, [],
         {"question": questions[0], "context": CONTEXT, "top_k": 4, "max_answer_len": 2}),
        ("qa_no_align", "question-answering", "qa", "fast", {}, [],
         {"question": questions[0], "context": CONTEXT, "top_k": 4, "align_to_words": False}),
        ("qa_windows", "question-answering", "qa", "fast", {}, [],
         {"question": questions[2], "context": LONG_CONTEXT, "top_k": 3, "max_seq_len": 48, "doc_stride": 16}),
        ("qa_quirky", "question-answering", "qa", "fast", {}, [],
         {"question": questions[0], "context": QUIRKY_CONTEXT, "top_k": 6}),
        ("qa_quirky_no_align", "question-answering", "qa", "fast", {}, [],
         {"question": " Where   do I live? ", "context": QUIRKY_CONTEXT, "top_k": 6, "align_to_words": False}),
        ("qa_quirky_windows", "question-answering", "qa", "fast", {}, [],
         {"question": questions[1], "context": QUIRKY_CONTEXT * 2, "top_k": 4, "max_seq_len": 32,
          "doc_stride": 8}),
        ("qa_windows_default", "question-answering", "qa", "fast", {}, [],
         {"question": questions[1], "context": " ".join([CONTEXT] * 12), "top_k": 2}),
    ]
    labels = ["politics", "weather", "philosophy", "travel"]
    out += [
        ("zero_shot", "zero-shot-classification", "nli", "slow", {}, [SENTENCES[1]], {"candidate_labels": labels}),
        ("zero_shot_batch", "zero-shot-classification", "nli", "slow", {}, [SENTENCES[:3]],
         {"candidate_labels": "politics, weather ,philosophy"}),
        ("zero_shot_multi_label", "zero-shot-classification", "nli", "slow", {}, [SENTENCES[2]],
         {"candidate_labels": labels, "multi_label": True}),
        ("zero_shot_one_label", "zero-shot-classification", "nli", "slow", {}, [SENTENCES[0]],
         {"candidate_labels": ["travel"]}),
        ("zero_shot_template", "zero-shot-classification", "nli", "slow", {}, [SENTENCES[3]],
         {"candidate_labels": labels, "hypothesis_template": "Dieser Text handelt von {}."}),
        ("zero_shot_entailment_first", "zero-shot-classification", "nli_entailment_first", "slow", {},
         [SENTENCES[4]], {"candidate_labels": labels, "multi_label": True}),
        ("features_single", "feature-extraction", "encoder", "slow", {}, [SENTENCES[0]], {}),
        ("features_batch", "feature-extraction", "encoder", "slow", {}, [SENTENCES[:3]], {}),
    ]
    return out


def hf_pipeline(task, name, kind, options):
    folder = OUT / name
    options = dict(options)
    tokenizer = (XLMRobertaTokenizer if kind == "slow" else XLMRobertaTokenizerFast).from_pretrained(TOKENIZER_DIR)
    if "tokenizer_max" in options:
        tokenizer.model_max_length = options.pop("tokenizer_max")
    return transformers.pipeline(task, model=str(folder), tokenizer=tokenizer, device="cpu", **options)


def embedding_goldens():
    """Pooled sentence embeddings from sentence-transformers' modules on HF's last_hidden_state."""
    from sentence_transformers.models import Normalize, Pooling

    tokenizer = XLMRobertaTokenizer.from_pretrained(TOKENIZER_DIR)
    model = XLMRobertaModel.from_pretrained(OUT / "encoder").eval()
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        tokens = model(**enc).last_hidden_state
    records = []
    modes = ["mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", ("cls", "mean", "max")]
    for mode in modes:
        for normalize in (False, True):
            features = {"token_embeddings": tokens, "attention_mask": enc["attention_mask"]}
            out = Pooling(16, pooling_mode=mode)(features)
            if normalize:
                out = Normalize()(out)
            name = mode if isinstance(mode, str) else "_".join(mode)
            records.append({"name": f"embed_{name}{'_normalized' if normalize else ''}", "task": "sentence-embeddings",
                            "model": "encoder", "pipeline": {"batch_size": 4}, "args": [SENTENCES],
                            "kwargs": {"pooling": mode if isinstance(mode, str) else ",".join(mode),
                                       "normalize": normalize},
                            "expected": to_json(out["sentence_embedding"])})
    for name, mode, normalize in (("st_cls_normalized", "cls", True),):
        features = {"token_embeddings": tokens, "attention_mask": enc["attention_mask"]}
        out = Pooling(16, pooling_mode=mode)(features)
        if normalize:
            out = Normalize()(out)
        records.append({"name": f"embed_folder_{name}", "task": "sentence-embeddings", "model": name,
                        "pipeline": {}, "args": [SENTENCES], "kwargs": {},
                        "expected": to_json(out["sentence_embedding"])})
    return records


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    logging.disable(logging.WARNING)
    build_models()
    records = []
    for name, task, model, kind, options, args, kwargs in cases():
        pipe = hf_pipeline(task, model, kind, options)
        result = pipe(*args, **kwargs)
        records.append({"name": name, "task": task, "model": model, "tokenizer": kind,
                        "pipeline": options, "args": args, "kwargs": kwargs, "expected": to_json(result)})
        print(f"{name:34} ok")
    records += embedding_goldens()
    goldens = OUT / "goldens.json"
    goldens.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    try:
        import sentence_transformers
        st_version = sentence_transformers.__version__
    except ImportError:
        st_version = None
    files = {str(p.relative_to(OUT)): sha256(p) for p in sorted(OUT.rglob("*"))
             if p.is_file() and p.name != "MANIFEST.json"}
    manifest = {
        "script": "tools/make_pipeline_goldens.py",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"python": platform.python_version(), "transformers": transformers.__version__,
                     "torch": torch.__version__, "numpy": np.__version__,
                     "sentencepiece": sentencepiece.__version__, "tokenizers": __import__("tokenizers").__version__,
                     "sentence_transformers": st_version},
        "seeds": {name: seed for name, (_, _, seed) in MODELS.items()},
        "records": len(records),
        "files": files,
    }
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{len(records)} records -> {goldens}")


if __name__ == "__main__":
    if transformers.__version__ != "4.57.6":
        sys.exit(f"these goldens are defined by transformers 4.57.6, found {transformers.__version__}")
    main()
