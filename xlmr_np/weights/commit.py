"""Write a model directory so that a failure at any point leaves the model that was there loadable.

`write_model_files(directory, writers, overwrite)` is what `convert` and `save_pretrained` use:

1. refuse a directory that already holds a model (config.json or any weight file, `model_files`)
   unless `overwrite`: without it, converting into the folder of another model silently replaced
   its config.json and tokenizer files and left its weights beside the new ones;
2. write every file to a temporary name in the directory (`.{name}.{random}.tmp`, so the same
   filesystem), flushed to disk; if any write fails (a full disk, a file-size limit, Ctrl-C),
   remove the temporary files written so far and re-raise, touching nothing else;
3. only when ALL of them are complete, rename each into place (`os.replace`, atomic per file:
   weights first, config.json last), then remove the files of the old safetensors layout that the
   new one does not have (shards and index after a single file, or the reverse), as HF's
   `PreTrainedModel.save_pretrained` cleans a previous save's shards.

Before, `convert --overwrite` deleted the old weights before writing the new ones (a full disk left
no weights), and save_pretrained wrote config.json in place before the weights (under a file-size
limit it was cut to 300 bytes and the folder no longer loaded). Files of other formats
(pytorch_model.bin, tf_model.h5, ...) are left as they are: HF's loaders prefer model.safetensors.
A crash (not an exception) between two renames can still mix old and new files; the renames take
microseconds, the writes before them all the time.
"""

import os
import re
import secrets
from pathlib import Path

from ..errors import CheckpointError

__all__ = ["ModelExists", "model_files", "write_model_files", "write_bytes"]

# config.json and the weight files of every format HF has written (files.WEIGHT_FORMATS, shards,
# indexes, TF1 checkpoints)
_MODEL_FILE = re.compile(r"^(config\.json|model\.ckpt\.index|"
                         r"(model|pytorch_model|tf_model|flax_model)(-\d{5}-of-\d{5})?"
                         r"\.(safetensors|bin|h5|msgpack)(\.index\.json)?)$")
_SAFETENSORS_LAYOUT = re.compile(r"^model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?$")


class ModelExists(CheckpointError):
    """The destination already holds a model and overwriting was not asked for."""

    def __init__(self, directory, names, fix="pass overwrite=True"):
        self.directory, self.names = Path(directory), names
        super().__init__(f"{directory}: already holds {', '.join(names)} (a model); {fix} to "
                         f"replace it")


def model_files(directory):
    """Names of the files in `directory` that belong to a model: weights (sorted), then config.json."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    names = [p.name for p in directory.iterdir() if _MODEL_FILE.match(p.name)]
    return sorted(names, key=lambda name: (name == "config.json", name))


def write_bytes(path, data):
    """Write `data` to `path` and flush it to disk (os.fsync) before returning."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _order(name):
    # weights first (shards, then the index or single file that names them), config.json last
    return (name == "config.json", not _SAFETENSORS_LAYOUT.match(name), name.endswith(".json"))


def write_model_files(directory, writers, overwrite=False):
    """Write {name: write(path)} into `directory` all or nothing; return the final paths.

    Each `write` must create the file at the path it is given (e.g. safetensors `save_file`, or
    `lambda p: write_bytes(p, data)`). Raises ModelExists when the directory holds a model
    (config.json or weights) and not `overwrite`.
    """
    directory = Path(directory)
    before = model_files(directory)
    if before and not overwrite:
        raise ModelExists(directory, before)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = {}
    try:
        for name, write in writers.items():
            temporary[name] = directory / f".{name}.{secrets.token_hex(6)}.tmp"
            write(temporary[name])
    except BaseException:
        for path in temporary.values():
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        raise
    for name in sorted(writers, key=_order):
        os.replace(temporary[name], directory / name)
    for name in before:
        if _SAFETENSORS_LAYOUT.match(name) and name not in writers:
            (directory / name).unlink()  # a shard or index of the old layout: stale now
    return [directory / name for name in writers]
