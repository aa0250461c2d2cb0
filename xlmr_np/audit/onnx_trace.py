"""An ONNX model's activations under our trace names: `trace_onnx(path, inputs) -> {name: array}`.

The model runs in onnxruntime (the optional extra `onnx`: onnxruntime and onnx, imported when called) with the
intermediate tensors we can name added as graph outputs, so `trace --onnx model.onnx` compares every sub-step
it can name with ours and reports the first divergence like for any other implementation.

Naming (`ONNX_SCOPES`; the names are those of xlmr_np/audit/points.py). torch.onnx's TorchScript exporter (what
tools/export_onnx.py uses) names every node by the module path it came from, e.g.
`/encoder/layer.3/output/LayerNorm/LayerNormalization` for HF's XLMRobertaModel (`/roberta/encoder/...` under a
head class). The output of a module is the output of the LAST node in graph order whose name lies under its path;
for a LayerNorm that is the LayerNormalization node (opset >= 17) or the bias Add that ends its decomposition
(older opsets), either way the module's result:

    node path (under /encoder/layer.{i} unless it starts with /embeddings)   trace name
    /embeddings/word_embeddings, /token_type_embeddings, /position_embeddings   embeddings.word / .token_type / .position
    /embeddings/LayerNorm                                  embeddings         (HF hidden_states.0)
    /attention/self/query, /key, /value                   layers.{i}.attention.query / .key / .value (split per head)
    /attention/self/Softmax: the Add before it, its operand from this scope   layers.{i}.attention.scores
    /attention/self/Softmax (the node itself)             layers.{i}.attention.probabilities
    /attention/self (its last node: heads merged)         layers.{i}.attention.context
    /attention/output/dense                               layers.{i}.attention.out_proj
    /attention/output/LayerNorm                           layers.{i}.attention.norm
    /intermediate/dense                                   layers.{i}.ffn.in_proj
    /intermediate/intermediate_act_fn                     layers.{i}.ffn.activation
    /output/dense                                         layers.{i}.ffn.out_proj
    /output/LayerNorm                                     layers.{i}.ffn.norm and layers.{i} (HF hidden_states.{i+1})

Layouts. The query, key and value Linear outputs are [B, T, D] in the graph; ours are per head, [B, H, T, Dh]
(HF's view + transpose(1, 2)), so trace_onnx reshapes them the same way, `x.reshape(B, T, H, Dh).transpose(0, 2,
1, 3)`, with H from `num_heads` or else from the same layer's Softmax output [B, H, T, S]. The scores are HF's
`attention_scores` after the 1/sqrt(Dh) scaling (and relative-position terms), before the mask: the operand of
the Add that feeds the Softmax which is computed inside the layer's attention (the other one is the extended
mask, computed once outside the layers); with no Add there (an export without a mask), the Softmax's input.
Cross-attention (decoders) and the pooler are not mapped; their graph outputs are.

Graph outputs keep their names: an export with output_names=["last_hidden_state", "pooler_output"] (or
"logits", "start_logits", ...) gives those; a graph output already named like a trace point (tools/export_onnx.py
--expose adds Identity outputs "layers.0", ...) is taken as it is. A graph that follows neither (another
exporter's node names) still gives its named outputs; its other tensors are not compared.
"""
from __future__ import annotations

import os
import re

import numpy as np

_ROOT = r"^/(?:roberta/)?"
_LAYER = _ROOT + r"encoder/layer\.(\d+)/"
# (regular expression on a node's name, trace name template, which node gives it: the "last" of the scope, or the
# "node" the expression names in full). The first pattern that matches a node decides.
ONNX_SCOPES = (
    (_ROOT + "embeddings/word_embeddings/", "embeddings.word", "last"),
    (_ROOT + "embeddings/token_type_embeddings/", "embeddings.token_type", "last"),
    (_ROOT + "embeddings/position_embeddings/", "embeddings.position", "last"),
    (_ROOT + "embeddings/LayerNorm/", "embeddings", "last"),
    (_LAYER + "attention/self/query/", "layers.{0}.attention.query", "last"),
    (_LAYER + "attention/self/key/", "layers.{0}.attention.key", "last"),
    (_LAYER + "attention/self/value/", "layers.{0}.attention.value", "last"),
    (_LAYER + "attention/self/Softmax$", "layers.{0}.attention.probabilities", "node"),
    (_LAYER + "attention/self/", "layers.{0}.attention.context", "last"),
    (_LAYER + "attention/output/dense/", "layers.{0}.attention.out_proj", "last"),
    (_LAYER + "attention/output/LayerNorm/", "layers.{0}.attention.norm", "last"),
    (_LAYER + "intermediate/dense/", "layers.{0}.ffn.in_proj", "last"),
    (_LAYER + "intermediate/intermediate_act_fn/", "layers.{0}.ffn.activation", "last"),
    (_LAYER + "output/dense/", "layers.{0}.ffn.out_proj", "last"),
    (_LAYER + "output/LayerNorm/", "layers.{0}.ffn.norm", "last"),
)
_COMPILED = tuple((re.compile(pattern), name, which) for pattern, name, which in ONNX_SCOPES)
PER_HEAD = ("query", "key", "value")  # [B, T, D] in the graph, [B, H, T, Dh] in our scheme
_SOFTMAX = re.compile(_LAYER + "attention/self/Softmax$")


def _import():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ValueError("--onnx needs onnxruntime and onnx: pip install 'xlmr_np[onnx]'") from None
    return onnx, onnxruntime


def name_map(graph) -> dict:
    """{trace name: ONNX tensor name} in forward order for the node outputs ONNX_SCOPES names (a later node of a
    scope wins), the scores (see the module docstring), and layers.{i} (the tensor of layers.{i}.ffn.norm)."""
    found, producer = {}, {}
    for index, node in enumerate(graph.node):  # graph order is topological: a path's last node is its result
        for tensor in node.output:
            producer[tensor] = node
        for pattern, template, which in _COMPILED:
            match = pattern.match(node.name)
            if match is None:
                continue
            if node.output:
                found[template.format(*match.groups())] = (index, node.output[0])
            break  # the first (most specific) pattern that matches decides: query/ is not also the context
    for node in graph.node:
        match = _SOFTMAX.match(node.name)
        if match and node.input:
            index, _ = found[f"layers.{match.group(1)}.attention.probabilities"]
            found[f"layers.{match.group(1)}.attention.scores"] = (index - 0.5, _scores_tensor(node, producer))
    for name in [n for n in found if n.endswith(".ffn.norm")]:
        found[name[:-len(".ffn.norm")]] = (found[name][0] + 0.5, found[name][1])
    return {name: tensor for name, (_, tensor) in sorted(found.items(), key=lambda item: item[1][0])}


def _scores_tensor(softmax, producer) -> str:
    """The pre-mask scores: of the Add feeding the Softmax, the operand computed in the same attention scope
    (the mask comes from outside the layers); the Softmax's own input when no Add feeds it."""
    feeding = producer.get(softmax.input[0])
    if feeding is None or feeding.op_type != "Add":
        return softmax.input[0]
    scope = softmax.name.rsplit("/", 1)[0] + "/"
    inside = [t for t in feeding.input if t in producer and producer[t].name.startswith(scope)]
    return inside[0] if len(inside) == 1 else softmax.input[0]


def split_heads(x, heads: int):
    """[B, T, D] -> [B, H, T, Dh], as HF's view(B, T, H, Dh).transpose(1, 2)."""
    batch, tokens, width = x.shape
    return x.reshape(batch, tokens, heads, width // heads).transpose(0, 2, 1, 3)  # [B, T, D] -> [B, H, T, Dh]


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


def trace_onnx(path, inputs: dict, all_tensors=False, num_heads=None) -> dict:
    """Run the ONNX model at `path` on `inputs` ({"input_ids": [B, T], "attention_mask": ..., ...}; those the
    graph does not take are left out) and return {trace name: array} in forward order: the tensors name_map
    names (q/k/v split per head: `num_heads`, else the head count of the layer's Softmax output), then the
    graph's own outputs under their names. With `all_tensors`, every other node output too, under its ONNX
    name."""
    _, onnxruntime = _import()
    model = load(path)
    names = name_map(model.graph)
    wanted = list(dict.fromkeys(names.values()))
    if all_tensors:
        wanted += [out for node in model.graph.node for out in node.output if out and out not in wanted]
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
    result = {name: np.asarray(by_tensor[tensor]) for name, tensor in names.items()}
    for name in list(result):
        layer, _, step = name.rpartition(".attention.")
        if step in PER_HEAD and result[name].ndim == 3:
            probabilities = result.get(f"{layer}.attention.probabilities")
            heads = num_heads or (probabilities.shape[1] if probabilities is not None else None)
            if heads and result[name].shape[-1] % heads == 0:
                result[name] = split_heads(result[name], heads)
    for output in model.graph.output:
        result.setdefault(output.name, np.asarray(by_tensor[output.name]))
    if all_tensors:
        for tensor in wanted:
            result.setdefault(tensor, np.asarray(by_tensor[tensor]))
    return result
