"""Record Hugging Face's outputs on the shipped language-identification classifier (models/xlmr-langid) as goldens.

HF transformers 4.57.x `XLMRobertaForSequenceClassification.from_pretrained(..., dtype=float32)` upcasts the
float16 safetensors to float32 and runs eager attention in eval mode; HF's slow `XLMRobertaTokenizer` turns the
sentences into padded ids. The pipeline results come from `transformers.pipeline("text-classification")` on the
same model and tokenizer, called with the default options (legacy mode: the best label per input) and with
`top_k=None` (every label, sorted). Nothing here comes from xlmr_np.

Written to reference_outputs/langid/:
    inputs.npz     texts [B] (unicode), input_ids [B, T] int64, attention_mask [B, T] int64
    outputs.npz    logits [B, C] float32 (the padded batch), pooled_cls [B, D] float32 (last_hidden_state[:, 0])
    pipeline.json  HF pipeline calls: {"name", "args", "kwargs", "expected"} per call
    MANIFEST.json  versions, date, labels, sha256 of the model files used and of the golden files

    python tools/make_langid_goldens.py [--model-dir models/xlmr-langid] [--out reference_outputs/langid]
"""

import argparse
import datetime
import hashlib
import json
import platform
import warnings
from pathlib import Path

import numpy as np
import safetensors
import sentencepiece
import torch
import transformers
from transformers import XLMRobertaForSequenceClassification, XLMRobertaTokenizer

ROOT = Path(__file__).resolve().parent.parent

# (expected language, text). The first eight were written for this golden and occur in no catalog; the last four
# are catalog strings of held-out projects (tools/train_langid.py holds out git and gtk20, among others), so the
# classifier never saw any of them in training. With the training corpus at hand (--workdir), main() checks both.
SENTENCES = [
    ("de", "Die Datei konnte nicht gespeichert werden, weil der Datenträger voll ist."),
    ("fr", "Impossible d'ouvrir le fichier demandé : vous n'avez pas les droits nécessaires."),
    ("ja", "ファイルを保存できませんでした。ディスクの空き容量を確認してください。"),
    ("es", "No se pudo conectar con el servidor. Inténtelo de nuevo más tarde."),
    ("ru", "Не удалось подключиться к серверу, повторите попытку позже."),
    ("zh", "无法连接到服务器，请稍后再试。"),
    ("en", "The connection to the server was lost while the update was downloading."),
    ("sv", "Det gick inte att spara filen eftersom disken är full."),
    ("it", "consenti di unire cronologie non correlate"),
    ("ko", "대화 상자의 도움말 단추."),
    ("uk", "Чи потрібно автоматично показувати та приховувати мнемоніку, коли користувач натискає на активатор мнемоніки."),
    ("pt", "Mostrar o menu \"Métodos de entrada\""),
]
TEXTS = [text for _, text in SENTENCES]
MODEL_FILES = ("config.json", "model.safetensors", "sentencepiece.bpe.model", "tokenizer_config.json",
               "special_tokens_map.json")


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def plain(value):
    """Pipeline output -> JSON types (numpy floats to float)."""
    return json.loads(json.dumps(value, default=float))


def check_held_out(workdir):
    """No golden sentence is a training sentence; the catalog ones are in the held-out split. False: not checked."""
    if not (workdir / "train.tsv").is_file():
        print(f"note: {workdir}/train.tsv is absent, so the sentences were not checked against the corpus")
        return False
    def texts(name):
        with open(workdir / name, encoding="utf-8") as fh:
            return {line.rstrip("\n").split("\t", 1)[1] for line in fh}
    train, heldout = texts("train.tsv"), texts("heldout.tsv")
    seen = [text for text in TEXTS if text in train]
    assert not seen, f"golden sentences found in the training corpus: {seen}"
    assert all(text in heldout for text in TEXTS[8:]), "the catalog sentences must come from the held-out split"
    assert not any(text in heldout for text in TEXTS[:8]), "the written sentences must not come from a catalog"
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=str(ROOT / "models" / "xlmr-langid"))
    p.add_argument("--out", default=str(ROOT / "reference_outputs" / "langid"))
    p.add_argument("--workdir", default="/tmp/langid_train", help="tools/train_langid.py's corpus, if present")
    args = p.parse_args()
    checked = check_held_out(Path(args.workdir))
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    model_dir, out = Path(args.model_dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tok = XLMRobertaTokenizer.from_pretrained(model_dir)
    model = XLMRobertaForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32,
                                                                attn_implementation="eager").eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        res = model(**enc, output_hidden_states=True)
    logits = res.logits.numpy()  # [B, C]
    np.savez(out / "inputs.npz", texts=np.array(TEXTS), input_ids=enc["input_ids"].numpy().astype(np.int64),
             attention_mask=enc["attention_mask"].numpy().astype(np.int64))
    np.savez(out / "outputs.npz", logits=logits.astype(np.float32),
             pooled_cls=res.hidden_states[-1][:, 0].numpy().astype(np.float32))

    pipe = transformers.pipeline("text-classification", model=model, tokenizer=tok)
    calls = [
        {"name": "default_list", "args": [TEXTS], "kwargs": {}},
        {"name": "top_k_none_list", "args": [TEXTS], "kwargs": {"top_k": None}},
        {"name": "default_single", "args": [TEXTS[0]], "kwargs": {}},
        {"name": "top_k_3_single", "args": [TEXTS[2]], "kwargs": {"top_k": 3}},
    ]
    for call in calls:
        call["expected"] = plain(pipe(*call["args"], **call["kwargs"]))
    (out / "pipeline.json").write_text(json.dumps(calls, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    predicted = [labels[i] for i in logits.argmax(-1)]
    manifest = {
        "generator": "tools/make_langid_goldens.py",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__,
                     "sentencepiece": sentencepiece.__version__, "safetensors": safetensors.__version__},
        "torch_num_threads": 1,
        "attn_implementation": "eager",
        "tokenizer": "XLMRobertaTokenizer (slow)",
        "model_dtype_on_disk": "float16",
        "compute_dtype": "float32",
        "labels": labels,
        "checked_against_corpus": checked,  # none in train.tsv; the last four in heldout.tsv
        "model_files": {name: sha256(model_dir / name) for name in MODEL_FILES},
        "files": {name: sha256(out / name) for name in ("inputs.npz", "outputs.npz", "pipeline.json")},
        "sentences": [{"language": lang, "text": text, "hf_predicted": pred}
                      for (lang, text), pred in zip(SENTENCES, predicted)],
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    right = sum(lang == pred for (lang, _), pred in zip(SENTENCES, predicted))
    print(f"wrote {out}: {right}/{len(SENTENCES)} identified")
    for (lang, text), pred, row in zip(SENTENCES, predicted, calls[0]["expected"]):
        print(f"  {lang} -> {pred} ({row['score']:.3f}) {text}")


if __name__ == "__main__":
    main()
