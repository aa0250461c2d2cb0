"""Read Hugging Face TensorFlow checkpoints (`tf_model.h5`) as a PyTorch-named state dict.

Reference behaviour: transformers 4.57.6 `modeling_tf_pytorch_utils.py`
(`convert_tf_weight_name_to_pt_weight_name`: how a TF2 weight name becomes a PyTorch key and which
weights are transposed; `load_tf2_state_dict_in_pytorch_model`: the `roberta.` start prefix a
bare model drops) and the Keras `save_weights` HDF5 layout that `TF*.save_pretrained` writes: a root
attribute `layer_names`, one group per layer listing its `weight_names`, a dataset per weight.
See docs/checkpoint_formats.md ("TensorFlow tf_model.h5").

h5py is optional (the `formats` extra) and imported only when a file is read. The file is data
from a stranger: datasets are reached through hard links only, virtual and external storage are
refused, and the datasets together may not claim more bytes than the file holds. libhdf5 parses
the file in C, where a corrupt file can make it crash, allocate without end or loop, deaf to
Ctrl-C; so `keras_weights` runs in a child process (`child_reader`), bounded in time
(`time_limit`, default `TIME_LIMIT_S` plus `SECONDS_PER_GB` per GB of file) and memory (its
address space may grow by `MEMORY_BASE` plus 3x the file), and every failure, whatever h5py
raised, is a `CheckpointError`.
"""

import os
import re

import numpy as np

from ..errors import CheckpointError
from .child_reader import read_in_child, serve

__all__ = ["read_tf_h5", "tf_name_to_pt", "keras_weights", "TIME_LIMIT_S", "SECONDS_PER_GB"]

TIME_LIMIT_S = 10.0  # every read may take this long, plus
SECONDS_PER_GB = 60.0  # this per GB of file (libhdf5 reads a sound file at about 1 GB/s)
MEMORY_BASE = 512 * 2**20  # the child's memory may grow by this plus 3x the file (array + transpose)
_CHILD_ENTRY = "from xlmr_np.weights.tf_h5 import serve_child; serve_child()"


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


def _h5_dataset(h5py, group, name, path, budget):
    """Follow `name` inside `group` through hard links only; check the dataset before reading it."""
    node = group
    for part in name.split("/"):
        link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
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
    if node.size * node.dtype.itemsize > budget:
        raise CheckpointError(f"{path}: weight {name!r} claims shape {node.shape} "
                              f"({node.size * node.dtype.itemsize} bytes), more than the file holds "
                              f"beside the weights before it")
    return np.asarray(node[()])


def keras_weights(path, file_size):
    """Yield (PyTorch key, array in PyTorch layout) for every weight of a Keras weights file, in file
    order, duplicates included. Runs in the child process (h5py is imported here)."""
    import h5py
    budget = file_size  # Keras stores datasets uncompressed: together they fit in the file
    with h5py.File(path, "r") as f:
        layers = _h5_strings(f, "layer_names")
        if not layers:
            raise CheckpointError(f"{path}: no 'layer_names' attribute; not a Keras weights file")
        for layer in layers:
            if not isinstance(f.get(layer, getlink=True), h5py.HardLink):
                raise CheckpointError(f"{path}: layer {layer!r} is missing or a link")
            group = f[layer]
            for weight in _h5_strings(group, "weight_names"):
                array = _h5_dataset(h5py, group, weight, path, budget)
                budget -= array.nbytes
                key, transpose = tf_name_to_pt(weight)
                if transpose:
                    if array.ndim != 2:
                        raise CheckpointError(f"{path}: kernel {weight!r} has {array.ndim} "
                                              f"dimensions; only dense kernels are supported")
                    array = np.ascontiguousarray(array.T)  # TF [in, out] -> PyTorch [out, in]
                yield key, array


def serve_child():
    """The child process's main: answer read requests with `keras_weights` (child_reader.serve)."""
    serve(keras_weights)


def read_tf_h5(path, time_limit=None):
    """Read a TF2 `tf_model.h5` (HF TF*.save_pretrained) as a PyTorch-named state dict.

    Kernels are transposed from TF's [in, out] to PyTorch's [out, in]. Keras lists the shared word
    embeddings under every layer that uses them; duplicates must agree. A bare TFXLMRobertaModel
    keeps its weights under 'roberta/', which the PyTorch XLMRobertaModel does not: when every
    key starts with 'roberta.' the prefix is dropped (HF's start_prefix_to_remove does the same).
    The file is read in a child process that is stopped after `time_limit` seconds (default:
    TIME_LIMIT_S + SECONDS_PER_GB per GB); any failure is a CheckpointError.
    """
    try:
        import h5py  # noqa: F401 - read in the child; checked here for a clear message
    except ImportError:
        raise ImportError(f"reading {path} (a TensorFlow checkpoint) needs h5py: "
                          f"pip install h5py (or convert it to model.safetensors)") from None
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: not a regular file")
    size = os.path.getsize(path)
    if time_limit is None:
        time_limit = TIME_LIMIT_S + SECONDS_PER_GB * size / 1e9
    state = {}
    for key, array in read_in_child(_CHILD_ENTRY, path, size, time_limit,
                                    MEMORY_BASE + 3 * size):
        if key in state:
            if state[key].shape != array.shape or not np.array_equal(state[key], array):
                raise CheckpointError(f"{path}: {key!r} is stored twice with different values")
            continue
        state[key] = array
    if state and all(k.startswith("roberta.") for k in state):
        state = {k[len("roberta."):]: v for k, v in state.items()}
    return state
