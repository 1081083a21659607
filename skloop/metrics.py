"""Sign-invariant metrics between predicted components and the leading principal subspace.

The reference subspace of a data matrix ``A`` (rows are points) is the top eigenspace of its
uncentered second moment ``Σ = AᵀA / n`` after the package's preprocessing (points scaled to
unit norm by default; see :func:`leading_subspace`). When the top eigenvalue has multiplicity
``r > 1`` the reference is the whole ``r``-dimensional eigenspace ``V``, so any unit vector of
``V`` has zero error. Every metric is batched over matrices and invariant to the sign of the
prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._core.data import MatrixBatch, check_matrix_batch, preprocess_points
from ._core.numerics import scale_exponents

__all__ = [
    "LeadingSubspace",
    "leading_subspace",
    "second_moment",
    "subspace_distance",
    "angular_error",
    "principal_cos2",
]


@dataclass(frozen=True)
class LeadingSubspace:
    """Eigendecomposition of each matrix's second moment and its top eigenspace.

    Attributes
    ----------
    eigenvalues : ndarray of shape (n_matrices, n_features)
        Eigenvalues of ``Σ``, in decreasing order.
    eigenvectors : ndarray of shape (n_matrices, n_features, n_features)
        Orthonormal eigenvectors as columns, in the order of ``eigenvalues``.
    multiplicity : ndarray of shape (n_matrices,)
        Dimension ``r`` of the top eigenspace: the number of eigenvalues within
        ``rtol * λ_1`` of ``λ_1``.
    ratio : ndarray of shape (n_matrices,) or None
        ``λ_{r+1} / λ_1`` computed before the eigenvalues were scaled back (exact even where
        they are not representable); ``None`` computes it from ``eigenvalues``.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    multiplicity: np.ndarray
    ratio: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def in_subspace(self) -> np.ndarray:
        """Boolean mask ``(n_matrices, n_features)``: eigenvector ``i`` spans the top space."""
        n_features = self.eigenvalues.shape[1]
        return np.arange(n_features)[None, :] < self.multiplicity[:, None]

    @property
    def projector(self) -> np.ndarray:
        """Orthogonal projectors ``P_V`` onto the top eigenspaces, ``(n_matrices, d, d)``."""
        basis = self.eigenvectors * self.in_subspace[:, None, :]
        return basis @ np.swapaxes(basis, 1, 2)

    @property
    def eigengap_ratio(self) -> np.ndarray:
        """``λ_{r+1} / λ_1`` per matrix: the power method's per-step contraction factor."""
        if self.ratio is not None:
            return self.ratio
        idx = np.minimum(self.multiplicity, self.eigenvalues.shape[1] - 1)
        below = np.take_along_axis(self.eigenvalues, idx[:, None], axis=1)[:, 0]
        below = np.where(self.multiplicity < self.eigenvalues.shape[1], below, 0.0)
        return below / self.eigenvalues[:, 0]


def _scaled_second_moment(batch: MatrixBatch) -> tuple[np.ndarray, np.ndarray]:
    """``Σ / 4**k`` formed from ``A / 2**k`` (``k`` of :func:`~skloop._core.data.scale_exponents`,
    0 for ordinary values): no product under- or overflows. Returns it and ``k``."""
    k = scale_exponents(batch.data, axis=(1, 2))
    data = np.ldexp(batch.data, -k) if k.any() else batch.data
    return np.swapaxes(data, 1, 2) @ data / batch.n_points[:, None, None], k[:, 0, 0]


def second_moment(batch: MatrixBatch) -> np.ndarray:
    """Uncentered second moments ``Σ = AᵀA / n`` of a validated batch, ``(n_matrices, d, d)``.

    Formed after scaling extreme matrices by a power of two, so that entries are exact to
    rounding wherever ``Σ`` itself is representable (infinite or zero only beyond float64).

    Parameters
    ----------
    batch : MatrixBatch
        Validated (and usually preprocessed) matrices; each is divided by its own point count.

    Returns
    -------
    sigma : ndarray of shape (n_matrices, n_features, n_features)
    """
    sigma, k = _scaled_second_moment(batch)
    if not k.any():
        return sigma
    with np.errstate(over="ignore"):
        return np.ldexp(sigma, 2 * k[:, None, None])


def leading_subspace(X, *, center=False, normalize_points=True, rtol=1e-8) -> LeadingSubspace:
    """Top eigenspace of every matrix's second moment (batched ``numpy.linalg.eigh``).

    Parameters
    ----------
    X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
        The data matrices, rows are points.
    center : bool, default=False
        Center each matrix before forming ``Σ`` (sklearn's ``PCA`` convention).
    normalize_points : bool, default=True
        Scale every point to unit norm first (the paper's convention and skloop's default).
    rtol : float, default=1e-8
        Eigenvalues with ``λ_1 - λ_i <= rtol * λ_1`` count as the top eigenvalue.

    Returns
    -------
    subspace : LeadingSubspace

    Examples
    --------
    >>> from skloop.datasets import make_spectrum_matrices
    >>> from skloop.metrics import leading_subspace
    >>> X = make_spectrum_matrices(2, n_points=8, n_features=4,
    ...                            multiplicities=[3, 3, 1, 1], random_state=0)
    >>> leading_subspace(X).multiplicity
    array([2, 2])
    """
    batch = preprocess_points(
        check_matrix_batch(X), center=center, normalize_points=normalize_points
    )
    return subspace_of_batch(batch, rtol=rtol)


def subspace_of_batch(batch: MatrixBatch, *, rtol=1e-8) -> LeadingSubspace:
    """:func:`leading_subspace` of an already validated and preprocessed batch.

    The eigendecomposition is that of ``Σ / 4**k`` (see :func:`second_moment`): eigenvectors
    and multiplicities are exact for any finite batch; eigenvalues are scaled back, and are
    infinite or zero only where ``Σ``'s are beyond float64.
    """
    sigma, k = _scaled_second_moment(batch)
    try:
        eigenvalues, eigenvectors = np.linalg.eigh(sigma)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"The eigendecomposition of Σ did not converge: {exc}") from None
    eigenvalues, eigenvectors = eigenvalues[:, ::-1], eigenvectors[:, :, ::-1]
    top = eigenvalues[:, :1]
    multiplicity = np.sum(top - eigenvalues <= rtol * np.abs(top), axis=1)
    # λ_{r+1} / λ_1 from the scaled eigenvalues: exact even where the scaled-back ones are not.
    below = np.take_along_axis(eigenvalues, np.minimum(multiplicity, sigma.shape[1] - 1)[:, None],
                               axis=1)[:, 0]
    ratio = np.where(multiplicity < sigma.shape[1], below, 0.0) / eigenvalues[:, 0]
    if k.any():
        with np.errstate(over="ignore"):
            eigenvalues = np.ldexp(eigenvalues, 2 * k[:, None])
    return LeadingSubspace(
        eigenvalues=np.ascontiguousarray(eigenvalues),
        eigenvectors=np.ascontiguousarray(eigenvectors),
        multiplicity=multiplicity,
        ratio=ratio,
    )


def _split_norms(X, components, **subspace_kwargs):
    """Norms of the parts of each component inside and outside the top eigenspace, both
    divided by ``2**k`` (``k`` per matrix, 0 for ordinary components), and ``k``.

    The outside part is read from the coefficients on the orthonormal complement basis, so it
    is exact even for tiny angles (no ``||y||² - ||P y||²`` cancellation); extreme components
    are scaled by a power of two first, so that no square under- or overflows.
    """
    subspace = X if isinstance(X, LeadingSubspace) else leading_subspace(X, **subspace_kwargs)
    y = np.asarray(components, dtype=np.float64)
    n_matrices, n_features = subspace.eigenvalues.shape
    if y.shape != (n_matrices, n_features):
        raise ValueError(
            f"components must have shape (n_matrices, n_features) = {(n_matrices, n_features)}; "
            f"got {y.shape}."
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("components hold NaN or infinity; a metric needs finite vectors.")
    k = scale_exponents(y, axis=1)
    if k.any():
        y = np.ldexp(y, -k)
    coefficients = np.einsum("mij,mi->mj", subspace.eigenvectors, y)
    inside = np.where(subspace.in_subspace, coefficients, 0.0)
    outside = np.where(subspace.in_subspace, 0.0, coefficients)
    return np.linalg.norm(inside, axis=1), np.linalg.norm(outside, axis=1), k[:, 0]


def subspace_distance(X, components, **subspace_kwargs) -> np.ndarray:
    """The paper's ``Dist(y, V) = ||y - P_V y||`` for each matrix.

    Parameters
    ----------
    X : array-like, list of 2-D arrays, or LeadingSubspace
        The data matrices ``(n_matrices, n_points, n_features)``, or their precomputed
        :func:`leading_subspace`.
    components : array-like of shape (n_matrices, n_features)
        One vector per matrix, used as given (not normalized): for unit vectors the distance
        is the sine of the angle to ``V``.
    **subspace_kwargs
        ``center``, ``normalize_points``, ``rtol`` passed to :func:`leading_subspace`.

    Returns
    -------
    distance : ndarray of shape (n_matrices,)
    """
    _, outside, k = _split_norms(X, components, **subspace_kwargs)
    with np.errstate(over="ignore"):
        return np.ldexp(outside, k)


def angular_error(X, components, **subspace_kwargs) -> np.ndarray:
    """Angle in degrees between each component and the top eigenspace of its matrix.

    Computed as ``atan2(||y - P_V y||, ||P_V y||)`` from coefficients on an orthonormal
    eigenbasis, which resolves angles down to ~1e-14 degrees in float64 (``arccos`` of a
    cosine cannot resolve angles below ``sqrt(2 eps)``). Sign-invariant; in ``[0, 90]``.

    Parameters
    ----------
    X : array-like, list of 2-D arrays, or LeadingSubspace
        The data matrices ``(n_matrices, n_points, n_features)``, or their precomputed
        :func:`leading_subspace`.
    components : array-like of shape (n_matrices, n_features)
        One vector per matrix (any norm, any sign). A zero vector has no direction and gets
        the worst angle, 90° (as :func:`principal_cos2` gives it 0).
    **subspace_kwargs
        ``center``, ``normalize_points``, ``rtol`` passed to :func:`leading_subspace`.

    Returns
    -------
    angle : ndarray of shape (n_matrices,)
        Degrees.

    Examples
    --------
    >>> import numpy as np
    >>> from skloop.metrics import angular_error
    >>> X = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    >>> angular_error(X, [[-1.0, 0.0]])
    array([0.])
    >>> angular_error(X, [[1.0, 1.0]]).round(6)
    array([45.])
    """
    inside, outside, _ = _split_norms(X, components, **subspace_kwargs)
    zero = (inside == 0) & (outside == 0)
    return np.where(zero, 90.0, np.degrees(np.arctan2(outside, inside)))


def principal_cos2(X, components, **subspace_kwargs) -> np.ndarray:
    """Squared cosine of the angle between each component and the top eigenspace.

    Equal to ``1 - Dist²(y/||y||, V)``: 1 for a perfect component, ``r/d`` in expectation for
    a random direction.

    Parameters
    ----------
    X : array-like, list of 2-D arrays, or LeadingSubspace
        The data matrices ``(n_matrices, n_points, n_features)``, or their precomputed
        :func:`leading_subspace`.
    components : array-like of shape (n_matrices, n_features)
        One non-zero vector per matrix.
    **subspace_kwargs
        ``center``, ``normalize_points``, ``rtol`` passed to :func:`leading_subspace`.

    Returns
    -------
    cos2 : ndarray of shape (n_matrices,)
    """
    inside, outside, _ = _split_norms(X, components, **subspace_kwargs)
    total = inside**2 + outside**2
    return np.divide(inside**2, total, out=np.zeros_like(total), where=total > 0)
