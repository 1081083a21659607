"""Inference of a fitted looped transformer: chunked loops and deflation (numpy in and out).

The looped module's own :meth:`~skloop.pca._model.LoopedLinearAttention.iterate` picks the
exact fast path its weights allow; this module feeds it chunks of the batch within a data-size
budget, normalizes the read-outs and finds further components by deflation.
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.estimator import rows_per_chunk
from .._core.numerics import unit_vectors
from ._linalg import deflate_points, last
from ._vectors import orthogonal_to

__all__ = ["loop_outputs", "normalized_outputs", "deflated_components"]


def loop_outputs(module, data, n_points, v, n_loops, *, every_loop=False, orthogonal=None):
    """Raw read-outs ``(N, d)`` after ``n_loops`` loops, or ``(n_loops, N, d)`` per loop.

    Parameters
    ----------
    module : LoopedLinearAttention
        The fitted module (its parameters' device and dtype are used).
    data : ndarray of shape (N, n, d)
        Preprocessed points.
    n_points : ndarray of shape (N,)
        Real points per matrix.
    v : ndarray of shape (N, d)
        Query vectors.
    n_loops : int
        Number of loops.
    every_loop : bool, default=False
        Return the read-out after every loop.
    orthogonal : ndarray of shape (N, d, j) or None, default=None
        Directions the query is kept orthogonal to (query deflation).

    Returns
    -------
    outputs : ndarray, float64
    """
    parameter = next(module.parameters())

    def tensor(array, part):
        values = torch.from_numpy(np.ascontiguousarray(array[part]))
        if values.is_floating_point():
            return values.to(parameter.device, parameter.dtype)
        return values.to(parameter.device)

    d = data.shape[2]
    # Written into one array allocated up front: small per-chunk results allocated after a
    # chunk's large temporaries would pin the heap above them, and resident memory would grow
    # with every chunk (measured: +1 GB for 800k matrices) instead of staying at one chunk's.
    outputs = np.empty((n_loops, len(data), d) if every_loop else (len(data), d))
    with torch.no_grad():
        # The general path's tokens hold twice the data: a budget on the data bounds both.
        rows = rows_per_chunk(data.shape[1] * d)
        for start in range(0, len(data), rows):
            part = slice(start, start + rows)
            steps = module.iterate(
                tensor(data, part), tensor(n_points, part), tensor(v, part), n_loops,
                None if orthogonal is None else tensor(orthogonal, part),
            )
            if every_loop:
                for k, step in enumerate(steps):
                    outputs[k, part] = step.cpu().numpy()
            else:
                outputs[part] = last(steps).cpu().numpy()
    if not np.all(np.isfinite(outputs)):
        raise FloatingPointError(_overflow_message(module, data, outputs, n_loops))
    return outputs


def _overflow_message(module, data, outputs, n_loops) -> str:
    """Why a loop overflowed: the unnormalized read-out's growth, or (with LN, whose tokens
    are unit vectors) one layer's update of the raw points exceeding the dtype."""
    bad = np.any(~np.isfinite(outputs), axis=-1)  # (N,) or per loop (n_loops, N)
    matrix = int(np.argmax(bad if bad.ndim == 1 else bad.any(axis=0)))
    dtype = next(module.parameters()).dtype
    if module.normalization is None:
        return (
            f"The looped output is not finite for matrix {matrix} after {n_loops} loops in "
            f"{dtype}: without LN its norm grows like (1 + ρλ₁)^K. Use fewer loops (n_loops, "
            "inference_loops), normalization='rms' or dtype='float64'."
        )
    largest = float(np.max(np.abs(data[matrix]))) if len(data) else 0.0
    return (
        f"The looped output is not finite for matrix {matrix} after {n_loops} loops: one "
        f"layer's update (1/n) W_pv Z Zᵀ W_kq Z overflows {dtype} (points up to "
        f"{largest:.3g} in absolute value, weights up to "
        f"{max(float(p.detach().abs().max()) for p in module.parameters()):.3g}). Use "
        "dtype='float64', or bring the points (normalize_points=True, or rescale X) or the "
        "weights to a smaller scale."
    )


def normalized_outputs(y: np.ndarray, n_loops: int) -> np.ndarray:
    """Unit read-outs (exact for any finite ``y``), or a clear error when a read-out is zero
    or not finite."""
    finite = np.all(np.isfinite(y), axis=-1)
    if not np.all(finite):
        raise FloatingPointError(
            f"The looped output is not finite for some matrices after {n_loops} loops: a loop "
            "overflowed the model's dtype (without LN the norm grows like (1 + ρλ₁)^K). Use "
            "fewer loops (n_loops, inference_loops), normalization='rms' or dtype='float64'."
        )
    zero = ~np.any(y != 0, axis=-1)
    if np.any(zero):
        raise FloatingPointError(
            f"The looped output is zero for {int(zero.sum())} matrix(es) after {n_loops} loops "
            "(the loop annihilated the query: the weights map it to zero, or without LN it "
            "shrinks like (1 + ρλ₁)^K for ρλ₁ < 0); its direction is undefined. Use other "
            "weights, fewer loops (n_loops, inference_loops) or normalization='rms'."
        )
    return unit_vectors(y, axis=-1)


def deflated_components(module, data, n_points, queries, n_loops, deflation):
    """Leading component by the learned loop, further ones by deflation.

    Parameters
    ----------
    module : LoopedLinearAttention
        The fitted module.
    data : ndarray of shape (N, n, d)
        Preprocessed points.
    n_points : ndarray of shape (N,)
        Real points per matrix.
    queries : ndarray of shape (N, d, k)
        Orthonormal query vectors, one column per component.
    n_loops : int
        Loops per component.
    deflation : {"query", "points"}
        See :class:`~skloop.LoopedTransformerPCA`.

    Returns
    -------
    components : ndarray of shape (N, d, k)
    """
    found = []
    for j in range(queries.shape[2]):
        orthogonal = None
        if j > 0 and deflation == "points":
            data, n_points = deflate_points(data, found[-1])
            if np.any(n_points == 0):
                raise ValueError(
                    f"{int(np.sum(n_points == 0))} matrix(es) have rank < n_components="
                    f"{queries.shape[2]}: nothing is left to deflate."
                )
        elif j > 0:
            orthogonal = np.stack(found, axis=2)
        v = orthogonal_to(queries[:, :, j], found)
        y = loop_outputs(module, data, n_points, v, n_loops, orthogonal=orthogonal)
        found.append(normalized_outputs(orthogonal_to(y, found), n_loops))
    return np.stack(found, axis=2)
