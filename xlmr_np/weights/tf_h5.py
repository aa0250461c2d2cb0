"""Read Hugging Face TensorFlow checkpoints (`tf_model.h5`) as a PyTorch-named state dict.

Reference behaviour: transformers 4.57.6 `modeling_tf_pytorch_utils.py`
(`convert_tf_weight_name_to_pt_weight_name`: how a TF2 weight name becomes a PyTorch key and which
weights are transposed; `load_tf2_state_dict_in_pytorch_model`: the `roberta.` start prefix a
bare model drops) and the Keras `save_weights` HDF5 layout that `TF*.save_pretrained` writes: a root
attribute `layer_names`, one group per layer listing its `weight_names`, a dataset per weight.
See docs/checkpoint_formats.md ("TensorFlow tf_model.h5").

h5py is optional (the `formats` extra) and imported only when a file is read. The file is data
from a stranger: datasets are reached through hard links only, virtual and external storage are
refused, and no dataset may claim more bytes than the file holds.
"""

import os
import re

import numpy as np

from ..errors import CheckpointError

__all__ = ["read_tf_h5", "tf_name_to_pt"]


def tf_name_to_pt(tf_name):
    """TF2 weight name -> (PyTorch key, transpose?), as HF's convert_tf_weight_name_to_pt_weight_name.

    'tfxlm_roberta_for_masked_lm/roberta/encoder/layer_._0/attention/self/query/kernel:0'
    -> ('roberta.encoder.layer.0.attention.self.query.weight', True): drop ':0' and the model
    name (level zero), '_._' is a list index, kernel -> weight (TF stores [in, out]),
    embeddings/gamma -> weight, beta -> bias.
    """
    name = re.sub(r":\d+$", "", tf_name).replace("_._", "/")
    parts = [p for p in name.split("/") if p]
    if len(parts) > 1:
        parts = parts[1:]
    transpose = parts[-1] == "kernel"
    parts[-1] = {"kernel": "weight", "embeddings": "weight", "gamma": "weight",
                 "beta": "bias"}.get(parts[-1], parts[-1])
    return ".".join(parts), transpose


def _h5_strings(obj, attr):
    """A Keras string-list attribute, which Keras splits into attr0, attr1, ... when large."""
    if attr in obj.attrs:
        values = list(obj.attrs[attr])
    else:
        values, i = [], 0
        while f"{attr}{i}" in obj.attrs:
            values += list(obj.attrs[f"{attr}{i}"])
            i += 1
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _h5_dataset(h5py, group, name, path, file_size):
    """Follow `name` inside `group` through hard links only; check the dataset before reading it."""
    node = group
    for part in name.split("/"):
        link = node.get(part, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise CheckpointError(f"{path}: weight {name!r} is missing or reached through a "
                                  f"{type(link).__name__ if link else 'missing'} link; refusing")
        node = node[part]
    if not isinstance(node, h5py.Dataset):
        raise CheckpointError(f"{path}: weight {name!r} is not a dataset")
    if node.is_virtual or node.external:
        raise CheckpointError(f"{path}: weight {name!r} reads data from other files; refusing")
    if node.dtype.kind not in "fiub" or node.dtype.itemsize > 8:
        raise CheckpointError(f"{path}: weight {name!r} has unsupported dtype {node.dtype}")
    if node.size * node.dtype.itemsize > file_size:
        raise CheckpointError(f"{path}: weight {name!r} claims shape {node.shape} "
                              f"({node.size * node.dtype.itemsize} bytes), more than the file holds")
    return np.asarray(node[()])


def read_tf_h5(path):
    """Read a TF2 `tf_model.h5` (HF TF*.save_pretrained) as a PyTorch-named state dict.

    Kernels are transposed from TF's [in, out] to PyTorch's [out, in]. Keras lists the shared word
    embeddings under every layer that uses them; duplicates must agree. A bare TFXLMRobertaModel
    keeps its weights under 'roberta/', which the PyTorch XLMRobertaModel does not: when every
    key starts with 'roberta.' the prefix is dropped (HF's start_prefix_to_remove does the same).
    """
    try:
        import h5py
    except ImportError:
        raise ImportError(f"reading {path} (a TensorFlow checkpoint) needs h5py: "
                          f"pip install h5py (or convert it to model.safetensors)") from None
    path = os.fspath(path)
    file_size = os.path.getsize(path)
    state = {}
    try:
        with h5py.File(path, "r") as f:
            layers = _h5_strings(f, "layer_names")
            if not layers:
                raise CheckpointError(f"{path}: no 'layer_names' attribute; not a Keras weights file")
            for layer in layers:
                if not isinstance(f.get(layer, getlink=True), h5py.HardLink):
                    raise CheckpointError(f"{path}: layer {layer!r} is missing or a link")
                group = f[layer]
                for weight in _h5_strings(group, "weight_names"):
                    array = _h5_dataset(h5py, group, weight, path, file_size)
                    key, transpose = tf_name_to_pt(weight)
                    if transpose:
                        if array.ndim != 2:
                            raise CheckpointError(f"{path}: kernel {weight!r} has {array.ndim} "
                                                  f"dimensions; only dense kernels are supported")
                        array = np.ascontiguousarray(array.T)  # TF [in, out] -> PyTorch [out, in]
                    if key in state:
                        if state[key].shape != array.shape or not np.array_equal(state[key], array):
                            raise CheckpointError(f"{path}: {weight!r} is stored twice with "
                                                  f"different values")
                        continue
                    state[key] = array
    except OSError as e:  # h5py reports a corrupt or non-HDF5 file as OSError
        raise CheckpointError(f"{path}: not a readable HDF5 file ({e})") from None
    if state and all(k.startswith("roberta.") for k in state):
        state = {k[len("roberta."):]: v for k, v in state.items()}
    return state
