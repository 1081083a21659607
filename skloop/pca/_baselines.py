"""Exact baselines with the estimator API: batched eigendecomposition and power iteration."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions

from .._core.data import MatrixBatch
from .._core.params import Integral, Number, Real
from ._base import BaseMatrixPCA
from ._linalg import power_iteration, top_eigenvectors
from ._vectors import random_query_vectors

__all__ = ["ExactPCA", "PowerIterationPCA"]


def _as_tensors(batch: MatrixBatch) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(batch.data), torch.from_numpy(batch.n_points)


class ExactPCA(BaseMatrixPCA):
    """Leading principal components of each matrix by batched eigendecomposition.

    The exact reference: the top eigenvectors of the second moment ``Σ = AᵀA / n`` of each
    data matrix ``A`` (rows are points), after the same preprocessing as
    :class:`~skloop.LoopedTransformerPCA`. There is nothing to learn; ``fit`` validates and
    records the feature count.

    Parameters
    ----------
    n_components : int, default=1
        Number of leading components per matrix.
    center : bool, default=False
        Center each matrix (sklearn ``PCA``'s convention). The paper's target is the
        uncentered second moment of unit points, hence the default (``TruncatedSVD`` is the
        uncentered scikit-learn analogue).
    normalize_points : bool, default=True
        Scale every point to unit norm before forming ``Σ``.

    Attributes
    ----------
    n_features_in_ : int
        Number of features (the dimension of the points) seen in ``fit``.

    See Also
    --------
    PowerIterationPCA : the classical iterative algorithm.
    sklearn.decomposition.TruncatedSVD : the same components for one uncentered matrix.

    Examples
    --------
    >>> from skloop import ExactPCA
    >>> from skloop.datasets import make_spectrum_matrices
    >>> X = make_spectrum_matrices(10, n_points=16, n_features=8, random_state=0)
    >>> ExactPCA().fit(X).predict(X).shape
    (10, 8)
    >>> round(ExactPCA().fit(X).score(X), 12)
    1.0
    """

    def __init__(self, n_components=1, *, center=False, normalize_points=True):
        self.n_components = n_components
        self.center = center
        self.normalize_points = normalize_points

    def _components(self, batch):
        X, n_points = _as_tensors(batch)
        return top_eigenvectors(X, n_points, self.n_components).numpy()


class PowerIterationPCA(BaseMatrixPCA):
    """The normalized power method (orthogonal iteration for several components), batched.

    From a random unit starting vector ``v`` per matrix, repeats ``v ← Σv / ||Σv||``, or with
    a ``shift`` ``ρ`` the step the looped transformer converges to,
    ``v ← (I + ρΣ)v / ||(I + ρΣ)v||`` (a power iteration on ``Σ + I/ρ``, which contracts the
    error by ``(1 + ρλ_{r+1}) / (1 + ρλ_1)`` per step instead of ``λ_{r+1} / λ_1``).

    Parameters
    ----------
    n_iter : int, default=20
        Number of iterations (the transformer's number of loops).
    shift : float or None, default=None
        ``ρ >= 0`` of the shifted iteration; ``None`` is the classical power method.
    n_components : int, default=1
        Number of components; several are found by orthogonal iteration (QR every step).
    center : bool, default=False
        Center each matrix before forming ``Σ``.
    normalize_points : bool, default=True
        Scale every point to unit norm before forming ``Σ``.
    method : {"auto", "gram", "matrix_free"}, default="auto"
        Form ``Σ`` once (``"gram"``) or multiply by ``Xᵀ(X v)/n`` every step
        (``"matrix_free"``); ``"auto"`` picks the cheaper for the sizes at hand.
    random_state : int, RandomState instance or None, default=None
        Seeds the starting vectors. Every ``predict`` on the same input returns the same
        components: an int gives the vectors of a fresh ``RandomState(random_state)`` (the same
        as :class:`~skloop.LoopedTransformerPCA`'s query vectors with that seed); otherwise a
        seed drawn at ``fit`` (``query_seed_``) is used.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    query_seed_ : int
        Seed of the starting vectors when ``random_state`` is not an int.

    See Also
    --------
    ExactPCA : the exact components by eigendecomposition.

    References
    ----------
    B. N. Parlett, *The Symmetric Eigenvalue Problem*, SIAM, 1998 (power method, ch. 4).

    Examples
    --------
    >>> from skloop import PowerIterationPCA
    >>> from skloop.datasets import make_spectrum_matrices
    >>> X = make_spectrum_matrices(100, n_points=16, n_features=8, random_state=0)
    >>> PowerIterationPCA(n_iter=50, random_state=0).fit(X).score(X) > 0.999
    True
    """

    _parameter_constraints = {
        **BaseMatrixPCA._parameter_constraints,
        "n_iter": [Number(Integral, 1, None, closed="left")],
        "shift": [Number(Real, 0, None, closed="left"), None],
        "method": [StrOptions({"auto", "gram", "matrix_free"})],
        "random_state": ["random_state"],
    }
    # Everything is read at predict: the fit only records the feature count and a query seed.
    _inference_parameters = tuple(_parameter_constraints)
    _saved_attributes = ("n_features_in_", "query_seed_")

    def __init__(
        self,
        n_iter=20,
        *,
        shift=None,
        n_components=1,
        center=False,
        normalize_points=True,
        method="auto",
        random_state=None,
    ):
        self.n_iter = n_iter
        self.shift = shift
        self.n_components = n_components
        self.center = center
        self.normalize_points = normalize_points
        self.method = method
        self.random_state = random_state

    def _fit_batch(self, batch):
        self._draw_query_seed()

    def _components(self, batch):
        X, n_points = _as_tensors(batch)
        V = random_query_vectors(self._query_rng(), batch.n_matrices, batch.n_features,
                                 self.n_components)
        shift = None if self.shift is None else float(self.shift)
        V = power_iteration(X, n_points, torch.from_numpy(V), self.n_iter, shift,
                            self.method).numpy()
        zero = ~np.any(V != 0, axis=1).all(axis=1)
        if zero.any():  # Σv = 0: the starting vector is orthogonal to the range of Σ
            raise FloatingPointError(
                f"The power iteration reached the zero vector for {int(zero.sum())} matrix(es) "
                f"(first: {int(np.argmax(zero))}): the starting vector is orthogonal to every "
                "direction of the data. Use another random_state."
            )
        return V
