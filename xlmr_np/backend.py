"""Array backends: the only module that knows CuPy exists.

Every array function in xlmr_np asks `array_module(x)` for the module that owns its inputs (NumPy or CuPy)
and calls that, so one body of code runs on the CPU and on a GPU (CuPy's "CPU/GPU generic code" pattern:
`cupy.get_array_module`). CuPy refuses implicit device-to-host conversion; so does the test stand-in that
tests register here with `register_array_module`, which is how the suite proves nothing leaks to NumPy.
"""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np

# array type -> module that creates and operates on such arrays (filled by tests or by CuPy on first use)
_REGISTERED: dict = {}


def register_array_module(array_type: type, module: Any) -> None:
    """Teach `array_module` that arrays of `array_type` belong to `module` (used by the test stand-in)."""
    _REGISTERED[array_type] = module


def _cupy():
    try:
        return importlib.import_module("cupy")
    except ImportError:
        raise ImportError("the GPU path needs CuPy: pip install 'xlmr_np[gpu]' (or a cupy-cudaXXx wheel)") from None


def array_module(*arrays: Any):
    """The array module (numpy, cupy, or a registered stand-in) of the first array among `arrays`."""
    for array in arrays:
        if array is None or isinstance(array, (int, float, bool)):
            continue
        for array_type, module in _REGISTERED.items():
            if isinstance(array, array_type):
                return module
        if type(array).__module__.split(".")[0] == "cupy":
            return _cupy()
    return np


def to_numpy(array: Any) -> np.ndarray:
    """Explicit device-to-host copy (CuPy's `asnumpy`); NumPy arrays pass through."""
    if array is None or isinstance(array, np.ndarray) and type(array) is np.ndarray:
        return array
    xp = array_module(array)
    if xp is np:
        return np.asarray(array)
    return xp.asnumpy(array)


def to_device(params: dict, device: str) -> dict:
    """Copy a dict of arrays to "cpu" (NumPy) or "gpu"/"cuda" (CuPy)."""
    if device == "cpu":
        return {name: to_numpy(value) for name, value in params.items()}
    if device in ("gpu", "cuda"):
        cupy = _cupy()
        return {name: cupy.asarray(value) for name, value in params.items()}
    raise ValueError(f"unknown device {device!r}; use 'cpu' or 'gpu'")


def native_erf(xp):
    """The backend's own erf if it has one (cupyx.scipy.special.erf on CuPy), else None."""
    if xp is np or xp in _REGISTERED.values():
        return None
    try:
        return importlib.import_module("cupyx.scipy.special").erf
    except ImportError:
        return None
