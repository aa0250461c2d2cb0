"""xlmr_np.weights.dtypes.widen_bf16, the one bfloat16 -> float32 widening every reader uses."""

import numpy as np
import pytest

from xlmr_np.weights.dtypes import BF16_BITS, widen_bf16


def test_known_bit_patterns():
    bits = np.array([0x3F80, 0xC000, 0x7F80, 0xFF80, 0x8000, 0x0000, 0x0001, 0x7F7F, 0x4049], BF16_BITS)
    want = [1.0, -2.0, np.inf, -np.inf, -0.0, 0.0, 2.0**-133, (2 - 2**-7) * 2.0**127, 3.140625]
    got = widen_bf16(bits)
    assert got.dtype == np.float32 and got.shape == bits.shape
    np.testing.assert_array_equal(got, np.array(want, np.float32))
    assert np.signbit(got[4]) and not np.signbit(got[5])
    assert np.isnan(widen_bf16(np.array([0x7FC0], BF16_BITS))[0])


def test_shape_and_strides_kept():
    bits = np.arange(24, dtype=BF16_BITS).reshape(4, 6) + 0x3F80
    got = widen_bf16(bits.T[::2])  # a strided view, as torch_pickle passes for saved transposes
    assert got.shape == (3, 4) and got.dtype == np.float32 and not np.shares_memory(got, bits)
    np.testing.assert_array_equal(got, widen_bf16(np.ascontiguousarray(bits.T[::2])))
    assert widen_bf16(np.array(0x3FC0, BF16_BITS)).shape == ()  # 0-d stays 0-d


def test_every_bit_pattern_equals_torch():
    torch = pytest.importorskip("torch")
    bits = np.arange(2**16, dtype=np.uint32).astype(BF16_BITS)
    want = torch.from_numpy(bits.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(widen_bf16(bits).view(np.uint32), want.view(np.uint32))  # bit for bit
