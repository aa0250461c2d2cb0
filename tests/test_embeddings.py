"""BGEM3, SentenceTransformer and CrossEncoder against FlagEmbedding 1.4.2 and sentence-transformers 5.7.0.

The goldens (reference_outputs/embeddings, made by tools/make_embedding_goldens.py) are the libraries' own
results on small random folders laid out as the real models are. Each record runs here twice: padding-free
(the default) and on padded batches. Numbers agree within SCORE_TOL times the array's largest magnitude (at
least 1: unnormalised vectors of the random models reach |x| ~ 4, and float32 rounding is relative); keys, ids,
orders and shapes exactly.
Where FlagEmbedding / sentence-transformers are installed, the live tests rerun them on fresh inputs.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import xlmr_np
from xlmr_np.embeddings import BGEM3, CrossEncoder, EmbeddingError, SentenceTransformer

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "reference_outputs" / "embeddings"
RECORDS = json.loads((GOLDEN_DIR / "goldens.json").read_text(encoding="utf-8"))
ARRAYS = np.load(GOLDEN_DIR / "arrays.npz")
SCORE_TOL = 1e-5
CLASSES = {"BGEM3": BGEM3, "SentenceTransformer": SentenceTransformer, "CrossEncoder": CrossEncoder}
_MODELS = {}


def load(cls_name, model, padding_free, **init):
    key = (cls_name, model, padding_free, json.dumps(init, sort_keys=True))
    if key not in _MODELS:
        _MODELS[key] = CLASSES[cls_name](GOLDEN_DIR / model, padding_free=padding_free, **init)
    return _MODELS[key]


def compare(got, want, where="result"):
    if isinstance(want, dict) and set(want) == {"array"}:
        want = ARRAYS[want["array"]]
        got = np.asarray(got)
        assert got.shape == want.shape, f"{where}: shape {got.shape} != {want.shape}"
        diff = float(np.abs(got.astype(np.float64) - want).max()) if want.size else 0.0
        scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
        assert diff <= SCORE_TOL * scale, f"{where}: max |diff| {diff:.3g} (scale {scale:.3g})"
        return diff
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where}: expected a dict, got {type(got).__name__}"
        assert set(got) == set(want), f"{where}: keys {sorted(set(got) ^ set(want))} differ"
        return max([compare(got[k], want[k], f"{where}[{k!r}]") for k in want] or [0.0])
    if isinstance(want, list):
        assert isinstance(got, (list, tuple, np.ndarray)), f"{where}: expected a list, got {type(got).__name__}"
        assert len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        return max([compare(g, w, f"{where}[{i}]") for i, (g, w) in enumerate(zip(got, want))] or [0.0])
    if isinstance(want, float):
        diff = abs(float(got) - want)
        assert diff <= SCORE_TOL, f"{where}: {float(got)!r} != {want!r}"
        return diff
    assert got == want, f"{where}: {got!r} != {want!r}"
    return 0.0


def arguments(record, model):
    """The call's arguments, with references into another record's results resolved."""
    if "from" not in record:
        return record["args"], dict(record.get("kwargs", {}))
    source = next(r for r in RECORDS if r["name"] == record["from"])
    out = model.encode(*source["args"], **source["kwargs"])
    args = []
    for text in record["args"]:  # e.g. "lexical_weights[:4]", "colbert_vecs[0]"
        field, index = text.rstrip("]").split("[")
        values = out[field]
        args.append(values[slice(*[int(p) if p else None for p in index.split(":")])] if ":" in index
                    else values[int(index)])
    return args, {}


# every record on both paths, but the ~3,000-token one padding-free only (tests/test_long_inputs.py compares
# the two paths at 8,192 tokens)
RUNS = [(r, free) for r in RECORDS for free in (True, False) if free or r["name"] != "m3_long"]


@pytest.mark.parametrize("record,padding_free", RUNS,
                         ids=[f"{r['name']}-{'padding_free' if free else 'padded'}" for r, free in RUNS])
def test_matches_the_reference_library(record, padding_free):
    model = load(record["class"], record["model"], padding_free, **record.get("init", {}))
    args, kwargs = arguments(record, model)
    if kwargs.get("activation_fn") == "identity":
        kwargs["activation_fn"] = "identity"
    if "input_ids" in record:  # the reference's tokenizer gave these ids
        texts = [args[0]] if isinstance(args[0], str) else args[0]
        assert model.tokenize(texts, max_length=kwargs.get("max_length", 512)) == record["input_ids"]
    got = getattr(model, record["method"])(*args, **kwargs)
    compare(got, record["expected"], record["name"])


def test_goldens_cover_every_module_and_option():
    names = {r["name"] for r in RECORDS}
    assert {"m3_all", "m3_truncated", "m3_long", "m3_colbert_score", "m3_lexical_matching_lists"} <= names
    assert {"e5_query_prompt", "dense_normalize", "multi_pool_default_prompt", "rerank_rank"} <= names
    long_ids = next(r for r in RECORDS if r["name"] == "m3_long")["input_ids"][0]
    assert len(long_ids) > 2500  # a few thousand tokens through the long-input path


def test_long_input_in_float32_is_within_tolerance_of_the_float64_reference():
    record = next(r for r in RECORDS if r["name"] == "m3_long")
    got = load("BGEM3", "bge_m3", True).encode(*record["args"], **record["kwargs"])
    compare(got, record["expected"], "m3_long in float32")


def test_bge_m3_post_processing_rules():
    model = load("BGEM3", "bge_m3", True)
    text = "la la la la de de de <unk>"
    out = model.encode([text], return_sparse=True, return_colbert_vecs=True)
    ids = model.tokenize([text])[0]
    weights = model.token_weights(model.batch_states([ids])[0])
    lexical = out["lexical_weights"][0]
    assert {0, 2, 3} <= set(ids) and not {"0", "1", "2", "3"} & set(lexical)  # cls, pad, eos, unk dropped
    repeated = [i for i in set(ids) if ids.count(i) > 1 and str(i) in lexical]
    assert repeated  # the random head gives some repeated token a positive weight
    for idx in set(ids) - {0, 1, 2, 3}:
        best = max(w for w, i in zip(weights, ids) if i == idx)
        assert lexical.get(str(idx)) == (best if best > 0 else None)  # the largest weight, only if positive
    assert out["colbert_vecs"][0].shape == (len(ids) - 1, 32)
    np.testing.assert_allclose(np.linalg.norm(out["colbert_vecs"][0], axis=1), 1.0, rtol=1e-6)
    assert out["dense_vecs"] is None or out["dense_vecs"].shape == (1, 32)


def test_bge_m3_single_string_and_nothing_requested():
    model = load("BGEM3", "bge_m3", True)
    out = model.encode("Paris", return_dense=True)
    assert out["dense_vecs"].shape == (32,) and out["lexical_weights"] is None and out["colbert_vecs"] is None
    with pytest.raises(EmbeddingError, match="choose one or more"):
        model.encode("Paris", return_dense=False)
    with pytest.raises(EmbeddingError, match="must be a string"):
        model.encode(["Paris", 3])


def test_bge_m3_too_long_inputs_are_counted_or_refused():
    model = load("BGEM3", "bge_m3", True)
    model.encode(["a b c d e f g h i j", "short"], max_length=6)
    assert model.truncated == 1
    with pytest.raises(EmbeddingError, match="input 0 has .* tokens, more than the limit of 6"):
        model.encode(["a b c d e f g h i j", "short"], max_length=6, on_too_long="error")


def test_bge_m3_needs_its_head_files(tmp_path):
    import shutil
    folder = tmp_path / "m3"
    shutil.copytree(GOLDEN_DIR / "bge_m3", folder)
    (folder / "colbert_linear.pt").unlink()
    with pytest.raises(EmbeddingError, match="no colbert_linear.pt"):
        BGEM3.from_pretrained(folder)


def test_top_level_names():
    assert xlmr_np.BGEM3 is BGEM3 and xlmr_np.SentenceTransformer is SentenceTransformer
    assert xlmr_np.CrossEncoder is CrossEncoder


def test_sentence_transformer_shapes_and_prompts():
    model = load("SentenceTransformer", "st_e5", True)
    assert model.get_sentence_embedding_dimension() == 16
    assert model.encode([], convert_to_numpy=True).shape == (0,)
    as_list = model.encode(["a", "b"], convert_to_numpy=False)
    assert isinstance(as_list, list) and as_list[0].shape == (16,)
    np.testing.assert_allclose(model.encode_query(["Paris"]), model.encode(["Paris"], prompt="query: "), atol=0)
    # sentence-transformers' default prompts include "document": "", which encode_document finds first
    np.testing.assert_allclose(model.encode_document(["Paris"]), model.encode(["Paris"]), atol=0)
    np.testing.assert_allclose(model.encode_document(["Paris"], prompt_name="passage"),
                               model.encode(["Paris"], prompt="passage: "), atol=0)
    with pytest.raises(EmbeddingError, match="prompt name 'nope'"):
        model.encode(["Paris"], prompt_name="nope")
    sims = model.similarity(model.encode(["a", "b"]), model.encode(["a"]))
    assert sims.shape == (2, 1) and abs(sims[0, 0] - 1) < 1e-6


def test_sentence_transformer_refuses_unknown_modules(tmp_path):
    import shutil
    folder = tmp_path / "st"
    shutil.copytree(GOLDEN_DIR / "st_e5", folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_LSTM", "type": "sentence_transformers.models.LSTM"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EmbeddingError, match="LSTM.* is not supported"):
        SentenceTransformer(folder)


def test_cross_encoder_inputs():
    model = load("CrossEncoder", "reranker", True)
    assert model.num_labels == 1
    with pytest.raises(EmbeddingError, match="pair 0 must be two strings"):
        model.predict([["only one"]])
    with pytest.raises(EmbeddingError, match="only works for models with num_labels=1"):
        load("CrossEncoder", "reranker_3", True).rank("q", ["d"])
    scores = model.predict([["q", "d"], ["q", "e"]], activation_fn=lambda x: x * 0 + 7)
    assert list(scores) == [7, 7]


# --- live: the reference libraries themselves, where installed ----------------------------------------------
def _quiet_import(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip(name)


def test_live_flag_embedding():
    flag = _quiet_import("FlagEmbedding")
    texts = ["Wer hat das Buch geschrieben?", "A long sentence about the weather in Paris and in Berlin today.",
             "la la la la", "Привет, мир!"]
    ref = flag.BGEM3FlagModel(str(GOLDEN_DIR / "bge_m3"), use_fp16=False, devices="cpu")
    want = ref.encode(texts, batch_size=3, max_length=10, return_dense=True, return_sparse=True,
                      return_colbert_vecs=True)
    got = load("BGEM3", "bge_m3", True).encode(texts, batch_size=3, max_length=10, return_dense=True,
                                                return_sparse=True, return_colbert_vecs=True)
    assert np.abs(got["dense_vecs"] - want["dense_vecs"]).max() <= SCORE_TOL
    for a, b in zip(got["lexical_weights"], want["lexical_weights"]):
        assert set(a) == set(b) and all(abs(a[k] - b[k]) <= SCORE_TOL for k in a)
    for a, b in zip(got["colbert_vecs"], want["colbert_vecs"]):
        assert a.shape == b.shape and np.abs(a - b).max() <= SCORE_TOL


def test_live_sentence_transformers():
    st = _quiet_import("sentence_transformers")
    texts = ["Wer hat das Buch geschrieben?", "Привет, мир!", "query: twice"]
    for name, kwargs in (("st_e5", {"prompt_name": "passage"}), ("st_multi_pool", {})):
        want = st.SentenceTransformer(str(GOLDEN_DIR / name), device="cpu").encode(texts, **kwargs)
        got = load("SentenceTransformer", name, True).encode(texts, **kwargs)
        assert np.abs(got - want).max() <= SCORE_TOL
    pairs = [["Wer?", t] for t in texts]
    want = st.CrossEncoder(str(GOLDEN_DIR / "reranker"), device="cpu").predict(pairs)
    assert np.abs(load("CrossEncoder", "reranker", True).predict(pairs) - want).max() <= SCORE_TOL


def test_the_sentence_embeddings_pipeline_refuses_what_it_cannot_apply():
    from xlmr_np.pipelines import PipelineError, pipeline

    with pytest.raises(PipelineError, match="has a Dense module.*xlmr_np.SentenceTransformer"):
        pipeline("sentence-embeddings", model=GOLDEN_DIR / "st_dense")
    got = pipeline("sentence-embeddings", model=GOLDEN_DIR / "st_e5")(["Paris", "Berlin"])
    np.testing.assert_allclose(got, SentenceTransformer(GOLDEN_DIR / "st_e5").encode(["Paris", "Berlin"]), atol=1e-6)


@pytest.mark.parametrize("name", ["m3_truncated", "e5_query_prompt", "multi_pool_default_prompt", "rerank_predict"])
def test_models_run_on_a_device_backend(name):
    """Parameters on a stand-in for CuPy: the body runs on the device (padded: packing needs NumPy), the
    small heads and the post-processing on the host, and the results are the reference's."""
    from device_standin import DeviceArray, device
    from xlmr_np import backend

    backend.register_array_module(DeviceArray, device)
    record = next(r for r in RECORDS if r["name"] == name)
    model = CLASSES[record["class"]](GOLDEN_DIR / record["model"], **record.get("init", {}))
    model.params = {k: device.asarray(v) for k, v in model.params.items()}
    assert not model.can_pack
    args, kwargs = arguments(record, model)
    compare(getattr(model, record["method"])(*args, **kwargs), record["expected"], name)
