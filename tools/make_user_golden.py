"""Record Hugging Face's outputs on YOUR checkpoint, so `python -m xlmr_np verify --model OUT` can check xlmr_np on it.

    python tools/make_user_golden.py --model path/to/checkpoint --class XLMRobertaForMaskedLM --out my_golden
    python -m xlmr_np verify --model my_golden

Writes OUT/case.json (pointing at the checkpoint directory, which is not copied), OUT/inputs.npz (a padded
batch of random ids drawn from the vocabulary, or --ids), and OUT/outputs_float32.npz / outputs_float64.npz made
by transformers (eager attention) with output_hidden_states, and OUT/manifest.json: the provenance `verify`
checks before it compares (sha256 of config.json, of each weight file and of inputs.npz; the seed when the ids
were drawn; torch, transformers, NumPy and Python versions; torch's thread count; the date). Dev-only: needs
torch and transformers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # xlmr_np.audit.bundle: the same hashes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (config.json + weights)")
    parser.add_argument("--class", dest="cls", default="XLMRobertaModel", help="HF class name, e.g. XLMRobertaForMaskedLM")
    parser.add_argument("--out", required=True, help="directory to write the golden case to")
    parser.add_argument("--ids", help="JSON list of id lists to use instead of random ids (padded with pad_token_id)")
    parser.add_argument("--length", type=int, default=12, help="tokens per random sequence (default 12)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    import transformers

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    config = transformers.AutoConfig.from_pretrained(args.model)
    pad = config.pad_token_id
    if args.ids:
        rows = json.loads(args.ids)
    else:
        rng = np.random.default_rng(args.seed)
        lengths = [args.length, max(3, args.length * 2 // 3)]
        rows = [[config.bos_token_id] + [int(x) for x in rng.integers(4, config.vocab_size - 1, n - 2)]
                + [config.eos_token_id] for n in lengths]
    width = max(len(r) for r in rows)
    ids = np.array([r + [pad] * (width - len(r)) for r in rows], dtype=np.int64)
    mask = (ids != pad).astype(np.int64)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if args.cls == "XLMRobertaForMultipleChoice":
        inputs = {k: v[:, None, :] for k, v in inputs.items()}  # one choice per example

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "inputs.npz", **inputs)
    model_ref = os.path.relpath(Path(args.model).resolve(), out.resolve())
    case = {"class": args.cls, "mode": "forward", "call": {"output_hidden_states": True}, "model": model_ref,
            "description": f"HF {transformers.__version__} outputs on {args.model}",
            "versions": {"transformers": transformers.__version__, "torch": torch.__version__, "numpy": np.__version__}}
    (out / "case.json").write_text(json.dumps(case, indent=2) + "\n")
    cls = getattr(transformers, args.cls)
    for dtype, torch_dtype in [("float32", torch.float32), ("float64", torch.float64)]:
        model = cls.from_pretrained(args.model, attn_implementation="eager", dtype=torch_dtype).eval()
        with torch.no_grad():
            result = model(**{k: torch.tensor(v) for k, v in inputs.items()}, output_hidden_states=True)
        arrays = {}
        for key, value in result.items():
            if key == "past_key_values" or value is None:
                continue
            if isinstance(value, tuple):
                arrays.update({f"{key}.{i}": v.numpy() for i, v in enumerate(value)})
            else:
                arrays[key] = value.numpy()
        np.savez_compressed(out / f"outputs_{dtype}.npz", **arrays)
        print(f"wrote {out / f'outputs_{dtype}.npz'}: {', '.join(sorted(arrays))}")
    write_manifest(out, args, torch, transformers)


def write_manifest(out, args, torch, transformers):
    """OUT/manifest.json: what these goldens were computed from, for `verify`'s check before it compares."""
    from xlmr_np.audit import bundle

    versions = {**bundle.versions(), "torch": torch.__version__, "transformers": transformers.__version__}
    files = ["inputs.npz", "outputs_float32.npz", "outputs_float64.npz"]
    manifest = {"format": "xlmr_np user golden", "format_version": 1, "generator": "tools/make_user_golden.py",
                "class": args.cls, "model": str(args.model), "checkpoint": bundle.checkpoint_record(args.model),
                "inputs": {name: {"file": name, **bundle.file_record(out / name)} for name in files},
                "seed": None if args.ids else args.seed, "dtypes": ["float32", "float64"],
                "versions": versions, "threads": {"torch": torch.get_num_threads(), **bundle.blas_info()},
                "date": bundle.utc_now(), "attn_implementation": "eager", "tolerances": bundle.tolerance_presets()}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {out / 'manifest.json'}: sha256 of {', '.join(manifest['checkpoint'])} and {', '.join(files)}")


if __name__ == "__main__":
    main()
