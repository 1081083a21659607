"""Validation and preprocessing of batches of data matrices.

A batch is a 3-D array ``(n_matrices, n_points, n_features)`` (each matrix in scikit-learn
orientation, rows are points) or a list of 2-D arrays with the same number of features and
possibly different numbers of points (ragged). Ragged batches are zero-padded: a zero row adds
nothing to the second moment ``XᵀX / n`` as long as ``n`` is the matrix's own point count,
which :class:`MatrixBatch` carries along.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_array

__all__ = ["MatrixBatch", "check_matrix_batch", "preprocess_points", "check_n_features"]


@dataclass(frozen=True)
class MatrixBatch:
    """A validated batch of data matrices, zero-padded to a common number of points.

    Attributes
    ----------
    data : ndarray of shape (n_matrices, max_points, n_features)
        The matrices; rows past ``n_points[i]`` of matrix ``i`` are zero.
    n_points : ndarray of shape (n_matrices,)
        Number of real points of each matrix.
    ragged : bool
        Whether the input was a list of matrices with different numbers of points.
    """

    data: np.ndarray
    n_points: np.ndarray
    ragged: bool

    @property
    def n_matrices(self) -> int:
        """Number of matrices in the batch."""
        return self.data.shape[0]

    @property
    def n_features(self) -> int:
        """Number of features (the dimension ``d`` of every point)."""
        return self.data.shape[2]

    def point_mask(self) -> np.ndarray:
        """Boolean array ``(n_matrices, max_points)``, True on real (unpadded) points."""
        return np.arange(self.data.shape[1])[None, :] < self.n_points[:, None]

    def replace(self, data: np.ndarray) -> MatrixBatch:
        """The same batch layout holding other point values."""
        return MatrixBatch(data=data, n_points=self.n_points, ragged=self.ragged)

    def unpad(self, per_point: np.ndarray):
        """Undo the padding of an array indexed ``(matrix, point, ...)``.

        Returns the array itself for a regular batch and a list of per-matrix arrays for a
        ragged one, mirroring the input the user passed.
        """
        if not self.ragged:
            return per_point
        return [per_point[i, :k] for i, k in enumerate(self.n_points)]


def _describe(X) -> str:
    shape = getattr(X, "shape", None)
    return f"a {len(shape)}-D array of shape {shape}" if shape is not None else type(X).__name__


def _as_float_matrix(matrix, name: str, dtype) -> np.ndarray:
    """One 2-D matrix through scikit-learn's checks (dtype, complex, NaN/inf)."""
    return check_array(
        matrix,
        dtype=dtype,
        ensure_2d=True,
        allow_nd=False,
        ensure_min_samples=1,
        ensure_min_features=1,
        input_name=name,
    )


def _check_numeric_dtype(array: np.ndarray, name: str) -> None:
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} is complex ({array.dtype}); skloop needs real-valued matrices.")
    if kind in "USV":
        raise TypeError(f"{name} holds strings ({array.dtype}); skloop needs numeric matrices.")


def _stack_list(X, name: str, dtype) -> tuple[np.ndarray, np.ndarray, bool]:
    matrices = []
    for i, matrix in enumerate(X):
        arr = np.asarray(matrix)
        if arr.ndim != 2:
            raise ValueError(
                f"{name}[{i}] must be a 2-D matrix (n_points, n_features); got {_describe(arr)}."
            )
        _check_numeric_dtype(arr, f"{name}[{i}]")
        matrices.append(_as_float_matrix(arr, f"{name}[{i}]", dtype))
    n_features = {m.shape[1] for m in matrices}
    if len(n_features) > 1:
        raise ValueError(
            f"The matrices of {name} have different numbers of features {sorted(n_features)}; "
            "all points of a batch must live in the same space."
        )
    n_points = np.array([m.shape[0] for m in matrices], dtype=np.int64)
    ragged = bool(np.any(n_points != n_points[0]))
    data = np.zeros((len(matrices), int(n_points.max()), n_features.pop()), dtype=dtype)
    for i, m in enumerate(matrices):
        data[i, : m.shape[0]] = m
    return data, n_points, ragged


def check_matrix_batch(X, *, name: str = "X", dtype=np.float64) -> MatrixBatch:
    """Validate a batch of data matrices.

    Parameters
    ----------
    X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
        The batch. A list of matrices with different ``n_points`` (ragged) is accepted and
        zero-padded.
    name : str, default="X"
        Name used in error messages.
    dtype : numpy dtype, default=np.float64
        Floating dtype of the returned data.

    Returns
    -------
    batch : MatrixBatch
        The validated batch.

    Raises
    ------
    TypeError
        If ``X`` is not array-like, or holds complex numbers, strings or non-numeric objects.
    ValueError
        If ``X`` is empty, has the wrong number of dimensions, has no points or features, or
        contains NaN or infinity.
    """
    if X is None or isinstance(X, (str, bytes, numbers.Number, dict)):
        raise TypeError(
            f"{name} must be a 3-D array (n_matrices, n_points, n_features) or a list of 2-D "
            f"arrays; got {type(X).__name__}."
        )
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{name} is an empty batch: it holds 0 matrices.")
        if all(hasattr(m, "__len__") and not isinstance(m, (str, bytes)) for m in X):
            try:
                stacked = np.asarray(X)
            except ValueError:  # ragged nesting numpy refuses to stack
                stacked = None
            if stacked is None or stacked.dtype == object:
                data, n_points, ragged = _stack_list(X, name, dtype)
                return MatrixBatch(data=data, n_points=n_points, ragged=ragged)
            X = stacked
    try:
        array = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be read as a numeric array: {exc}") from None
    _check_numeric_dtype(array, name)
    if array.ndim != 3:
        hint = " For a single matrix pass X[np.newaxis]." if array.ndim == 2 else ""
        raise ValueError(
            f"{name} must be a 3-D array (n_matrices, n_points, n_features) or a list of 2-D "
            f"arrays; got {_describe(array)}.{hint}"
        )
    n_matrices, n_points, n_features = array.shape
    if n_matrices == 0:
        raise ValueError(f"{name} is an empty batch: it holds 0 matrices (shape {array.shape}).")
    if n_points == 0:
        raise ValueError(f"{name} has 0 points per matrix (shape {array.shape}); need at least 1.")
    if n_features == 0:
        raise ValueError(f"{name} has 0 features (shape {array.shape}); need at least 1.")
    if array.dtype == object:
        try:
            array = array.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} holds non-numeric objects: {exc}") from None
    # scikit-learn's check_array does the dtype conversion and the NaN/inf check with its
    # usual messages; a 3-D batch is checked as its 2-D stack of points.
    flat = _as_float_matrix(array.reshape(n_matrices * n_points, n_features), name, dtype)
    data = flat.reshape(n_matrices, n_points, n_features)
    return MatrixBatch(data=data, n_points=np.full(n_matrices, n_points), ragged=False)


def check_n_features(batch: MatrixBatch, n_features_in: int, estimator_name: str) -> None:
    """Raise if a batch's feature count differs from the one seen in ``fit``."""
    if batch.n_features != n_features_in:
        raise ValueError(
            f"X has {batch.n_features} features, but {estimator_name} is expecting "
            f"{n_features_in} features as input (n_features_in_)."
        )


# Squares below this lose precision (subnormal); the norm is then recomputed after scaling.
_SMALLEST_SAFE_SQUARE = 1e-280


def _point_norms(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Euclidean norm of every point ``(N, n)``: one pass over the data when the squares
    neither overflow nor underflow, else scaled by the largest entry first (exact to
    rounding for any finite input)."""
    squares = np.einsum("ijk,ijk->ij", data, data)
    if np.all(np.isfinite(squares)) and not np.any((squares < _SMALLEST_SAFE_SQUARE) & mask):
        return np.sqrt(squares)
    scale = np.max(np.abs(data), axis=2, keepdims=True)
    return scale[..., 0] * np.linalg.norm(data / np.where(scale > 0, scale, 1.0), axis=2)


def preprocess_points(
    batch: MatrixBatch, *, center: bool = False, normalize_points: bool = True
) -> MatrixBatch:
    """Optionally center each matrix and scale its points to unit norm.

    Parameters
    ----------
    batch : MatrixBatch
        A validated batch.
    center : bool, default=False
        Subtract each matrix's mean point (sklearn's PCA convention). The paper uses the
        uncentered second moment, hence the default.
    normalize_points : bool, default=True
        Scale every point to unit Euclidean norm (the paper's assumption ``||x_i|| = 1``).

    Returns
    -------
    batch : MatrixBatch
        A new batch; padding rows stay zero.

    Raises
    ------
    ValueError
        If a point has zero norm while ``normalize_points=True`` (after centering, when
        centering), if a matrix is entirely zero, or if the values are so large that the
        second moment overflows.
    """
    mask = batch.point_mask()[..., None]
    data = batch.data
    if center:
        mean = data.sum(axis=1, keepdims=True) / batch.n_points[:, None, None]
        data = np.where(mask, data - mean, 0.0)
    norms = _point_norms(data, mask[..., 0])[..., None]
    if normalize_points:
        zero = (norms[..., 0] == 0) & mask[..., 0]
        if zero.any():
            i, j = np.argwhere(zero)[0]
            where = "after centering " if center else ""
            raise ValueError(
                f"X has {int(zero.sum())} zero-norm point(s) {where}(first: matrix {i}, "
                f"point {j}); they have no direction to normalize. Remove them."
            )
        data = data / np.where(norms > 0, norms, 1.0)  # padding rows are zero and stay zero
    else:
        empty = ~np.any(norms[..., 0] > 0, axis=1)
        if empty.any():
            raise ValueError(
                f"X has {int(empty.sum())} all-zero matrix(es) (first: matrix "
                f"{int(np.argmax(empty))}{' after centering' if center else ''}); "
                "their principal component is undefined."
            )
        with np.errstate(over="ignore"):
            if not np.all(np.isfinite(norms.astype(data.dtype) ** 2)):
                raise ValueError(
                    "X has values so large that the second moment XᵀX/n overflows "
                    f"{data.dtype}; rescale the data or use normalize_points=True."
                )
    return batch.replace(np.ascontiguousarray(data))
