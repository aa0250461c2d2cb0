"""Checkpoints: finding, reading and writing weight files, and mapping HF keys to our parameter names.

Reference behaviour: transformers 4.57.6 `modeling_utils.py` (`PreTrainedModel.from_pretrained`,
`load_state_dict`, `save_pretrained`) for which file is read and what is written, and the formats'
own writers for the bytes; docs/checkpoint_formats.md describes every format and how loading stays
safe. Modules, each depending only on NumPy, the standard library, xlmr_np.errors and the ones
above it in this list:

    dtypes            bfloat16 bits -> float32, the one widening every reader uses
    safetensors_file  .safetensors: memory-mapped zero-copy reader, validated header, atomic writer
    restricted_unpickler  a pickle machine with an allow-list, every value bounded as it is built
    torch_pickle      pytorch_model.bin without torch: the restricted unpickler, no code run
    child_reader      run a reader built on a C library in a child process, bounded in time and memory
    tf_h5             tf_model.h5 (needs h5py, read in a child process) -> PyTorch names and layouts
    flax_msgpack      flax_model.msgpack (needs msgpack) -> PyTorch names and layouts
    files             which file of a directory is read (HF's order), sharded indexes, read_state_dict
    hub               resolve_model_dir: a local directory, or a hub id in the local HF cache
    commit            write a model directory all or nothing; refuse one that holds another model
    keys              the ONE table from HF keys to our names: load_params, save_params/save_model, tying, shapes
    convert           `python -m xlmr_np convert SRC DST`: any supported format -> model.safetensors

The `convert` function is reached as `xlmr_np.weights.convert.convert`; it is not re-exported here,
so that `xlmr_np.weights.convert` stays the module the command line registers.
"""

from .files import WEIGHT_FORMATS, find_weight_files, read_index, read_state_dict
from .flax_msgpack import read_flax_msgpack
from .hub import hf_cache_dir, resolve_model_dir
from .keys import HEADS, key_table, load_params, save_model, save_params, to_params, to_state_dict
from .safetensors_file import load_file, load_metadata, read_header, save_file
from .tf_h5 import read_tf_h5
from .torch_pickle import load_torch_file

__all__ = [
    "load_params", "save_params", "save_model", "to_params", "to_state_dict", "key_table", "HEADS",
    "read_state_dict", "find_weight_files", "read_index", "WEIGHT_FORMATS",
    "resolve_model_dir", "hf_cache_dir",
    "load_file", "load_metadata", "read_header", "save_file",
    "load_torch_file", "read_tf_h5", "read_flax_msgpack",
]
