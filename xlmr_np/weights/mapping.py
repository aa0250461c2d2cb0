"""One read-only memory map per weight file, holding the open file it was made from.

np.memmap keeps the mapping but not the file: code that later reads "the same file" by its name (the
runtime's row reads and windowed LM decoder, which avoid making the whole matrix resident) would read
whatever is at that path now, after a checkpoint was rewritten or deleted. The open file is kept as the
array's SOURCE_FILE attribute instead, so every read sees the bytes that were loaded.
"""
from __future__ import annotations

import os
import weakref

import numpy as np

SOURCE_FILE = "source_file"  # the attribute name xlmr_np.runtime.mapped_weights reads


def map_file(path) -> np.memmap:
    """The whole file as a read-only uint8 np.memmap whose SOURCE_FILE attribute is the open file."""
    source = open(os.fspath(path), "rb")
    try:
        mapped = np.memmap(source, dtype=np.uint8, mode="r")
    except BaseException:
        source.close()
        raise
    setattr(mapped, SOURCE_FILE, source)
    weakref.finalize(mapped, source.close)  # closed with the mapping, when its last view goes
    return mapped
