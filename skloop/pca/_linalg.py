"""Linear algebra of the second moment ``Σ = XᵀX / n``: the classical algorithms for the
leading principal components, batched over matrices (torch).

These are the exact references the learned models are measured against. They know nothing
of the estimator API: inputs are tensors of already validated, preprocessed matrices in
scikit-learn orientation, ``X`` of shape ``(N, n, d)`` (rows are points, zero-padded rows
allowed) and per-matrix point counts ``n_points`` of shape ``(N,)``.
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.numerics import unit_vectors as unit_rows
from .._core.numerics import vector_norms

__all__ = [
    "second_moment",
    "top_eigenvectors",
    "iterate_power",
    "power_iteration",
    "deflate_points",
    "last",
    "scaled_matrices",
    "unit_vectors",
]

# Integer view of each float dtype: (int dtype, mantissa bits, exponent bias).
_LAYOUT = {
    torch.float64: (torch.int64, 52, 1023),
    torch.float32: (torch.int32, 23, 127),
    torch.float16: (torch.int16, 10, 15),
    torch.bfloat16: (torch.int16, 7, 127),
}


def _pow2(exponent: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Exactly ``2.0 ** exponent`` (an integer tensor, clamped to ``dtype``'s normal range),
    written from its bits: ``torch.ldexp`` goes through a float ``pow`` that may round."""
    int_dtype, mantissa, bias = _LAYOUT[dtype]
    exponent = exponent.to(int_dtype).clamp(1 - bias, bias)
    return ((exponent + bias) << mantissa).view(dtype)


def _ldexp(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``x * 2**exponent``, exact, in two factors so that each is a normal number."""
    half = torch.div(exponent, 2, rounding_mode="floor")
    return x * _pow2(half, x.dtype) * _pow2(exponent - half, x.dtype)


def _norm_range(dtype: torch.dtype) -> tuple[float, float]:
    """Norms within this range are exact from one pass over the squares (see
    :func:`skloop._core.numerics.unit_vectors`)."""
    info = torch.finfo(dtype)
    return info.tiny**0.5 / info.eps, info.max**0.5


def unit_vectors(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``x / ||x||`` along ``dim`` for any finite input; zero vectors stay zero.

    One pass over the squares where they neither underflow nor overflow (checked on the CPU;
    on other devices the check would synchronize, and under ``torch.compile`` break the graph,
    so the scaled form always runs there); otherwise every vector is first multiplied by the
    power of two that brings its largest entry into [0.5, 1). Both forms give the same bits
    where the first is exact, and the same gradients: the scale factor is a constant.
    """
    norms = x.norm(dim=dim, keepdim=True)
    if x.device.type == "cpu" and not torch.compiler.is_compiling():
        low, high = _norm_range(x.dtype)
        safe = (norms >= low) & (norms <= high)
        if bool(safe.all()):
            return x / norms
        if not bool(torch.any(~safe & (x != 0).any(dim=dim, keepdim=True))):  # zero padding
            return x / torch.where(safe, norms, torch.ones_like(norms))
    exponent = torch.frexp(x.detach().abs().amax(dim=dim, keepdim=True)).exponent
    x = x * _pow2(-exponent, x.dtype)
    norms = x.norm(dim=dim, keepdim=True)
    return x / torch.where(norms > 0, norms, torch.ones_like(norms))


# A matrix whose largest |value| lies within 2**±(bias // 5) (float64: 2**±204) forms XᵀX and
# its products without underflow or overflow, and is used as given (bit for bit).
def scaled_matrices(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each matrix divided by a power of two ``2**k`` where its values are extreme.

    Parameters
    ----------
    X : Tensor of shape (N, n, d)

    Returns
    -------
    X : Tensor of shape (N, n, d)
        ``X / 2**k``: unchanged where ``k = 0``, else with its largest |value| in [0.5, 1).
    exponents : Tensor of shape (N,), int64
        ``k``; ``Σ`` of the original matrix is ``4**k`` times that of the scaled one.
    """
    _, _, bias = _LAYOUT[X.dtype]
    exponent = torch.frexp(X.abs().amax(dim=(1, 2))).exponent.to(torch.int64)
    exponent = torch.where(exponent.abs() > bias // 5, exponent, torch.zeros_like(exponent))
    if X.device.type == "cpu" and not torch.compiler.is_compiling() and not bool(exponent.any()):
        return X, exponent
    return _ldexp(X, -exponent[:, None, None]), exponent


def second_moment(X: torch.Tensor, n_points: torch.Tensor) -> torch.Tensor:
    """Uncentered second moments ``Σ = XᵀX / n``, shape ``(N, d, d)`` (of ``X`` as given: pass
    :func:`scaled_matrices` for extreme values, whose ``XᵀX`` would under- or overflow)."""
    return X.transpose(1, 2) @ X / n_points.to(X.dtype)[:, None, None]


def top_eigenvectors(X: torch.Tensor, n_points: torch.Tensor, n_components: int) -> torch.Tensor:
    """Top ``n_components`` eigenvectors of each ``Σ`` (batched ``eigh``), shape ``(N, d, k)``.

    Columns are in decreasing order of eigenvalue. Correct for any finite ``X``: ``Σ`` is
    formed from :func:`scaled_matrices` (the eigenvectors of ``cΣ`` are those of ``Σ``).
    """
    sigma = second_moment(scaled_matrices(X)[0], n_points)
    try:
        _, eigenvectors = torch.linalg.eigh(sigma)  # ascending
    except torch.linalg.LinAlgError as exc:
        raise ValueError(f"The eigendecomposition of Σ did not converge: {exc}") from None
    return eigenvectors[:, :, -n_components:].flip(-1)


def _orthonormalize(V: torch.Tensor) -> torch.Tensor:
    """Unit columns for one vector per matrix (a zero column stays zero), a reduced QR for
    several."""
    if V.shape[-1] == 1:
        return unit_vectors(V, dim=1)
    return torch.linalg.qr(V).Q


def _step_coefficients(shift, exponents: torch.Tensor, dtype):
    """``(α, β)`` per matrix with ``(I + ρΣ)v ∝ αv + βΣ̃v`` for ``Σ = 4**k Σ̃``: ``α = 1``,
    ``β = ρ 4**k`` unless that exceeds ``2**100``; then both are divided by a power of two,
    ``α`` underflowing to 0 where ``v`` no longer counts (and ``β`` where ``ρΣ`` does not)."""
    exponents = exponents.cpu().numpy()
    rho = float(shift)
    total = np.frexp(rho)[1] + 2 * exponents
    down = np.where(total > 100, total, 0)
    alpha = np.ldexp(1.0, -down)
    beta = np.ldexp(rho, 2 * exponents - down)
    return (torch.as_tensor(alpha, dtype=dtype)[:, None, None],
            torch.as_tensor(beta, dtype=dtype)[:, None, None])


def iterate_power(
    X: torch.Tensor,
    n_points: torch.Tensor,
    V: torch.Tensor,
    n_iter: int,
    shift: float | None = None,
    method: str = "auto",
):
    """Yield the iterates of :func:`power_iteration` after each of its ``n_iter`` steps."""
    n, d = X.shape[1], X.shape[2]
    if method == "auto":
        method = "gram" if d * (n + n_iter) < 2 * n_iter * n else "matrix_free"
    if method not in ("gram", "matrix_free"):
        raise ValueError(f"method must be 'auto', 'gram' or 'matrix_free'; got {method!r}.")
    X, exponents = scaled_matrices(X)
    scale = n_points.to(X.dtype)[:, None, None]
    if method == "gram":
        sigma = second_moment(X, n_points)

        def apply_sigma(V):
            return sigma @ V

    else:
        Xt = X.transpose(1, 2)

        def apply_sigma(V):
            return Xt @ (X @ V) / scale

    if shift is not None:
        alpha, beta = (c.to(X.device) for c in _step_coefficients(shift, exponents, X.dtype))
    V = _orthonormalize(V)
    for _ in range(n_iter):
        V = apply_sigma(V) if shift is None else alpha * V + beta * apply_sigma(V)
        V = _orthonormalize(V)
        yield V


def power_iteration(
    X: torch.Tensor,
    n_points: torch.Tensor,
    V: torch.Tensor,
    n_iter: int,
    shift: float | None = None,
    method: str = "auto",
) -> torch.Tensor:
    """Normalized power (or orthogonal) iteration on ``Σ = XᵀX / n``, batched.

    Each step is ``V ← orth(Σ V)``, or with a shift ``ρ`` the step the looped transformer
    learns, ``V ← orth((I + ρΣ) V)`` (a power iteration on ``Σ + I/ρ``). ``orth`` scales a
    single vector to unit norm and takes the Q factor of a QR for several (orthogonal
    iteration, which converges to the top ``k`` eigenvectors in order).

    Parameters
    ----------
    X : Tensor of shape (N, n, d)
        Preprocessed matrices, rows are points (zero rows past ``n_points`` allowed).
    n_points : Tensor of shape (N,)
        Points per matrix (the ``n`` of ``Σ``).
    V : Tensor of shape (N, d, k)
        Starting vectors.
    n_iter : int
        Number of iterations.
    shift : float or None, default=None
        ``ρ`` of the shifted iteration; ``None`` is the classical power method.
    method : {"auto", "gram", "matrix_free"}, default="auto"
        ``"gram"`` forms ``Σ`` once (``O(n d²)``) and then costs ``O(d² k)`` per step;
        ``"matrix_free"`` computes ``Xᵀ(X V)/n`` (``O(n d k)`` per step). ``"auto"`` picks the
        cheaper one for the given sizes.

    Returns
    -------
    V : Tensor of shape (N, d, k)
        Orthonormal columns after ``n_iter`` steps.
    """
    return last(iterate_power(X, n_points, V, n_iter, shift, method), default=V)


def last(iterable, default=None):
    """The final item of an iterable (``default`` when it is empty)."""
    item = default
    for item in iterable:  # noqa: B007 - only the final item is wanted
        pass
    return item


def deflate_points(X: np.ndarray, components: np.ndarray, rtol: float = 1e-8):
    """Project a direction out of every point and scale the remainders back to unit norm.

    Parameters
    ----------
    X : ndarray of shape (N, n, d)
        Points (zero rows are padding), of any scale.
    components : ndarray of shape (N, d)
        Unit directions to remove, one per matrix.
    rtol : float, default=1e-8
        Points whose remainder is shorter than ``rtol`` times the point (they lay along the
        direction) become zero rows instead of amplified rounding noise.

    Returns
    -------
    X : ndarray of shape (N, n, d)
        The deflated, renormalized points.
    n_points : ndarray of shape (N,)
        The number of non-zero points left in each matrix.
    """
    residual = X - (X @ components[:, :, None]) * components[:, None, :]
    keep = vector_norms(residual, axis=2) > rtol * vector_norms(X, axis=2)
    X = np.where(keep, unit_rows(residual, axis=2), 0.0)
    return X, keep[:, :, 0].sum(axis=1)
