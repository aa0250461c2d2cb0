"""numpy's OpenBLAS thread count, read and set through the library's own C functions (ctypes).

numpy offers no call for this (threadpoolctl does the same from outside). The threaded encoder sets one BLAS
thread per stream while it runs; the count is process-wide, so other threads' GEMMs see it meanwhile.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os

import numpy as np


class OpenBLAS:
    """get() and set(n) of the library's thread count, through its C functions."""

    def __init__(self, get_function, set_function):
        self._get, self._set = get_function, set_function
        self._get.restype, self._set.argtypes = ctypes.c_int, [ctypes.c_int]

    def get(self) -> int:
        return self._get()

    def set(self, threads: int) -> None:
        self._set(threads)


_CACHE: list = []


def openblas():
    """numpy's bundled OpenBLAS (scipy-openblas wheels: 64-bit or 32-bit integers) through ctypes, or None."""
    if not _CACHE:
        found = None
        directory = os.path.dirname(np.__file__)
        for path in sorted(glob.glob(directory + ".libs/*openblas*") + glob.glob(directory + "/.dylibs/*openblas*")):
            try:
                library = ctypes.CDLL(path)  # already loaded by numpy: the same library, not a second copy
            except OSError:
                continue
            for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", "")):
                names = (prefix + "get_num_threads" + suffix, prefix + "set_num_threads" + suffix)
                if all(hasattr(library, name) for name in names):
                    found = OpenBLAS(*(getattr(library, name) for name in names))
                    break
            if found is not None:
                break
        _CACHE.append(found)
    return _CACHE[0]


_RESTORE: list = []  # the counts to restore, innermost last, while thread_limit blocks run


@contextlib.contextmanager
def thread_limit(threads: int):
    """Run the block with OpenBLAS at `threads` threads, and restore its count afterwards (also after errors).

    The count is process-wide (OpenBLAS has no per-thread setting: openblas_set_num_threads_local sets the
    same global), so other threads' GEMMs run with it too while the block runs.
    """
    blas = openblas()
    _RESTORE.append(blas.get())
    blas.set(threads)
    try:
        yield
    finally:
        blas.set(_RESTORE.pop())


def _restore_in_child():
    """A child forked inside a thread_limit block would keep the limit for life: give it the count back."""
    if _RESTORE:
        openblas().set(_RESTORE[0])
        _RESTORE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restore_in_child)
