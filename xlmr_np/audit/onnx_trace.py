"""An ONNX model's activations under our trace names: `trace_onnx(path, inputs) -> {name: array}`.

The model runs in onnxruntime (the optional extra `onnx`: onnxruntime and onnx, imported when called) with the
intermediate tensors we can name added as graph outputs, so `trace --onnx model.onnx` reports the first
divergence like for any other implementation.

Naming (`ONNX_SCOPES`). torch.onnx's TorchScript exporter (what tools/export_onnx.py uses) names every node by the
module path it came from, e.g. `/encoder/layer.3/output/LayerNorm/LayerNormalization` for HF's
XLMRobertaModel (and `/roberta/encoder/...` under a head class). The output of a module is the output of the
LAST node in graph order whose name lies under its path; for a LayerNorm that is the LayerNormalization node
(opset >= 17) or the bias Add that ends its decomposition (older opsets), either way the module's result:

    node path (under /encoder/layer.{i} unless it starts with /embeddings or /pooler)   trace name
    /embeddings/LayerNorm                                  embeddings         (HF hidden_states.0)
    /attention/self/query, /key, /value                   layers.{i}.attention.query / .key / .value
    /attention/self/Softmax (the node itself)             layers.{i}.attention.probs
    /attention/self (its last node: heads merged)         layers.{i}.attention.context
    /attention/output/dense                               layers.{i}.attention.out
    /attention/output/LayerNorm                           layers.{i}.attention.norm
    /intermediate/dense                                   layers.{i}.ffn.in
    /intermediate/intermediate_act_fn                     layers.{i}.ffn.activation
    /output/dense                                         layers.{i}.ffn.out
    /output/LayerNorm                                     layers.{i}            (HF hidden_states.{i+1})

Graph outputs keep their names: an export with output_names=["last_hidden_state", "pooler_output"] (or
"logits", "start_logits", ...) gives those; a graph output already named like a trace point (tools/export_onnx.py
can add Identity outputs "layers.0", ...) is taken as it is. A graph that follows neither (another exporter's
node names) still gives its named outputs; its other tensors are not compared.
"""
from __future__ import annotations

import os
import re

import numpy as np

# (regular expression on a node's name, trace name template, which node gives it: the "last" of the scope, or the
# "node" the expression names in full)
ONNX_SCOPES = (
    (r"^/(?:roberta/)?embeddings/LayerNorm/", "embeddings", "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/attention/self/query/", "layers.{0}.attention.query", "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/attention/self/key/", "layers.{0}.attention.key", "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/attention/self/value/", "layers.{0}.attention.value", "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/attention/self/Softmax$", "layers.{0}.attention.probs", "node"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/attention/self/", "layers.{0}.attention.context", "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/attention/output/dense/", "layers.{0}.attention.out", "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/attention/output/LayerNorm/", "layers.{0}.attention.norm", "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/intermediate/dense/", "layers.{0}.ffn.in", "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/intermediate/intermediate_act_fn/", "layers.{0}.ffn.activation",
     "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/output/dense/", "layers.{0}.ffn.out", "last"),
    (r"^/(?:roberta/)?encoder/layer\.(\d+)/output/LayerNorm/", "layers.{0}", "last"),
)
_COMPILED = tuple((re.compile(pattern), name, which) for pattern, name, which in ONNX_SCOPES)


def _import():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ValueError("--onnx needs onnxruntime and onnx: pip install 'xlmr_np[onnx]'") from None
    return onnx, onnxruntime


def name_map(graph) -> dict:
    """{ONNX tensor name: trace name} for the node outputs ONNX_SCOPES names (a later node of a scope wins)."""
    found = {}
    for index, node in enumerate(graph.node):  # graph order is topological: a path's last node is its result
        for pattern, template, which in _COMPILED:
            match = pattern.match(node.name)
            if match is None:
                continue
            if node.output:
                found[template.format(*match.groups())] = (index, node.output[0])
            # the first (most specific) pattern that matches decides: query/ is not also the context
            break
    in_order = sorted(found.items(), key=lambda item: item[1][0])  # forward order, by each result's node
    return {tensor: name for name, (_, tensor) in in_order}


def load(path):
    """The model proto (external data loaded), a ValueError naming the file when it is not an ONNX model."""
    onnx, _ = _import()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    try:
        return onnx.load(path)
    except Exception as err:  # protobuf's DecodeError and friends: the file is not an ONNX model
        raise ValueError(f"{path}: not an ONNX model ({type(err).__name__}: {str(err)[:120]})") from None


def expose(model, tensors):
    """A copy of `model` whose graph also outputs `tensors` (their types from shape inference when known)."""
    onnx, _ = _import()
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(exposed)
        types = {info.name: info for info in list(inferred.graph.value_info) + list(inferred.graph.output)}
    except Exception:  # inference is only for the output types; onnxruntime accepts untyped outputs too
        types = {}
    present = {output.name for output in exposed.graph.output}
    for tensor in tensors:
        if tensor in present:
            continue
        info = onnx.ValueInfoProto()
        if tensor in types:
            info.CopyFrom(types[tensor])
        else:
            info.name = tensor
        exposed.graph.output.append(info)
    return exposed


def _feeds(session, inputs: dict, path) -> dict:
    feeds = {}
    for graph_input in session.get_inputs():
        if graph_input.name not in inputs:
            raise ValueError(f"{path}: the model needs input {graph_input.name!r}, which the inputs lack (they have "
                             f"{', '.join(sorted(inputs))})")
        kind = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32,
                "tensor(double)": np.float64}.get(graph_input.type)
        value = np.asarray(inputs[graph_input.name])
        feeds[graph_input.name] = value.astype(kind) if kind is not None else value
    return feeds


def trace_onnx(path, inputs: dict, all_tensors=False) -> dict:
    """Run the ONNX model at `path` on `inputs` ({"input_ids": [B, T], "attention_mask": ..., ...}; those the
    graph does not take are left out) and return {trace name: array} in graph order: the tensors ONNX_SCOPES
    names, then the graph's own outputs under their names. With `all_tensors`, every other node output too,
    under its ONNX name."""
    _, onnxruntime = _import()
    model = load(path)
    names = name_map(model.graph)
    wanted = list(names)
    if all_tensors:
        wanted += [out for node in model.graph.node for out in node.output if out and out not in names]
    exposed = expose(model, wanted)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # no warnings on stderr for the outputs we added
    try:
        session = onnxruntime.InferenceSession(exposed.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's own exception types: an invalid or unsupported graph
        raise ValueError(f"{path}: onnxruntime cannot load it ({type(err).__name__}: {err})") from None
    feeds = _feeds(session, inputs, path)
    output_names = [o.name for o in session.get_outputs()]
    try:
        values = session.run(output_names, feeds)
    except Exception as err:
        raise ValueError(f"{path}: onnxruntime failed to run it ({type(err).__name__}: {err})") from None
    by_tensor = dict(zip(output_names, values))
    result = {}
    for tensor, name in names.items():
        result[name] = np.asarray(by_tensor[tensor])
    for output in model.graph.output:
        result.setdefault(output.name, np.asarray(by_tensor[output.name]))
    if all_tensors:
        for tensor in wanted:
            result.setdefault(tensor, np.asarray(by_tensor[tensor]))
    return result
