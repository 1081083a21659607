"""Inference of a fitted looped transformer: chunked loops and deflation (numpy in and out).

The looped module's own :meth:`~skloop.pca._model.LoopedLinearAttention.iterate` picks the
exact fast path its weights allow; this module feeds it chunks of the batch within a data-size
budget, normalizes the read-outs and finds further components by deflation.
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.estimator import rows_per_chunk
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

    outputs = []
    with torch.no_grad():
        # The general path's tokens hold twice the data: a budget on the data bounds both.
        rows = rows_per_chunk(data.shape[1] * data.shape[2])
        for start in range(0, len(data), rows):
            part = slice(start, start + rows)
            steps = module.iterate(
                tensor(data, part), tensor(n_points, part), tensor(v, part), n_loops,
                None if orthogonal is None else tensor(orthogonal, part),
            )
            if every_loop:
                outputs.append(torch.stack(list(steps)).cpu().numpy())
            else:
                outputs.append(last(steps).cpu().numpy())
    return np.concatenate(outputs, axis=1 if every_loop else 0).astype(np.float64)


def normalized_outputs(y: np.ndarray, n_loops: int) -> np.ndarray:
    """Unit read-outs, or a clear error when a read-out is zero or not finite."""
    norms = np.linalg.norm(y, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise FloatingPointError(
            f"The looped output is {'zero' if np.all(np.isfinite(norms)) else 'not finite'}"
            f" for some matrices after {n_loops} loops (without LN its norm grows "
            "like (1 + ρλ₁)^K); use fewer inference_loops or normalization='rms'."
        )
    return y / norms


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
