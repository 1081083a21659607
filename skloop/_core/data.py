"""Validation and preprocessing of batches of data matrices.

A batch is a 3-D array ``(n_matrices, n_points, n_features)`` (each matrix in scikit-learn
orientation, rows are points) or a list of 2-D arrays with the same number of features and
possibly different numbers of points (ragged). Ragged batches are zero-padded: a zero row adds
nothing to the second moment ``XᵀX / n`` as long as ``n`` is the matrix's own point count,
which :class:`MatrixBatch` carries along.
"""

from __future__ import annotations

import datetime
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch
from sklearn.utils import check_array

from .numerics import FLOAT64, NORM_LOW, scale_exponents, unit_vectors, vector_norms

__all__ = ["MatrixBatch", "check_matrix_batch", "check_model_range", "check_n_features",
           "preprocess_points"]


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


# Tensor dtypes numpy reads directly (others, e.g. bfloat16, are widened to float64 first).
_NUMPY_TENSOR_DTYPES = (torch.float64, torch.float32, torch.float16, torch.int64, torch.int32,
                        torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64,
                        torch.complex128)
_EXPECTED_BATCH = "a 3-D array (n_matrices, n_points, n_features) or a list of 2-D arrays"
_EXPECTED_MATRIX = "a 2-D matrix (n_points, n_features)"
_MISSING_TYPES = {"NoneType": "None", "NAType": "pd.NA", "NaTType": "pd.NaT"}
_TIME_TYPES = (datetime.date, datetime.time, datetime.timedelta, np.datetime64, np.timedelta64)


def _describe(X) -> str:
    shape = getattr(X, "shape", None)
    return f"a {len(shape)}-D array of shape {shape}" if shape is not None else type(X).__name__


def _as_float_matrix(matrix, name: str, dtype) -> np.ndarray:
    """One 2-D matrix through scikit-learn's checks (dtype, complex, NaN/inf); its quick sum
    of values near float64's maximum overflows harmlessly (it then checks every value)."""
    with np.errstate(over="ignore", invalid="ignore"):
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
    """Refuse what numpy would read as numbers but is not (or cannot read at all)."""
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} is complex ({array.dtype}); skloop needs real-valued matrices.")
    if kind in "USV":
        raise TypeError(f"{name} holds strings ({array.dtype}); skloop needs numeric matrices.")
    if kind in "Mm":
        what = "datetimes" if kind == "M" else "time spans"
        raise TypeError(
            f"{name} holds {what} ({array.dtype}); skloop needs numeric matrices and does not "
            f"read {what} as numbers (e.g. days since 1970): convert them first, e.g. to "
            "seconds from a reference time."
        )
    if kind == "O":
        _check_objects(array, name)


def _check_objects(array: np.ndarray, name: str) -> None:
    """The Python objects of an object array must be real numbers (one pass over their types)."""
    for kind in {type(value) for value in array.flat}:
        if kind.__name__ in _MISSING_TYPES:
            raise ValueError(
                f"{name} holds missing values ({_MISSING_TYPES[kind.__name__]}); skloop has no "
                "notion of missing values: drop those points or impute them (e.g. "
                "DataFrame.dropna() or sklearn.impute.SimpleImputer) first."
            )
        if issubclass(kind, _TIME_TYPES):
            raise TypeError(
                f"{name} holds datetimes ({kind.__name__}); skloop needs numeric matrices: "
                "convert them first, e.g. to seconds from a reference time."
            )
        if issubclass(kind, (str, bytes)):
            raise TypeError(f"{name} holds strings ({kind.__name__}); skloop needs numeric "
                            "matrices.")
        if issubclass(kind, numbers.Complex) and not issubclass(kind, numbers.Real):
            raise TypeError(f"{name} is complex ({kind.__name__}); skloop needs real-valued "
                            "matrices.")
        if not issubclass(kind, (numbers.Number, np.number, np.bool_)):
            raise TypeError(f"{name} holds non-numeric objects ({kind.__name__}).")


def _ragged_rows(X, name: str) -> str:
    """The message for nested sequences numpy cannot stack (rows of different lengths)."""
    try:
        lengths = sorted({len(row) for row in X})
    except TypeError:
        lengths = None
    detail = f" (rows of {lengths} values)" if lengths else ""
    return (
        f"{name} has rows of different lengths{detail}: every point of a matrix needs the same "
        "number of features. Pad or drop the short rows."
    )


def _as_array(X, name: str, expected: str) -> np.ndarray:
    """``X`` as a numpy array, refusing clearly what numpy would misread or cannot read."""
    if X is None or isinstance(X, (str, bytes, numbers.Number, dict)):
        raise TypeError(f"{name} must be {expected}; got {type(X).__name__}.")
    if scipy.sparse.issparse(X):
        raise TypeError(
            f"{name} is a scipy sparse {type(X).__name__}; skloop needs dense matrices: pass "
            f"{name}.toarray()."
        )
    if isinstance(X, torch.Tensor):
        if X.requires_grad:
            raise TypeError(
                f"{name} is a torch tensor that requires grad; pass {name}.detach() (skloop "
                "does not backpropagate into its inputs)."
            )
        if X.device.type != "cpu":
            raise TypeError(f"{name} is a torch tensor on {X.device}; pass {name}.cpu().")
        return X.numpy() if X.dtype in _NUMPY_TENSOR_DTYPES else X.to(torch.float64).numpy()
    if np.ma.isMaskedArray(X) and np.ma.count_masked(X):
        raise ValueError(
            f"{name} is a masked array with {np.ma.count_masked(X)} masked value(s); skloop has "
            f"no notion of missing values: drop those points or fill them ({name}.filled())."
        )
    if not hasattr(X, "__len__") and not hasattr(X, "__array__") and hasattr(X, "__next__"):
        raise TypeError(f"{name} is an iterator ({type(X).__name__}); pass a list or an array.")
    try:
        array = np.asarray(X)
    except ValueError as exc:
        if "inhomogeneous" not in str(exc):
            raise TypeError(f"{name} could not be read as a numeric array: {exc}") from None
        raise ValueError(_ragged_rows(X, name)) from None
    except (TypeError, RuntimeError) as exc:
        raise TypeError(f"{name} could not be read as a numeric array: {exc}") from None
    _check_numeric_dtype(array, name)
    return array


def _to_float(array: np.ndarray, name: str, dtype) -> np.ndarray:
    """An object array of numbers as floats (a Python int too large for ``dtype`` raises)."""
    if array.dtype != object:
        return array
    try:
        return array.astype(dtype)
    except OverflowError:
        raise ValueError(f"{name} holds a number too large for {np.dtype(dtype)}.") from None
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} holds non-numeric objects: {exc}") from None


def _stack_list(matrices: list, name: str, dtype) -> tuple[np.ndarray, np.ndarray, bool]:
    """Zero-pad a list of 2-D matrices of different shapes, naming the member at fault."""
    checked = []
    for i, matrix in enumerate(matrices):
        label = f"{name}[{i}]"
        if matrix.ndim != 2:
            raise ValueError(f"{label} must be {_EXPECTED_MATRIX}; got {_describe(matrix)}.")
        if matrix.shape[0] == 0:
            raise ValueError(
                f"{label} has 0 points (shape {matrix.shape}); every matrix needs at least 1 "
                "point: drop it from the list."
            )
        if matrix.shape[1] == 0:
            raise ValueError(f"{label} has 0 features (shape {matrix.shape}); need at least 1.")
        checked.append(_as_float_matrix(_to_float(matrix, label, dtype), label, dtype))
    n_features = {m.shape[1] for m in checked}
    if len(n_features) > 1:
        raise ValueError(
            f"The matrices of {name} have different numbers of features {sorted(n_features)}; "
            "all points of a batch must live in the same space."
        )
    n_points = np.array([m.shape[0] for m in checked], dtype=np.int64)
    ragged = bool(np.any(n_points != n_points[0]))
    data = np.zeros((len(checked), int(n_points.max()), n_features.pop()), dtype=dtype)
    for i, m in enumerate(checked):
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
        If ``X`` is not array-like (an iterator, a sparse matrix, a torch tensor that requires
        grad or lives on another device), or holds complex numbers, strings, datetimes or
        other non-numeric objects.
    ValueError
        If ``X`` is empty, has the wrong number of dimensions, has a member with no points or
        features, rows of different lengths, missing values (NaN, None, ``pd.NA``, masked
        entries) or infinity.
    """
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{name} is an empty batch: it holds 0 matrices.")
        if all(isinstance(m, (numbers.Number, str, bytes)) for m in X):
            array = _as_array(X, name, _EXPECTED_BATCH)  # a flat list: not a batch
        else:
            members = [_as_array(m, f"{name}[{i}]", _EXPECTED_MATRIX) for i, m in enumerate(X)]
            if len({m.shape for m in members}) > 1:
                data, n_points, ragged = _stack_list(members, name, dtype)
                return MatrixBatch(data=data, n_points=n_points, ragged=ragged)
            array = np.stack(members)
    else:
        array = _as_array(X, name, _EXPECTED_BATCH)
    if array.ndim != 3:
        hint = " For a single matrix pass X[np.newaxis]." if array.ndim == 2 else ""
        raise ValueError(f"{name} must be {_EXPECTED_BATCH}; got {_describe(array)}.{hint}")
    n_matrices, n_points, n_features = array.shape
    if n_matrices == 0:
        raise ValueError(f"{name} is an empty batch: it holds 0 matrices (shape {array.shape}).")
    if n_points == 0:
        raise ValueError(f"{name} has 0 points per matrix (shape {array.shape}); need at least 1.")
    if n_features == 0:
        raise ValueError(f"{name} has 0 features (shape {array.shape}); need at least 1.")
    array = _to_float(array, name, dtype)
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


def _point_norms(data: np.ndarray) -> tuple[np.ndarray, bool]:
    """Norm of every point ``(N, n)``, and whether one pass over the squares gave it."""
    with np.errstate(over="ignore", under="ignore"):
        squares = np.einsum("ijk,ijk->ij", data, data)
    if np.all(np.isfinite(squares)) and not np.any((squares > 0) & (squares < NORM_LOW**2)):
        if not np.any((squares == 0) & np.any(data != 0, axis=2)):  # no underflow to zero
            return np.sqrt(squares), True
    return vector_norms(data, axis=2)[..., 0], False


def _centered(data: np.ndarray, mask: np.ndarray, n_points: np.ndarray,
              keep_scale: bool) -> np.ndarray:
    """Each matrix minus its mean point, summed after scaling by a power of two where the
    values are extreme (a sum near float64's maximum would overflow). Points equal to the mean
    up to rounding become exact zeros. With ``keep_scale`` False the points stay scaled (they
    are normalized next, which the scale cannot change)."""
    k = scale_exponents(data, axis=(1, 2))
    scaled = np.ldexp(data, -k) if k.any() else data
    n = n_points[:, None, None]
    mean = scaled.sum(axis=1, keepdims=True) / n
    centered = np.where(mask, scaled - mean, 0.0)
    # A point within the rounding error of the mean (a bound on the error of the sum and the
    # subtraction) has no direction: it becomes an exact zero, not amplified rounding noise.
    noise = 2 * (n + 1) * FLOAT64.eps * np.sqrt(data.shape[2]) * np.max(
        np.abs(scaled), axis=(1, 2), keepdims=True)
    centered = np.where(vector_norms(centered, axis=2) <= noise, 0.0, centered)
    if not k.any() or not keep_scale:
        return centered
    with np.errstate(over="ignore"):
        centered = np.ldexp(centered, k)
    overflow = ~np.all(np.isfinite(centered), axis=(1, 2))
    if overflow.any():
        i = int(np.argmax(overflow))
        raise ValueError(
            f"Centering X overflows float64: the points of matrix {i} (values up to "
            f"{np.max(np.abs(data[i])):.3g}) differ from their mean by more than float64 holds. "
            "Rescale X, or use normalize_points=True (only directions matter then)."
        )
    return centered


def preprocess_points(
    batch: MatrixBatch, *, center: bool = False, normalize_points: bool = True
) -> MatrixBatch:
    """Optionally center each matrix and scale its points to unit norm.

    Exact to rounding over the whole finite range of float64: sums and norms of extreme values
    are taken after scaling by a power of two (ordinary values are used as given).

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
        centering), if a matrix is entirely zero, or if centered values exceed float64's
        range while ``normalize_points=False``.
    """
    mask = batch.point_mask()[..., None]
    data = batch.data
    if center:
        data = _centered(data, mask, batch.n_points, keep_scale=not normalize_points)
    norms, one_pass = _point_norms(data)
    norms = norms[..., None]
    if normalize_points:
        zero = (norms[..., 0] == 0) & mask[..., 0]
        if zero.any():
            i, j = np.argwhere(zero)[0]
            where = "after centering " if center else ""
            raise ValueError(
                f"X has {int(zero.sum())} zero-norm point(s) {where}(first: matrix {i}, "
                f"point {j}); they have no direction to normalize. Remove them."
            )
        if one_pass:
            data = data / np.where(norms > 0, norms, 1.0)  # padding rows stay zero
        else:
            data = unit_vectors(data, axis=2)
    else:
        empty = ~np.any(norms[..., 0] > 0, axis=1)
        if empty.any():
            raise ValueError(
                f"X has {int(empty.sum())} all-zero matrix(es) (first: matrix "
                f"{int(np.argmax(empty))}{' after centering' if center else ''}); "
                "their principal component is undefined."
            )
    return batch.replace(np.ascontiguousarray(data))


def check_model_range(batch: MatrixBatch, dtype: torch.dtype, name: str = "X") -> None:
    """Raise unless the raw (unnormalized) points fit a model computing in ``dtype``.

    Every non-zero point must keep its precision when cast (its largest |value| at least the
    dtype's smallest normal number), and every matrix's ``ZZᵀ`` must be finite: its trace,
    the sum of the squared point norms, below the dtype's largest number.

    Parameters
    ----------
    batch : MatrixBatch
        Preprocessed points (``normalize_points=False``).
    dtype : torch.dtype
        The model's compute dtype.
    name : str, default="X"
        Name used in error messages.

    Raises
    ------
    ValueError
        Naming the first matrix out of range, the range supported and the fixes.
    """
    info = torch.finfo(dtype)
    fixes = ("normalize_points=False feeds the raw points to the model: rescale X, use "
             "normalize_points=True (only directions matter then) or dtype='float64'.")
    if info.tiny > FLOAT64.tiny:
        largest = np.max(np.abs(batch.data), axis=2)
        tiny = (largest > 0) & (largest < info.tiny)
        if tiny.any():
            i, j = np.argwhere(tiny)[0]
            raise ValueError(
                f"{name} has point(s) too small for {dtype}, the model's dtype (first: matrix "
                f"{i}, point {j}, largest |value| {largest[i, j]:.3g} < {info.tiny:.3g}); "
                f"{fixes}"
            )
    norms = _point_norms(batch.data)[0]
    with np.errstate(over="ignore"):
        over = np.sum((norms / np.sqrt(info.max)) ** 2, axis=1) >= 1
    if over.any():
        i = int(np.argmax(over))
        raise ValueError(
            f"{name} has values so large that the second moment of matrix {i} overflows "
            f"{dtype}, the model's dtype: its squared point norms (largest norm "
            f"{np.max(norms[i]):.3g}) sum to more than {info.max:.3g}. {fixes}"
        )
