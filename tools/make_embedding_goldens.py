"""Record FlagEmbedding and sentence-transformers outputs for xlmr_np's embedding models (tests/test_embeddings.py).

Builds small XLM-R folders whose every parameter is random (weights N(0, 0.4^2), LayerNorm weights around 1,
biases too) with the shared test tokenizer copied in (reference_outputs/tokenizer, 8,002 ids), each laid out as
the real models are, and runs the reference libraries on them. Nothing here comes from xlmr_np.

    bge_m3          BGE-M3: XLMRobertaModel (8,194 positions, as bge-m3) + sparse_linear.pt + colbert_linear.pt
                    -> FlagEmbedding.BGEM3FlagModel.encode / compute_lexical_matching_score / colbert_score
                    (the ~3,000-token case in float64: torch's own float32 result is 4e-5 off there)
    st_e5           multilingual-e5 style: Transformer, Pooling(mean), Normalize; prompts "query: "/"passage: ";
                    max_seq_length 24                                       -> SentenceTransformer.encode
    st_dense        paraphrase-multilingual / LaBSE style: Transformer, Pooling (legacy mean boolean),
                    Dense(16 -> 12, Tanh, model.safetensors), Normalize   -> SentenceTransformer.encode
    st_multi_pool   the old layout (the body in 0_Transformer/), Pooling with five modes and include_prompt
                    false, Dense(80 -> 8, Identity, no bias, pytorch_model.bin), a default prompt
    reranker        XLMRobertaForSequenceClassification, one label (bge-reranker style)
                    -> CrossEncoder.predict / rank (Sigmoid)
    reranker_3      three labels, config.json's sentence_transformers.activation_fn = Tanh -> CrossEncoder.predict

Written: reference_outputs/embeddings/<folder>/..., goldens.json (one record per call: model, class, method,
args, kwargs, and the result, arrays as keys into arrays.npz), arrays.npz, MANIFEST.json (versions, seeds,
sha256 of every file). The tokenizers are the libraries' own: AutoTokenizer gives XLMRobertaTokenizerFast,
converted from the sentencepiece model; each record keeps the ids it produced, so a tokenizer difference shows
as such. Needs: pip install sentence-transformers==5.7.0 FlagEmbedding==1.4.2 (with transformers 4.57.6 and
torch 2.13.0 kept: setup.cfg's `ref` extra).

Usage: python tools/make_embedding_goldens.py   (about a minute; torch runs on one thread)
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
import torch
import transformers
from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaModel

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_DIR = ROOT / "reference_outputs" / "tokenizer"
OUT = ROOT / "reference_outputs" / "embeddings"
TOKENIZER_FILES = ("sentencepiece.bpe.model", "special_tokens_map.json")

SENTENCES = [
    "Paris is the capital of France.",
    "Das Wetter ist heute schön, aber morgen regnet es.",
    "Je pense donc je suis.",
    "Мы любим читать книги вечером.",
    "東京は日本の首都です。",
    "The file could not be opened: permission denied.",
    "the cat and the dog and the cat sat on the mat",
    "Ein Satz, der viel länger ist als die anderen Sätze in dieser kleinen Liste von Beispielen für den Test.",
]
QUERY = "Where is the capital of France?"
LONG_TEXT = " ".join(SENTENCES * 40)  # about 3,000 tokens

SEEDS = {"bge_m3": 201, "st_e5": 202, "st_dense": 203, "st_multi_pool": 204, "reranker": 205, "reranker_3": 206}


def config_for(hidden=16, positions=514, **overrides):
    base = dict(vocab_size=8002, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=2 * hidden, max_position_embeddings=positions, type_vocab_size=1,
                layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    base.update(overrides)
    return XLMRobertaConfig(**base)


def randomize_(module, generator, bias_shift=0.0):
    """Every parameter random: weights N(0, 0.4^2), LayerNorm weights 1 + N(0, 0.4^2), biases too."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            values = torch.randn(param.shape, generator=generator, dtype=torch.float64) * 0.4
            if "LayerNorm" in name or "layer_norm" in name:
                values = 1.0 + values if name.endswith("weight") else values * 0.25
            elif name.endswith("bias"):
                values = values + bias_shift
            param.copy_(values.to(param.dtype))


def fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def save_body(model, folder: Path, max_length: int):
    model.save_pretrained(folder, safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copy(TOKENIZER_DIR / name, folder / name)
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": max_length}) + "\n")


def write_json(path: Path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def build_models():
    # BGE-M3: the body and the two heads FlagEmbedding reads with torch.load
    gen = torch.Generator().manual_seed(SEEDS["bge_m3"])
    body = XLMRobertaModel(config_for(hidden=32, positions=8194)).eval()
    randomize_(body, gen)
    folder = fresh(OUT / "bge_m3")
    save_body(body, folder, 8192)
    colbert, sparse = torch.nn.Linear(32, 32), torch.nn.Linear(32, 1)
    randomize_(colbert, gen)
    randomize_(sparse, gen, bias_shift=0.3)  # most tokens get a positive weight, some none
    torch.save(colbert.state_dict(), folder / "colbert_linear.pt")
    torch.save(sparse.state_dict(), folder / "sparse_linear.pt")

    def st_folder(name, modules, pooling, body_path="", st_config=None, prompts=None):
        gen = torch.Generator().manual_seed(SEEDS[name])
        model = XLMRobertaModel(config_for()).eval()
        randomize_(model, gen)
        folder = fresh(OUT / name)
        save_body(model, folder / body_path, 512)
        entries = []
        for idx, (kind, path) in enumerate(modules):
            entries.append({"idx": idx, "name": str(idx), "path": path,
                            "type": f"sentence_transformers.models.{kind}"})
            if path and kind != "Transformer":
                (folder / path).mkdir(exist_ok=True)
        write_json(folder / "modules.json", entries)
        write_json(folder / "1_Pooling" / "config.json", pooling)
        if st_config is not None:
            write_json(folder / body_path / "sentence_bert_config.json", st_config)
        if prompts is not None:
            write_json(folder / "config_sentence_transformers.json", prompts)
        return folder, gen

    st_folder("st_e5", [("Transformer", ""), ("Pooling", "1_Pooling"), ("Normalize", "2_Normalize")],
              {"embedding_dimension": 16, "pooling_mode": "mean", "include_prompt": True},
              st_config={"max_seq_length": 24, "do_lower_case": False},
              prompts={"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
                       "similarity_fn_name": "cosine"})
    folder, gen = st_folder(
        "st_dense", [("Transformer", ""), ("Pooling", "1_Pooling"), ("Dense", "2_Dense"), ("Normalize", "3_Normalize")],
        {"word_embedding_dimension": 16, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
         "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False},
        st_config={"max_seq_length": 128, "do_lower_case": False})
    dense = torch.nn.Linear(16, 12)
    randomize_(dense, gen)
    from safetensors.torch import save_file
    save_file({"linear.weight": dense.weight.detach().contiguous(), "linear.bias": dense.bias.detach().contiguous()},
              str(folder / "2_Dense" / "model.safetensors"))
    write_json(folder / "2_Dense" / "config.json", {"in_features": 16, "out_features": 12, "bias": True,
                                                    "activation_function": "torch.nn.modules.activation.Tanh"})
    modes = ["cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
    folder, gen = st_folder(
        "st_multi_pool", [("Transformer", "0_Transformer"), ("Pooling", "1_Pooling"), ("Dense", "2_Dense")],
        {"embedding_dimension": 16, "pooling_mode": modes, "include_prompt": False}, body_path="0_Transformer",
        prompts={"prompts": {"query": "Represent this sentence for retrieval: "}, "default_prompt_name": "query"})
    dense = torch.nn.Linear(16 * len(modes), 8, bias=False)
    randomize_(dense, gen)
    torch.save({"linear.weight": dense.weight.detach().clone()}, folder / "2_Dense" / "pytorch_model.bin")
    write_json(folder / "2_Dense" / "config.json", {"in_features": 16 * len(modes), "out_features": 8, "bias": False,
                                                    "activation_function": "torch.nn.modules.linear.Identity"})

    for name, labels, extra in (("reranker", 1, {}),
                                ("reranker_3", 3, {"sentence_transformers": {
                                    "activation_fn": "torch.nn.modules.activation.Tanh"}})):
        gen = torch.Generator().manual_seed(SEEDS[name])
        model = XLMRobertaForSequenceClassification(config_for(num_labels=labels, **extra)).eval()
        randomize_(model, gen)
        save_body(model, fresh(OUT / name), 512)


class Arrays:
    """Arrays of the results, kept in arrays.npz under a key; JSON holds {"array": key}."""

    def __init__(self):
        self.store = {}

    def __call__(self, name, value):
        if isinstance(value, torch.Tensor):
            value = value.detach().numpy()
        if isinstance(value, np.ndarray) and value.ndim > 0:
            key = f"{name}.{len(self.store)}"
            self.store[key] = value
            return {"array": key}
        if isinstance(value, (np.floating, np.integer)) or (isinstance(value, np.ndarray) and value.ndim == 0):
            return float(value)
        if isinstance(value, dict):
            return {str(k): self(name, v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(name, v) for v in value]
        return value


def flag_records(keep):
    from FlagEmbedding import BGEM3FlagModel

    folder = str(OUT / "bge_m3")
    records = []

    def case(name, init, kwargs, sentences, float64=False):
        model = BGEM3FlagModel(folder, use_fp16=False, devices="cpu", **init)
        if float64:  # encode casts to float32 on CPU (self.model.float()): keep float64 instead
            model.model.double()
            model.model.float = lambda: model.model
            init = dict(init, dtype="float64")
        out = model.encode(sentences, **kwargs)
        texts = [sentences] if isinstance(sentences, str) else sentences
        ids = model.tokenizer(texts, truncation=True, max_length=kwargs.get("max_length", 512))["input_ids"]
        records.append({"name": name, "model": "bge_m3", "class": "BGEM3", "init": init, "method": "encode",
                        "args": [sentences], "kwargs": kwargs, "input_ids": ids, "expected": keep(name, out)})
        return model, out

    every = {"return_dense": True, "return_sparse": True, "return_colbert_vecs": True}
    model, out = case("m3_all", {}, dict(every, batch_size=3, max_length=8192), SENTENCES)
    case("m3_truncated", {}, dict(every, batch_size=4, max_length=12), SENTENCES)
    case("m3_single", {}, {"return_dense": True, "return_sparse": True, "max_length": 64}, SENTENCES[6])
    case("m3_mean_unnormalised", {"normalize_embeddings": False, "pooling_method": "mean"},
         dict(every, batch_size=8, max_length=512), SENTENCES[:4])
    case("m3_long", {}, {"return_dense": True, "return_sparse": True, "return_colbert_vecs": True,
                         "max_length": 8192, "batch_size": 2}, [LONG_TEXT, SENTENCES[0]], float64=True)
    lexical = out["lexical_weights"]
    records.append({"name": "m3_lexical_matching_lists", "model": "bge_m3", "class": "BGEM3", "init": {},
                    "method": "compute_lexical_matching_score", "from": "m3_all", "args": ["lexical_weights[:4]",
                                                                                          "lexical_weights[4:]"],
                    "expected": keep("lex", model.compute_lexical_matching_score(lexical[:4], lexical[4:]))})
    records.append({"name": "m3_lexical_matching_pair", "model": "bge_m3", "class": "BGEM3", "init": {},
                    "method": "compute_lexical_matching_score", "from": "m3_all",
                    "args": ["lexical_weights[6]", "lexical_weights[0]"],
                    "expected": float(model.compute_lexical_matching_score(lexical[6], lexical[0]))})
    colbert = out["colbert_vecs"]
    records.append({"name": "m3_colbert_score", "model": "bge_m3", "class": "BGEM3", "init": {},
                    "method": "colbert_score", "from": "m3_all", "args": ["colbert_vecs[0]", "colbert_vecs[1]"],
                    "expected": float(model.colbert_score(colbert[0], colbert[1]))})
    return records


def st_records(keep):
    from sentence_transformers import CrossEncoder, SentenceTransformer

    records = []

    def encode(name, model_name, kwargs, sentences):
        model = SentenceTransformer(str(OUT / model_name), device="cpu")
        out = model.encode(sentences, **kwargs)
        records.append({"name": name, "model": model_name, "class": "SentenceTransformer", "init": {},
                        "method": "encode", "args": [sentences], "kwargs": kwargs, "expected": keep(name, out)})

    long_sentence = SENTENCES[7] + " " + SENTENCES[1]
    encode("e5_query_prompt", "st_e5", {"prompt_name": "query", "batch_size": 3}, SENTENCES)
    encode("e5_passage_prompt_normalised", "st_e5", {"prompt": "passage: ", "normalize_embeddings": True},
           SENTENCES[:5])
    encode("e5_no_prompt_truncated", "st_e5", {"batch_size": 2}, [long_sentence, SENTENCES[2], SENTENCES[7]])
    encode("e5_single", "st_e5", {"prompt_name": "query"}, SENTENCES[3])
    encode("dense_normalize", "st_dense", {"batch_size": 4}, SENTENCES)
    encode("dense_truncate_dim", "st_dense", {"truncate_dim": 5, "normalize_embeddings": True}, SENTENCES[:3])
    encode("multi_pool_default_prompt", "st_multi_pool", {"batch_size": 3}, SENTENCES)
    encode("multi_pool_other_prompt", "st_multi_pool", {"prompt": "query: "}, SENTENCES[:4])
    encode("multi_pool_no_prompt", "st_multi_pool", {"prompt": ""}, SENTENCES[:4])

    documents = SENTENCES + [QUERY, "France's capital city is Paris."]
    pairs = [[QUERY, doc] for doc in documents]
    model = CrossEncoder(str(OUT / "reranker"), device="cpu")

    def ce(name, model_name, model, method, args, kwargs, shown=None):
        out = getattr(model, method)(*args, **kwargs)
        records.append({"name": name, "model": model_name, "class": "CrossEncoder", "init": {},
                        "method": method, "args": args, "kwargs": shown if shown is not None else kwargs,
                        "expected": keep(name, out)})

    ce("rerank_predict", "reranker", model, "predict", [pairs], {"batch_size": 4})
    ce("rerank_predict_single", "reranker", model, "predict", [pairs[0]], {})
    ce("rerank_predict_identity", "reranker", model, "predict", [pairs[:5]],
       {"activation_fn": torch.nn.Identity()}, shown={"activation_fn": "identity"})
    ce("rerank_rank", "reranker", model, "rank", [QUERY, documents], {"top_k": 4, "return_documents": True})
    ce("rerank_rank_all", "reranker", model, "rank", [QUERY, documents], {"batch_size": 3})
    short = CrossEncoder(str(OUT / "reranker"), device="cpu", max_length=16)
    records.append({"name": "rerank_max_length", "model": "reranker", "class": "CrossEncoder",
                    "init": {"max_length": 16}, "method": "predict", "args": [pairs], "kwargs": {},
                    "expected": keep("short", short.predict(pairs))})
    three = CrossEncoder(str(OUT / "reranker_3"), device="cpu")
    ce("three_labels_tanh", "reranker_3", three, "predict", [pairs[:6]], {})
    ce("three_labels_softmax", "reranker_3", three, "predict", [pairs[:6]], {"apply_softmax": True})
    return records


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main():
    import FlagEmbedding
    import sentence_transformers

    OUT.mkdir(parents=True, exist_ok=True)
    build_models()
    keep = Arrays()
    records = flag_records(keep) + st_records(keep)
    for record in records:
        print(f"{record['name']:34} ok")
    (OUT / "goldens.json").write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    np.savez_compressed(OUT / "arrays.npz", **keep.store)
    files = {str(p.relative_to(OUT)): sha256(p) for p in sorted(OUT.rglob("*"))
             if p.is_file() and p.name != "MANIFEST.json"}
    manifest = {
        "script": "tools/make_embedding_goldens.py",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"python": platform.python_version(), "transformers": transformers.__version__,
                     "torch": torch.__version__, "numpy": np.__version__,
                     "tokenizers": __import__("tokenizers").__version__,
                     "sentence_transformers": sentence_transformers.__version__,
                     "FlagEmbedding": getattr(FlagEmbedding, "__version__", None) or _dist_version("FlagEmbedding")},
        "seeds": SEEDS,
        "records": len(records),
        "files": files,
    }
    write_json(OUT / "MANIFEST.json", manifest)
    print(f"{len(records)} records -> {OUT / 'goldens.json'}")


def _dist_version(name):
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    if transformers.__version__ != "4.57.6":
        sys.exit(f"these goldens are defined by transformers 4.57.6, found {transformers.__version__}")
    main()
