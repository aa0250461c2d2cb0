"""The other side of a trace: the same named points from a Hugging Face transformers model.

    theirs = trace_hf(hf_model, input_ids=ids, attention_mask=mask)   # {name: np.ndarray}
    report = compare(trace(ours, ids, attention_mask=mask), theirs, "float32", where=mask)

For tools and tests (torch and transformers are imported inside the function; xlmr_np itself never needs
them). Every name of xlmr_np/audit/points.py is recorded from transformers 4.57.6's XLM-R modules
(`modeling_xlm_roberta.py`) with forward hooks that copy a module's output, nothing recomputed:

    embeddings.word / .token_type / .position   embeddings.word_embeddings / token_type_embeddings /
                                                position_embeddings (with inputs_embeds: that tensor itself)
    embeddings                                  embeddings.LayerNorm
    layers.{i}.attention.query / key / value    attention.self.query / key / value, viewed as
                                                [B, T, H, Dh] and transposed to [B, H, T, Dh], as HF does
    layers.{i}.attention.scores                 the tensor HF adds the mask to: `attention_scores +
                                                attention_mask` in XLMRobertaSelfAttention.forward (scaled by
                                                1/sqrt(Dh), relative scores included), caught by a
                                                torch.overrides.TorchFunctionMode as the left operand of the
                                                `add` whose right operand is the mask the module was given; with
                                                no mask, the input of its softmax
    layers.{i}.attention.probabilities          attention.self's second output (output_attentions=True, which
                                                also makes HF's sdpa modules run the eager code): after
                                                head_mask, as HF returns `attentions`
    layers.{i}.attention.context                attention.self's first output, heads merged [B, T, D]
    layers.{i}.attention.out_proj / .norm       attention.output.dense / attention.output.LayerNorm
    layers.{i}.crossattention.*                 the same, under crossattention (decoders)
    layers.{i}.ffn.in_proj                      intermediate.dense (before the activation)
    layers.{i}.ffn.activation                   intermediate: XLMRobertaIntermediate.forward applies
                                                ACT2FN[hidden_act] itself, so its output is the activation's
    layers.{i}.ffn.out_proj / .norm             output.dense / output.LayerNorm
    layers.{i}                                  encoder.layer.{i} (its first output)
    last_hidden_state, pooler_output, logits,   the fields of the model's output
    start_logits, end_logits

Hooks registered before trace_hf's (e.g. ones that inject a bug) act first: what is recorded is what the
module hands on. The model runs in eval mode under torch.no_grad(); arrays come back in the model's dtype
(float16 and bfloat16 as float32, which holds them exactly). The hooks are removed afterwards, also on error.
"""
from __future__ import annotations

import numpy as np

RECORDED_FIELDS = ("last_hidden_state", "pooler_output", "logits", "start_logits", "end_logits")


def trace_hf(hf_model, **inputs) -> dict:
    """Run a transformers XLM-R model (any of the seven classes) on `inputs` (NumPy arrays or torch tensors:
    input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, ...) and return every
    trace point, {name: np.ndarray}, in forward order."""
    import torch
    from torch.overrides import TorchFunctionMode

    base = hf_model.base_model
    dtype = next(hf_model.parameters()).dtype
    heads = base.config.num_attention_heads
    store: dict = {}

    def keep(name, tensor):
        store[name] = tensor.detach().to(torch.float32 if tensor.dtype in (torch.float16, torch.bfloat16)
                                         else tensor.dtype).cpu().numpy().copy()

    def split(tensor):  # [B, T, D] -> [B, H, T, Dh], HF's view + transpose(1, 2)
        b, t, d = tensor.shape
        return tensor.view(b, t, heads, d // heads).transpose(1, 2)

    class Scores(TorchFunctionMode):
        """Inside an attention module: catch `scores + mask` (or the softmax input when there is no mask)."""
        active = None  # (name, mask) while a self-attention module runs

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if self.active is not None:
                name, mask = self.active
                called = getattr(func, "__name__", "")
                if mask is not None and called in ("add", "__add__") and len(args) == 2 and args[1] is mask:
                    keep(name, args[0])
                elif mask is None and called == "softmax":
                    keep(name, args[0])
            return func(*args, **(kwargs or {}))

    mode = Scores()
    handles = []

    def output_hook(name, transform=None, first=False):
        def hook(module, args, output):
            value = output[0] if first else output
            keep(name, transform(value) if transform else value)
        return hook

    def on(module, name, transform=None, first=False):
        handles.append(module.register_forward_hook(output_hook(name, transform, first)))

    def attention_hooks(attention, at):
        self_attention = attention.self
        on(self_attention.query, at + "query", split)
        on(self_attention.key, at + "key", split)
        on(self_attention.value, at + "value", split)

        def enter(module, args, kwargs):
            mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
            mode.active = (at + "scores", mask)

        def leave(module, args, output):
            mode.active = None
            if len(output) > 1 and output[1] is not None:
                keep(at + "probabilities", output[1])
            keep(at + "context", output[0])

        handles.append(self_attention.register_forward_pre_hook(enter, with_kwargs=True))
        handles.append(self_attention.register_forward_hook(leave))
        on(attention.output.dense, at + "out_proj")
        on(attention.output.LayerNorm, at + "norm")

    embeddings = base.embeddings
    on(embeddings.word_embeddings, "embeddings.word")
    on(embeddings.token_type_embeddings, "embeddings.token_type")
    on(embeddings.position_embeddings, "embeddings.position")
    on(embeddings.LayerNorm, "embeddings")
    for i, layer in enumerate(base.encoder.layer):
        attention_hooks(layer.attention, f"layers.{i}.attention.")
        if getattr(layer, "crossattention", None) is not None:
            attention_hooks(layer.crossattention, f"layers.{i}.crossattention.")
        on(layer.intermediate.dense, f"layers.{i}.ffn.in_proj")
        on(layer.intermediate, f"layers.{i}.ffn.activation")
        on(layer.output.dense, f"layers.{i}.ffn.out_proj")
        on(layer.output.LayerNorm, f"layers.{i}.ffn.norm")
        on(layer, f"layers.{i}", first=True)

    call = {name: _to_torch(value, dtype, torch) for name, value in inputs.items()}
    if call.get("inputs_embeds") is not None:
        keep("embeddings.word", call["inputs_embeds"])
    was_training = hf_model.training
    hf_model.eval()
    try:
        with torch.no_grad(), mode:
            output = hf_model(**call, output_attentions=True, return_dict=True)
    finally:
        for handle in handles:
            handle.remove()
        hf_model.train(was_training)
    for name in RECORDED_FIELDS:
        value = getattr(output, name, None)
        if value is not None:
            keep(name, value)
    return store


def _to_torch(value, dtype, torch):
    """NumPy (or nested lists) -> torch: integer arrays as int64, float arrays in the model's dtype."""
    if value is None or isinstance(value, (bool, torch.Tensor)) or not hasattr(value, "__len__"):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "iub":
        return torch.from_numpy(array.astype(np.int64))
    return torch.from_numpy(array.astype(np.float64)).to(dtype)
