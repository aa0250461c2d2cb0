"""bfloat16 without a NumPy bfloat16: the one widening every weight reader uses.

bfloat16 is the upper half of an IEEE float32: 1 sign bit, the same 8 exponent bits, 7 of the 23
mantissa bits. safetensors stores it as dtype "BF16" (safetensors' format spec), torch.save as a
`torch.BFloat16Storage` (torch `_utils._rebuild_tensor_v2`), flax.serialization as dtype name
"bfloat16". NumPy has none, so each reader takes the 16-bit patterns as little-endian uint16
(`BF16_BITS`) and `widen_bf16` puts them in the high half of a 32-bit word: exact for every
value (infinities, NaN payloads, -0.0 and subnormals included), as torch's `Tensor.float()` of a
bfloat16 tensor, and what transformers does when it loads bf16 Flax weights into PyTorch
(`modeling_flax_pytorch_utils.py` `load_flax_weights_in_pytorch_model` casts them to float32).
See docs/checkpoint_formats.md ("Dtypes").
"""

import numpy as np

__all__ = ["BF16_BITS", "widen_bf16"]

# How every reader views bfloat16 data before widening: its raw 16-bit patterns.
BF16_BITS = np.dtype("<u2")


def widen_bf16(bits):
    """bfloat16 bit patterns (uint16, any shape or strides) -> a new float32 array of the same shape.

    One allocation of twice the input's size (the shift is in place), and nothing else."""
    wide = bits.astype("<u4")
    wide <<= 16  # the bf16 bits become the high half
    return wide.view("<f4")
