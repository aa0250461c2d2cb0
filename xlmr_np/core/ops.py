"""Primitives: gather_rows, linear, layer_norm, softmax, erf and the activations named by `hidden_act`.

References:
- torch.nn.Linear (y = x W^T + b, W stored [out, in]) and torch.nn.LayerNorm (biased variance, eps inside
  the square root): https://pytorch.org/docs/stable/generated/torch.nn.LayerNorm.html
- transformers 4.57.6 `activations.py` (ACT2CLS): the formula behind every `hidden_act` name.
- W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969) 631-637:
  the coefficients of the float64 `erf` below (the same ones used by the SPECFUN routine CALERF).
- float32 inputs use one rational function of our own fit instead (docs/performance.md shows the fit).

Shape legend: B batch, T query length, S key length, D hidden, F intermediate, H heads, Dh head dim.
All functions take their array module from their inputs (backend.array_module), so they run on CuPy too.
"""
from __future__ import annotations

import math

from ..backend import array_module, native_erf

# --- erf: Cody's rational approximations, evaluated in float64 --------------------------------------------
# Measured against math.erf on a dense grid (tests/test_ops.py): max abs error 2.2e-16 in float64.
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
      8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
      2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
      3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
      6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
      2.33520497626869185e-3)
_INV_SQRT_PI = 5.6418958354775628695e-1


def _erf_small(x, xp):
    """erf(x) for |x| <= 0.5: x * P(x^2) / Q(x^2)."""
    z = x * x
    num, den = _A[4] * z, z
    for a, b in zip(_A[:3], _B[:3]):
        num, den = (num + a) * z, (den + b) * z
    return x * (num + _A[3]) / (den + _B[3])


def _erfc_medium(y, xp):
    """erfc(y) for 0.5 < y <= 4."""
    num, den = _C[8] * y, y
    for c, d in zip(_C[:7], _D[:7]):
        num, den = (num + c) * y, (den + d) * y
    return _times_exp_minus_square(y, (num + _C[7]) / (den + _D[7]), xp)


def _erfc_large(y, xp):
    """erfc(y) for y > 4: an asymptotic rational form in 1/y^2."""
    z = 1.0 / (y * y)
    num, den = _P[5] * z, z
    for p, q in zip(_P[:4], _Q[:4]):
        num, den = (num + p) * z, (den + q) * z
    ratio = (_INV_SQRT_PI - z * (num + _P[4]) / (den + _Q[4])) / y
    return _times_exp_minus_square(y, ratio, xp)


def _times_exp_minus_square(y, ratio, xp):
    """ratio * exp(-y^2), with y^2 split into an exact part and a small rest, as Cody does, to keep precision."""
    y_hi = xp.trunc(y * 16.0) / 16.0
    rest = (y - y_hi) * (y + y_hi)
    return xp.exp(-y_hi * y_hi) * xp.exp(-rest) * ratio


# --- erf for float32 inputs: one rational function, evaluated in float64 and rounded once ----------------
# erf(u) ~ u P(u^2) / Q(u^2) on |u| <= 4 (u clipped there: 1 - erf(4) = 1.5e-8). Near-minimax fit to math.erf
# (Lawson-weighted least squares, docs/performance.md): max abs error 1.5e-9 on [0, 4], 1.6e-8 beyond.
# Rounded to float32 the total is 3.13e-8, measured over every float32 in [0, 4.5] (odd, and constant beyond).
# One branch instead of Cody's three makes it ~5x cheaper; evaluated in float32 arithmetic it would be cheaper
# still, but its rounding errors reach 4e-7 near |u| = 3.4, over the 1e-7 bound.
_ERF_P = (1.1283791820892102, 0.18471052891994102, 0.05433263014878394, 0.0038395378284718285,
          0.0003826928112213481, 4.7805494881049645e-06, -1.3666842460005262e-08)
_ERF_Q = (1.0, 0.4970289896088298, 0.11382639149551656, 0.015453535265169682, 0.0013095816143387762,
          6.400937067422248e-05)
_ERF_CLIP = 4.0


def erf_rational_(u):
    """erf of a float64 array u, overwriting u (no other full-size temporaries but two); returns u."""
    xp = array_module(u)
    xp.clip(u, -_ERF_CLIP, _ERF_CLIP, out=u)
    t = u * u
    num = _ERF_P[-1] * t
    for c in _ERF_P[-2:0:-1]:  # Horner in t, from the highest power down
        num += c
        num *= t
    num += _ERF_P[0]
    den = _ERF_Q[-1] * t
    for c in _ERF_Q[-2:0:-1]:
        den += c
        den *= t
    den += _ERF_Q[0]
    num /= den
    u *= num
    return u


def erf(x):
    """The error function, elementwise, in x's float dtype (computed in float64)."""
    xp = array_module(x)
    builtin = native_erf(xp)
    if builtin is not None:
        return builtin(x)
    if x.dtype == xp.float32:
        return erf_rational_(x.astype(xp.float64)).astype(xp.float32)
    y = xp.abs(x).astype(xp.float64)
    # Each branch is evaluated on its clipped argument so that no branch sees values it was not made for.
    small = _erf_small(xp.minimum(y, 0.5), xp)
    medium = 1.0 - _erfc_medium(xp.clip(y, 0.5, 4.0), xp)
    large = 1.0 - _erfc_large(xp.clip(y, 4.0, 30.0), xp)
    result = xp.where(y <= 0.5, small, xp.where(y <= 4.0, medium, large))
    return (xp.sign(x) * result).astype(x.dtype)


# --- activations (transformers 4.57.6 activations.py) ----------------------------------------------------
def gelu(x):
    """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)): what HF's "gelu" (torch.nn.functional.gelu) computes."""
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


def gelu_tanh(x):
    """The tanh approximation: "gelu_new", "gelu_pytorch_tanh", "gelu_python_tanh", "gelu_accurate"."""
    xp = array_module(x)
    return 0.5 * x * (1.0 + xp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def gelu_fast(x):
    xp = array_module(x)
    return 0.5 * x * (1.0 + xp.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def sigmoid(x):
    xp = array_module(x)
    return 1.0 / (1.0 + xp.exp(-x))


def quick_gelu(x):
    return x * sigmoid(1.702 * x)


def relu(x):
    xp = array_module(x)
    return xp.maximum(x, 0)


def silu(x):
    return x * sigmoid(x)


def mish(x):
    """x tanh(softplus(x)); softplus as torch computes it (linear above 20)."""
    xp = array_module(x)
    softplus = xp.where(x > 20, x, xp.log1p(xp.exp(xp.minimum(x, 20))))
    return x * xp.tanh(softplus)


def laplace(x, mu=0.707107, sigma=0.282095):
    return 0.5 * (1.0 + erf((x - mu) * (1.0 / (sigma * math.sqrt(2.0)))))


def _tanh(x):
    return array_module(x).tanh(x)


ACTIVATIONS = {
    "gelu": gelu,
    "gelu_python": gelu,
    "gelu_10": lambda x: array_module(x).clip(gelu(x), -10.0, 10.0),
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_python_tanh": gelu_tanh,
    "gelu_accurate": gelu_tanh,
    "gelu_fast": gelu_fast,
    "quick_gelu": quick_gelu,
    "laplace": laplace,
    "leaky_relu": lambda x: array_module(x).where(x >= 0, x, 0.01 * x),
    "linear": lambda x: x,
    "mish": mish,
    "relu": relu,
    "relu2": lambda x: relu(x) * relu(x),
    "relu6": lambda x: array_module(x).clip(x, 0, 6),
    "sigmoid": sigmoid,
    "silu": silu,
    "swish": silu,
    "tanh": _tanh,
}


def activation(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown hidden_act {name!r}; supported: {', '.join(sorted(ACTIVATIONS))}") from None


# --- linear algebra ---------------------------------------------------------------------------------------
def gather_rows(matrix, ids):
    """matrix[ids]: the rows of a [V, D] table for integer ids [...] (an embedding lookup) -> [..., D]."""
    return matrix[ids]  # [...] -> [..., D]


def linear(x, weight, bias=None):
    """x W^T + b with W stored [out, in] as in the checkpoint: [..., in] -> [..., out]."""
    rows = x.reshape(-1, x.shape[-1])  # [..., in] -> [N, in]: one GEMM (matmul would run one per leading index)
    y = (rows @ weight.T).reshape(x.shape[:-1] + weight.shape[:1])  # [N, out] -> [..., out]
    if bias is not None:
        y += bias
    return y


def layer_norm(x, weight, bias, eps, out=None):
    """LayerNorm over the last axis with the biased variance (torch.nn.LayerNorm).

    The result is `centered` (or `out`, which may be x), updated in place: each full-size temporary would be
    one more pass over memory.
    """
    xp = array_module(x)
    mean = x.mean(axis=-1, keepdims=True)  # [..., D] -> [..., 1]
    centered = xp.subtract(x, mean, out=out)
    variance = (centered * centered).mean(axis=-1, keepdims=True)  # [..., D] -> [..., 1]
    if bool(xp.isinf(variance).any()):  # squares past the dtype's largest value (|x| > 1.8e19 in float32)
        centered /= _std_without_overflow(centered, eps)
    else:
        centered /= xp.sqrt(variance + eps)
    centered *= weight
    centered += bias
    return centered


def _std_without_overflow(centered, eps):
    """sqrt(mean(c^2) + eps) as s sqrt(mean((c / s)^2) + eps / s^2) with s = max |c| per row: no square overflows.

    torch's float32 LayerNorm gives NaN for such rows; this gives the exact answer. Rows holding inf or NaN
    stay NaN.
    """
    xp = array_module(centered)
    scale = xp.abs(centered).max(axis=-1, keepdims=True)  # [..., D] -> [..., 1]
    scale = xp.where(scale > 0, scale, 1.0).astype(centered.dtype)
    scaled = centered / scale  # [..., D], every |value| <= 1
    return scale * xp.sqrt((scaled * scaled).mean(axis=-1, keepdims=True) + eps / scale / scale)  # [..., 1]


def softmax(x, axis=-1, out=None):
    """exp(x - max) / sum: a row whose entries are all the mask's minimum becomes uniform, as in torch.

    With out=x the input is overwritten, saving two full-size temporaries.
    """
    xp = array_module(x)
    shifted = xp.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    xp.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted
