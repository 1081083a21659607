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

__all__ = [
    "second_moment",
    "top_eigenvectors",
    "iterate_power",
    "power_iteration",
    "deflate_points",
    "last",
]


def second_moment(X: torch.Tensor, n_points: torch.Tensor) -> torch.Tensor:
    """Uncentered second moments ``Σ = XᵀX / n``, shape ``(N, d, d)``."""
    return X.transpose(1, 2) @ X / n_points.to(X.dtype)[:, None, None]


def top_eigenvectors(X: torch.Tensor, n_points: torch.Tensor, n_components: int) -> torch.Tensor:
    """Top ``n_components`` eigenvectors of each ``Σ`` (batched ``eigh``), shape ``(N, d, k)``.

    Columns are in decreasing order of eigenvalue.
    """
    _, eigenvectors = torch.linalg.eigh(second_moment(X, n_points))  # ascending
    return eigenvectors[:, :, -n_components:].flip(-1)


def _orthonormalize(V: torch.Tensor) -> torch.Tensor:
    """Unit columns for one vector per matrix, a reduced QR for several."""
    if V.shape[-1] == 1:
        # The clamp keeps an (improbable) exactly-annihilated vector at 0 instead of NaN.
        return V / V.norm(dim=1, keepdim=True).clamp_min(torch.finfo(V.dtype).tiny)
    return torch.linalg.qr(V).Q


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
    scale = n_points.to(X.dtype)[:, None, None]
    if method == "gram":
        sigma = second_moment(X, n_points)

        def apply_sigma(V):
            return sigma @ V

    elif method == "matrix_free":
        Xt = X.transpose(1, 2)

        def apply_sigma(V):
            return Xt @ (X @ V) / scale

    else:
        raise ValueError(f"method must be 'auto', 'gram' or 'matrix_free'; got {method!r}.")
    V = _orthonormalize(V)
    for _ in range(n_iter):
        V = apply_sigma(V) if shift is None else V + shift * apply_sigma(V)
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
        Unit-norm points (zero rows are padding).
    components : ndarray of shape (N, d)
        Unit directions to remove, one per matrix.
    rtol : float, default=1e-8
        Points whose remainder is shorter than ``rtol`` (they lay along the direction) become
        zero rows instead of amplified rounding noise.

    Returns
    -------
    X : ndarray of shape (N, n, d)
        The deflated, renormalized points.
    n_points : ndarray of shape (N,)
        The number of non-zero points left in each matrix.
    """
    residual = X - (X @ components[:, :, None]) * components[:, None, :]
    norms = np.linalg.norm(residual, axis=2, keepdims=True)
    keep = norms > rtol
    X = np.where(keep, residual / np.where(keep, norms, 1.0), 0.0)
    return X, keep[:, :, 0].sum(axis=1)
