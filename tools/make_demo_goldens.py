"""Record Hugging Face's outputs on the shipped demo checkpoint (models/xlmr-demo) as goldens.

HF transformers 4.57.x `XLMRobertaForMaskedLM.from_pretrained(..., torch_dtype=float32)` upcasts the
float16 safetensors to float32 and runs eager attention in eval mode; HF's slow `XLMRobertaTokenizer`
turns a batch of multilingual sentences into padded ids. Nothing here comes from xlmr_np.

Written to reference_outputs/demo/ (kept under 1 MB: full-vocabulary logits only where it matters):
    inputs.npz   texts [B] (unicode), input_ids [B, T] int64, attention_mask [B, T] int64
    outputs.npz  mask_positions [N, 2] (row, column of every <mask>), logits_at_mask [N, V] float32,
                 logits_head [B, T, 64] float32 (logits[..., :64] at every position, padding included),
                 last_hidden_state [B, T, D] float32, top5_at_mask [N, 5] int64
    MANIFEST.json  versions, date, sha256 of the model files used and of both npz files

    python tools/make_demo_goldens.py [--model-dir models/xlmr-demo] [--out reference_outputs/demo]
"""

import argparse
import datetime
import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import safetensors
import sentencepiece
import torch
import transformers
from transformers import XLMRobertaForMaskedLM, XLMRobertaTokenizer

ROOT = Path(__file__).resolve().parent.parent

# Sentences written for this golden (not taken from the training catalogs), one <mask> each,
# of different lengths so the batch needs padding; six languages and four scripts.
TEXTS = [
    "The file could not be <mask>.",
    "Die Datei konnte nicht <mask> werden.",
    "Impossible d'ouvrir le <mask> demandé.",
    "No se pudo guardar el <mask> en el disco porque no hay espacio suficiente.",
    "Не удалось открыть <mask>.",
    "ファイルを<mask>ませんでした",
]
HEAD_COLUMNS = 64  # logits kept at every position for the first 64 vocabulary ids


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=str(ROOT / "models" / "xlmr-demo"))
    p.add_argument("--out", default=str(ROOT / "reference_outputs" / "demo"))
    args = p.parse_args()
    torch.set_num_threads(1)
    model_dir, out = Path(args.model_dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tok = XLMRobertaTokenizer.from_pretrained(model_dir)
    model = XLMRobertaForMaskedLM.from_pretrained(model_dir, dtype=torch.float32,
                                                  attn_implementation="eager").eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        res = model(**enc, output_hidden_states=True)
    logits = res.logits.numpy()  # [B, T, V]
    ids = enc["input_ids"].numpy()
    rows, cols = np.nonzero(ids == tok.mask_token_id)
    assert len(rows) == len(TEXTS), "every golden sentence must hold exactly one <mask>"
    at_mask = logits[rows, cols]  # [N, V]

    np.savez(out / "inputs.npz", texts=np.array(TEXTS), input_ids=ids.astype(np.int64),
             attention_mask=enc["attention_mask"].numpy().astype(np.int64))
    np.savez(out / "outputs.npz",
             mask_positions=np.stack([rows, cols], axis=1).astype(np.int64),
             logits_at_mask=at_mask.astype(np.float32),
             logits_head=logits[:, :, :HEAD_COLUMNS].astype(np.float32),
             last_hidden_state=res.hidden_states[-1].numpy().astype(np.float32),
             top5_at_mask=np.argsort(-at_mask, axis=-1, kind="stable")[:, :5].astype(np.int64))

    manifest = {
        "generator": "tools/make_demo_goldens.py",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__,
                     "sentencepiece": sentencepiece.__version__, "safetensors": safetensors.__version__},
        "torch_num_threads": 1,
        "attn_implementation": "eager",
        "model_dtype_on_disk": "float16",
        "compute_dtype": "float32",
        "model_files": {name: sha256(model_dir / name)
                        for name in ("config.json", "model.safetensors", "sentencepiece.bpe.model")},
        "files": {name: sha256(out / name) for name in ("inputs.npz", "outputs.npz")},
        "texts": TEXTS,
        "top5_at_mask": [tok.convert_ids_to_tokens(row.tolist())
                         for row in np.argsort(-at_mask, axis=-1)[:, :5]],
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    size = sum((out / n).stat().st_size for n in ("inputs.npz", "outputs.npz"))
    print(f"wrote {out} ({size / 1e6:.2f} MB)")
    for text, top5 in zip(TEXTS, manifest["top5_at_mask"]):
        print(f"  {text!r}: {top5}")


if __name__ == "__main__":
    main()
