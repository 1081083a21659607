"""Scale-safe numpy arithmetic: norms, unit vectors and power-of-two scalings that are exact to
rounding over the whole finite range of float64.

The rule everywhere: scale before you square. Values whose squares and sums neither underflow
nor overflow are used as given (so results on ordinary data are the same bits as the plain
formula); others are first multiplied by a power of two, which is exact.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FLOAT64", "NORM_HIGH", "NORM_LOW", "scale_exponents", "unit_vectors",
           "vector_norms"]

# Norms in [NORM_LOW, NORM_HIGH] come out exact to rounding from one pass over the squares
# (no square that matters is subnormal, none overflows); outside, vectors are first scaled by a
# power of two, which is exact, so results are the same bits wherever one pass was enough.
FLOAT64 = np.finfo(np.float64)
NORM_LOW = float(np.sqrt(FLOAT64.tiny) / FLOAT64.eps)
NORM_HIGH = float(np.sqrt(FLOAT64.max))
# Matrices whose largest |value| lies within 2**±_SAFE_EXPONENT form XᵀX without underflow or
# overflow and are used as given; others are scaled by a power of two first.
_SAFE_EXPONENT = 200


def _in_safe_range(norms: np.ndarray) -> bool:
    return bool(np.all((norms >= NORM_LOW) & (norms <= NORM_HIGH)))


def _exponents(V: np.ndarray, axis) -> np.ndarray:
    """Exponent ``e`` of the largest |value| along ``axis`` (``max = f 2**e``, f in [0.5, 1))."""
    return np.frexp(np.max(np.abs(V), axis=axis, keepdims=True))[1]


def vector_norms(V: np.ndarray, axis=-1) -> np.ndarray:
    """Euclidean norms along ``axis`` (kept as a length-1 axis), exact to rounding for any
    finite input: infinite only where the norm itself exceeds float64's range."""
    with np.errstate(over="ignore", under="ignore"):
        norms = np.linalg.norm(V, axis=axis, keepdims=True)
    if _in_safe_range(norms):
        return norms
    e = _exponents(V, axis)
    with np.errstate(over="ignore"):
        return np.ldexp(np.linalg.norm(np.ldexp(V, -e), axis=axis, keepdims=True), e)


def unit_vectors(V: np.ndarray, axis=-1) -> np.ndarray:
    """``V / ||V||`` along ``axis`` for any finite input (no overflow or underflow of the
    squares); zero vectors stay zero."""
    with np.errstate(over="ignore", under="ignore"):
        norms = np.linalg.norm(V, axis=axis, keepdims=True)
    if _in_safe_range(norms):
        return V / norms
    V = np.ldexp(V, -_exponents(V, axis))
    norms = np.linalg.norm(V, axis=axis, keepdims=True)
    return V / np.where(norms > 0, norms, 1.0)


def scale_exponents(data: np.ndarray, axis) -> np.ndarray:
    """Per-slice power-of-two exponents ``k`` that make ``data / 2**k`` safe to square and sum.

    ``k = 0`` (the data used as given, bit for bit) while the slice's largest |value| lies
    within ``2**±200``; otherwise the exponent that brings that value into [0.5, 1). The
    exponents keep the reduced axes (length 1), ready for ``np.ldexp(data, -k)``.
    """
    e = _exponents(data, axis)
    return np.where(np.abs(e) > _SAFE_EXPONENT, e, 0)
