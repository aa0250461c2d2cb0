"""A stand-in for another implementation, run by `python -m xlmr_np fuzz` in tests/test_fuzz_kit.py.

    python tests/fuzz_port.py MODEL INPUTS.npz OUTPUTS.npz [--with transformers|xlmr_np] [--bug NAME] [--crash-above T]

Reads the inputs .npz (input_ids, attention_mask, token_type_ids), runs the model and writes last_hidden_state,
pooler_output and hidden_states.k. `--with transformers` is the correct port (Hugging Face's XLMRobertaModel,
eager attention, float32); `--with xlmr_np` is quicker to start. Bugs a port might have:
- left-padding: positions 2, 3, ... counted from the first column, whatever the padding (right padding hides it)
- position-offset: positions counted from pad_token_id instead of pad_token_id + 1 (every input shows it)
`--crash-above T` exits with status 3 when a batch is longer than T tokens (a fixed-size buffer).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def positions(ids, pad, bug):
    """HF's create_position_ids_from_input_ids, or a port's mistake."""
    real = (ids != pad).astype(np.int64)                                        # [B, T]
    if bug == "left-padding":
        return np.broadcast_to(np.arange(ids.shape[1]) + pad + 1, ids.shape).copy()
    counted = np.cumsum(real, axis=1) * real                                    # [B, T]: 1, 2, ... on real tokens
    if bug == "position-offset":
        counted = counted - real                                                # 0, 1, ...: one too low
    return counted + pad


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("outputs")
    parser.add_argument("--with", dest="impl", default="xlmr_np", choices=["xlmr_np", "transformers"])
    parser.add_argument("--bug", choices=["left-padding", "position-offset"])
    parser.add_argument("--crash-above", type=int)
    args = parser.parse_args()
    with np.load(args.inputs) as data:
        inputs = {k: data[k] for k in data.files}
    if args.crash_above is not None and inputs["input_ids"].shape[1] > args.crash_above:
        print(f"buffer of {args.crash_above} tokens overflowed", file=sys.stderr)
        sys.exit(3)
    arrays = {}
    if args.impl == "transformers":
        import torch
        import transformers

        model = transformers.XLMRobertaModel.from_pretrained(args.model, attn_implementation="eager",
                                                             dtype=torch.float32).eval()
        if args.bug:
            inputs["position_ids"] = positions(inputs["input_ids"], model.config.pad_token_id, args.bug)
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True)
        arrays = {"last_hidden_state": out.last_hidden_state.numpy(), "pooler_output": out.pooler_output.numpy()}
        arrays.update({f"hidden_states.{k}": h.numpy() for k, h in enumerate(out.hidden_states)})
    else:
        from xlmr_np import XLMRobertaModel

        model = XLMRobertaModel.from_pretrained(args.model)
        if args.bug:
            inputs["position_ids"] = positions(inputs["input_ids"], model.config.pad_token_id, args.bug)
        out = model(**inputs, output_hidden_states=True)
        arrays = {"last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}
        arrays.update({f"hidden_states.{k}": h for k, h in enumerate(out.hidden_states)})
    np.savez(args.outputs, **arrays)


if __name__ == "__main__":
    main()
