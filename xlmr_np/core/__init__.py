"""The reference implementation: plain array code that reads top to bottom and needs numpy only.

ops.py (primitives), model.py (the body), heads.py (the six task heads), losses.py (what the heads' forward
computes when given labels), kernels.py (the operations a faster implementation in xlmr_np.runtime may take
over). No files, threads or memory maps here.
"""
from . import heads, kernels, losses, model, ops  # noqa: F401
