"""The power-method paper's tasks and a spiked out-of-distribution set."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from ._checks import check_positive_int, check_sizes, unit_rows

__all__ = ["make_sphere_matrices", "make_spectrum_matrices", "default_multiplicities",
           "make_spiked_matrices"]


def make_sphere_matrices(n_matrices=1000, n_points=16, n_features=8, *, random_state=None):
    """Matrices of points drawn uniformly on the unit sphere (the paper's Task 1).

    Each point is a standard Gaussian vector scaled to unit norm, so the distribution is
    rotation-invariant (Assumption 3.2 of the power-method paper).

    Parameters
    ----------
    n_matrices : int, default=1000
        Number of matrices.
    n_points : int, default=16
        Points per matrix (the paper's ``n``).
    n_features : int, default=8
        Dimension of every point (the paper's ``d``).
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.

    Examples
    --------
    >>> from skloop.datasets import make_sphere_matrices
    >>> X = make_sphere_matrices(3, n_points=5, n_features=2, random_state=0)
    >>> X.shape
    (3, 5, 2)
    """
    n_matrices, n_points, n_features = check_sizes(n_matrices, n_points, n_features)
    rng = check_random_state(random_state)
    return unit_rows(rng.standard_normal((n_matrices, n_points, n_features)))


def default_multiplicities(n_points: int, n_features: int) -> np.ndarray:
    """Default eigenvalue multiplicities ``m_i`` for :func:`make_spectrum_matrices`.

    ``n_points`` is split as evenly as possible over ``n_features`` directions, the remainder
    going to the first ones; if that leaves all equal (no eigengap), one unit moves from the
    last direction to the first. For ``n_points = 2 n_features`` this gives
    ``(3, 2, ..., 2, 1)``: a simple top eigenvalue and ``λ_2 / λ_1 = 2/3``.

    Parameters
    ----------
    n_points : int
        Number of points ``n``; must be at least ``n_features + 1``.
    n_features : int
        Dimension ``d``.

    Returns
    -------
    multiplicities : ndarray of shape (n_features,)
        Decreasing positive integers summing to ``n_points``.
    """
    n_points = check_positive_int(n_points, "n_points")
    n_features = check_positive_int(n_features, "n_features")
    if n_points < n_features + 1:
        raise ValueError(
            "The default multiplicities need n_points >= n_features + 1 so that every "
            f"direction has a point and the top eigenvalue is separated; got n_points="
            f"{n_points}, n_features={n_features}. Pass multiplicities explicitly."
        )
    base, extra = divmod(n_points, n_features)
    m = np.full(n_features, base, dtype=np.int64)
    m[:extra] += 1
    if np.all(m == m[0]):
        m[0] += 1
        m[-1] -= 1
    return np.sort(m)[::-1].copy()


def _haar_orthogonal(rng, n_matrices: int, d: int) -> np.ndarray:
    """Haar-distributed orthogonal matrices: QR of a Gaussian with the sign fix of R."""
    q, r = np.linalg.qr(rng.standard_normal((n_matrices, d, d)))
    signs = np.sign(np.diagonal(r, axis1=1, axis2=2))
    signs[signs == 0] = 1.0
    return q * signs[:, None, :]


def make_spectrum_matrices(
    n_matrices=1000, n_points=16, n_features=8, *, multiplicities=None, random_state=None
):
    """Matrices with a prescribed spectrum and random eigenvectors (the paper's Task 2).

    Following Example 3.3 of the power-method paper, each matrix is ``X = Q B`` (paper
    orientation, columns are points) with ``Q`` Haar-random orthogonal and ``B`` made of the
    basis vector ``e_i`` repeated ``m_i`` times. The eigenvalues of ``XXᵀ / n`` are exactly
    ``m_i / n`` and the eigenvectors are the columns of ``Q``. The points are returned in
    random order, in scikit-learn orientation.

    Parameters
    ----------
    n_matrices : int, default=1000
        Number of matrices.
    n_points : int, default=16
        Points per matrix; must equal ``sum(multiplicities)``.
    n_features : int, default=8
        Dimension of every point.
    multiplicities : array-like of int of shape (n_features,), default=None
        The ``m_i`` (positive, summing to ``n_points``). Several equal maxima give a top
        eigenvalue of multiplicity ``r > 1``. ``None`` uses :func:`default_multiplicities`.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.

    Examples
    --------
    >>> import numpy as np
    >>> from skloop.datasets import make_spectrum_matrices
    >>> X = make_spectrum_matrices(1, n_points=6, n_features=3,
    ...                            multiplicities=[3, 2, 1], random_state=0)
    >>> np.linalg.eigvalsh(X[0].T @ X[0] / 6)[::-1].round(6)
    array([0.5     , 0.333333, 0.166667])
    """
    n_matrices, n_points, n_features = check_sizes(n_matrices, n_points, n_features)
    if multiplicities is None:
        m = default_multiplicities(n_points, n_features)
    else:
        m = np.asarray(multiplicities)
        if m.shape != (n_features,) or m.dtype.kind not in "iu":
            raise ValueError(
                f"multiplicities must be {n_features} integers (one per feature); got {m!r}."
            )
        if np.any(m < 0) or m.sum() != n_points or np.all(m == 0):
            raise ValueError(
                f"multiplicities must be non-negative and sum to n_points={n_points}; "
                f"got {m.tolist()} (sum {int(m.sum())})."
            )
    rng = check_random_state(random_state)
    q = _haar_orthogonal(rng, n_matrices, n_features)
    directions = np.repeat(np.arange(n_features), m)  # point j is the column e_{directions[j]}
    order = np.argsort(rng.random((n_matrices, n_points)), axis=1)
    shuffled = directions[order]  # (n_matrices, n_points)
    # Row j of the sklearn-oriented matrix is Q e_{i_j}, the i_j-th column of Q.
    return np.take_along_axis(np.swapaxes(q, 1, 2), shuffled[:, :, None], axis=1)


def make_spiked_matrices(
    n_matrices=1000,
    n_points=16,
    n_features=8,
    *,
    spike=3.0,
    decay=0.5,
    return_spikes=False,
    random_state=None,
):
    """Anisotropic Gaussian points with a planted spike (an out-of-distribution test set).

    Points are ``x = sqrt(spike) g_0 s + D^{1/2} g`` with ``g_0 ~ N(0, 1)``, ``g ~ N(0, I)``,
    a random unit spike direction ``s`` per matrix and a fixed axis-aligned diagonal
    ``D = diag(1, ..., decay)`` (geometric), then scaled to unit norm. The population
    covariance ``spike · ssᵀ + D`` has ``λ_2 / λ_1 ≈ 1 / (1 + spike)`` before the unit-norm
    scaling (somewhat larger after it, and noisier for few points): ``spike`` controls the
    eigengap. Because ``D`` is axis-aligned, the distribution is not rotation-invariant, unlike
    the training tasks of the paper.

    Parameters
    ----------
    n_matrices : int, default=1000
        Number of matrices.
    n_points : int, default=16
        Points per matrix.
    n_features : int, default=8
        Dimension of every point.
    spike : float, default=3.0
        Variance added along the spike direction (>= 0); larger means a larger eigengap.
    decay : float, default=0.5
        Smallest diagonal entry of ``D`` relative to its largest, in ``(0, 1]``.
    return_spikes : bool, default=False
        Also return the planted directions.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.
    spikes : ndarray of shape (n_matrices, n_features)
        The planted unit directions, only if ``return_spikes=True``.
    """
    n_matrices, n_points, n_features = check_sizes(n_matrices, n_points, n_features)
    if not np.isfinite(spike) or spike < 0:
        raise ValueError(f"spike must be a finite number >= 0; got {spike!r}.")
    if not (0 < decay <= 1):
        raise ValueError(f"decay must be in (0, 1]; got {decay!r}.")
    rng = check_random_state(random_state)
    spikes = unit_rows(rng.standard_normal((n_matrices, n_features)))
    diagonal = decay ** np.linspace(0.0, 1.0, n_features)
    noise = rng.standard_normal((n_matrices, n_points, n_features)) * np.sqrt(diagonal)
    loadings = rng.standard_normal((n_matrices, n_points, 1)) * np.sqrt(spike)
    points = noise + loadings * spikes[:, None, :]
    norms = np.linalg.norm(points, axis=-1, keepdims=True)
    points = points / np.where(norms > 0, norms, 1.0)
    return (points, spikes) if return_spikes else points
