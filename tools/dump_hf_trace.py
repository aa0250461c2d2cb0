"""Dump a transformers checkpoint's activations to an .npz under xlmr_np's trace names, for `trace --against`.

    python tools/dump_hf_trace.py --model path/to/checkpoint --inputs inputs.npz --out hf_trace.npz
    python -m xlmr_np trace --model path/to/checkpoint --against hf_trace.npz ...

Runs the Hugging Face class (eager attention, output_hidden_states=True) on the inputs .npz (input_ids and
optionally attention_mask, token_type_ids, position_ids) and writes hidden_states.k as "embeddings" (k = 0) and
"layers.{k-1}", and every other output under its field name (last_hidden_state, pooler_output, logits, ...).
The versions used are printed (an .npz holds arrays only). Dev-only: needs torch and transformers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def hf_trace(model, inputs: dict) -> dict:
    """{trace name: array} of one forward pass of a transformers model."""
    import torch

    with torch.no_grad():
        result = model(**{k: torch.from_numpy(np.asarray(v, dtype=np.int64)) for k, v in inputs.items()},
                       output_hidden_states=True)
    arrays = {}
    hidden = result.get("hidden_states")
    for k, value in enumerate(hidden or ()):
        arrays["embeddings" if k == 0 else f"layers.{k - 1}"] = value.numpy()
    for key, value in result.items():
        if key in ("hidden_states", "past_key_values", "attentions", "loss") or value is None:
            continue
        arrays[key] = value.numpy()
    return arrays


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (config.json + weights)")
    parser.add_argument("--class", dest="cls", default="XLMRobertaModel", help="HF class name")
    parser.add_argument("--inputs", required=True, help="inputs .npz (input_ids, attention_mask, ...)")
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args(argv)

    import torch
    import transformers

    from xlmr_np.audit.bundle import read_inputs

    inputs = read_inputs(args.inputs)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    model = getattr(transformers, args.cls).from_pretrained(args.model, attn_implementation="eager",
                                                            dtype=dtype).eval()
    arrays = hf_trace(model, inputs)
    np.savez(args.out, **arrays)
    print(f"wrote {args.out} (transformers {transformers.__version__}, torch {torch.__version__}, {args.dtype}): "
          f"{', '.join(arrays)}")


if __name__ == "__main__":
    main()
