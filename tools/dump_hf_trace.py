"""Dump a transformers checkpoint's trace points to an .npz with xlmr_np's names (xlmr_np.audit.hf_trace.trace_hf).

    python3 tools/dump_hf_trace.py --model DIR --class XLMRobertaModel --inputs inputs.npz --out hf_trace.npz \
        [--dtype float32|float64]
    python -m xlmr_np trace --model DIR --inputs inputs.npz --against hf_trace.npz

The worked example of "their side" in docs/verification.md: a port writes the same names the same way.
Needs torch and transformers (4.57.x); the .npz holds trace points only, so the versions used are printed.
--inputs is an .npz with input_ids and optionally
attention_mask, token_type_ids, position_ids (as `trace --inputs`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a transformers checkpoint directory")
    parser.add_argument("--class", dest="cls", default="XLMRobertaModel", help="transformers class name")
    parser.add_argument("--inputs", required=True, help="inputs .npz (input_ids, attention_mask, ...)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--out", required=True, help="the .npz to write")
    args = parser.parse_args(argv)

    import torch
    import transformers

    from xlmr_np.audit.hf_trace import trace_hf
    from xlmr_np.audit.trace import read_inputs, write_trace

    inputs = read_inputs(args.inputs)
    model = getattr(transformers, args.cls).from_pretrained(args.model, attn_implementation="eager")
    model = model.to(torch.float64 if args.dtype == "float64" else torch.float32).eval()
    points = trace_hf(model, **inputs)
    write_trace(args.out, points)
    print(f"wrote {len(points)} trace points of {args.cls} ({args.dtype}) to {args.out} "
          f"(transformers {transformers.__version__}, torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
