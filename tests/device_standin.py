"""A stand-in for a GPU array library, for tests: arrays that refuse to become NumPy arrays implicitly.

CuPy raises TypeError on implicit device-to-host conversion (np.asarray(cupy_array)) and does not mix its
arrays with NumPy arrays. `DeviceArray` does the same, and `device` is a module-like namespace whose
functions return DeviceArrays (everything NumPy offers, computed on the host behind the curtain). Code that
takes its array module from its inputs runs unchanged on it; code that calls NumPy directly on model arrays,
or mixes in a host array, fails loudly.
"""
from __future__ import annotations

import operator

import numpy as np


class ImplicitHostConversion(TypeError):
    pass


def _unwrap(value):
    if isinstance(value, DeviceArray):
        return value._data
    if isinstance(value, np.ndarray) and value.ndim > 0:
        raise ImplicitHostConversion("a host (NumPy) array was mixed with device arrays; create it with the "
                                     "array module of the inputs (backend.array_module)")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, np.ndarray):
        return DeviceArray(value)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


class DeviceArray:
    __slots__ = ("_data",)

    def __init__(self, data):
        self._data = np.asarray(data)

    # What CuPy refuses.
    def __array__(self, *args, **kwargs):
        raise ImplicitHostConversion("implicit conversion of a device array to NumPy is not allowed; "
                                     "use backend.to_numpy")

    __array_ufunc__ = None  # np.exp(device_array) etc. raise TypeError instead of silently working
    __array_priority__ = 1000

    def __array_function__(self, func, types, args, kwargs):
        raise ImplicitHostConversion(f"numpy.{func.__name__} was called on a device array; "
                                     f"use the array module of the inputs")

    # Scalars may be read (CuPy synchronises and converts 0-d arrays too).
    def __int__(self):
        return int(self._data)

    def __float__(self):
        return float(self._data)

    def __bool__(self):
        return bool(self._data)

    def __index__(self):
        return operator.index(self._data)

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        return f"DeviceArray({self._data!r})"

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__ / __array_struct__: NumPy must not see the data
            raise AttributeError(name)
        attr = getattr(self._data, name)
        if callable(attr):
            return lambda *a, **k: _wrap(attr(*_unwrap(a), **_unwrap(k)))
        return _wrap(attr)

    def __getitem__(self, index):
        return _wrap(self._data[_unwrap(index)])

    def __setitem__(self, index, value):
        self._data[_unwrap(index)] = _unwrap(value)

    @property
    def T(self):
        return DeviceArray(self._data.T)


def _binary(name):
    op = getattr(operator, name)

    def forward(self, other):
        return _wrap(op(self._data, _unwrap(other)))

    def reverse(self, other):
        return _wrap(op(_unwrap(other), self._data))

    return forward, reverse


for _name in ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and_", "or_", "xor",
              "lt", "le", "gt", "ge", "eq", "ne"]:
    _fwd, _rev = _binary(_name)
    _dunder = _name.rstrip("_")
    setattr(DeviceArray, f"__{_dunder}__", _fwd)
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(DeviceArray, f"__r{_dunder}__", _rev)
for _name in ["add", "sub", "mul", "truediv"]:
    def _inplace(self, other, _op=getattr(operator, "i" + _name)):
        self._data = _op(self._data, _unwrap(other))
        return self
    setattr(DeviceArray, f"__i{_name}__", _inplace)
DeviceArray.__neg__ = lambda self: DeviceArray(-self._data)
DeviceArray.__abs__ = lambda self: DeviceArray(abs(self._data))
DeviceArray.__invert__ = lambda self: DeviceArray(~self._data)
DeviceArray.__hash__ = None


class _DeviceModule:
    """`device.exp`, `device.arange`, ... : NumPy's functions, taking and returning DeviceArrays."""

    def __getattr__(self, name):
        attr = getattr(np, name)
        if callable(attr) and not isinstance(attr, type):
            return lambda *a, **k: _wrap(attr(*_unwrap(a), **_unwrap(k)))
        return attr  # dtypes, finfo, constants

    @staticmethod
    def asarray(value, dtype=None):
        """Explicit host-to-device copy (cupy.asarray)."""
        if isinstance(value, DeviceArray):
            return value if dtype is None else value.astype(dtype)
        return DeviceArray(np.asarray(value, dtype=dtype))

    @staticmethod
    def asnumpy(value):
        """Explicit device-to-host copy (cupy.asnumpy)."""
        return np.array(value._data) if isinstance(value, DeviceArray) else np.asarray(value)


device = _DeviceModule()
