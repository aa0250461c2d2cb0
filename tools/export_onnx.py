"""Export a transformers checkpoint to ONNX with torch.onnx, for `python -m xlmr_np trace --onnx`.

    python tools/export_onnx.py --model path/to/checkpoint --out model.onnx [--class XLMRobertaForMaskedLM]
    python -m xlmr_np trace --model path/to/checkpoint --onnx model.onnx --ids "0 581 10269 2"

Uses torch.onnx.export's TorchScript exporter (dynamo=False), whose node names carry the module path
(/encoder/layer.3/output/LayerNorm/...): xlmr_np.audit.onnx_trace maps those to trace names (table in its
docstring and in docs/verification.md). Inputs input_ids and attention_mask (and token_type_ids with
--token-types), batch and length dynamic; outputs under HF's field names (last_hidden_state + pooler_output,
or logits, or start_logits + end_logits). With --expose, every intermediate the map names is also a graph
output under its trace name (an Identity node; q/k/v through a Reshape + Transpose to our per-head layout
[B, H, T, Dh]), so any ONNX runtime returns "layers.0.attention.query", "layers.0", ... directly.
Dev-only: needs torch, transformers and onnx.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OUTPUT_NAMES = {
    "XLMRobertaModel": ["last_hidden_state", "pooler_output"],
    "XLMRobertaForQuestionAnswering": ["start_logits", "end_logits"],
}


def export(model_dir, out, cls="XLMRobertaModel", opset=17, token_types=False, expose=False):
    import torch
    import transformers

    model = getattr(transformers, cls).from_pretrained(model_dir, attn_implementation="eager",
                                                       dtype=torch.float32).eval()
    model.config.return_dict = False  # tuples: the exporter names them by output_names
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if token_types else [])
    example = tuple(torch.tensor([[0, 5, 6, 7, 2], [0, 8, 9, 2, 1]]) if n == "input_ids" else
                    torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]) if n == "attention_mask" else
                    torch.zeros(2, 5, dtype=torch.long) for n in names)
    outputs = OUTPUT_NAMES.get(cls, ["logits"])
    axes = {n: {0: "batch", 1: "length"} for n in names}
    with torch.no_grad():
        torch.onnx.export(model, example, str(out), input_names=names, output_names=outputs, dynamic_axes=axes,
                          opset_version=opset, dynamo=False)
    if expose:
        import onnx

        from xlmr_np.audit.onnx_trace import PER_HEAD, name_map

        graph_model = onnx.load(str(out))
        graph = graph_model.graph
        present = {o.name for o in graph.output}
        heads = model.config.num_attention_heads
        head_dim = model.config.hidden_size // heads
        # [B, T, D] -> [B, T, H, Dh] -> [B, H, T, Dh] for q/k/v (our per-head layout); 0 copies B and T
        graph.initializer.append(onnx.numpy_helper.from_array(np.array([0, 0, heads, head_dim], np.int64),
                                                              "expose/per_head_shape"))
        for name, tensor in name_map(graph).items():
            if name in present:
                continue
            if name.rpartition(".")[2] in PER_HEAD:
                split = f"expose/{name}/split"
                graph.node.append(onnx.helper.make_node("Reshape", [tensor, "expose/per_head_shape"], [split],
                                                        name=f"expose/{name}/Reshape"))
                graph.node.append(onnx.helper.make_node("Transpose", [split], [name], perm=[0, 2, 1, 3],
                                                        name=f"expose/{name}/Transpose"))
            else:
                graph.node.append(onnx.helper.make_node("Identity", [tensor], [name], name=f"expose/{name}"))
            graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        onnx.save(graph_model, str(out))
    return outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (config.json + weights)")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--class", dest="cls", default="XLMRobertaModel", help="HF class name")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (17+: one LayerNormalization node)")
    parser.add_argument("--token-types", action="store_true", help="also take token_type_ids as an input")
    parser.add_argument("--expose", action="store_true", help="add every mapped intermediate as a graph output")
    args = parser.parse_args(argv)
    outputs = export(args.model, args.out, args.cls, args.opset, args.token_types, args.expose)
    print(f"wrote {args.out}: outputs {', '.join(outputs)}{' + intermediates' if args.expose else ''}")


if __name__ == "__main__":
    main()
