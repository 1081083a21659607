"""Shared scikit-learn behaviour of the estimators that predict principal components.

Every PCA-like estimator of skloop (the exact baselines and the looped transformer) takes a
batch of data matrices, preprocesses it the same way, predicts sign-fixed unit components per
matrix and is scored by the squared cosine to the leading principal subspace. Subclasses
implement ``_fit(batch)`` and ``_components(batch)``.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._persistence import PersistenceMixin
from .._validation import MatrixBatch, check_matrix_batch, check_n_features, preprocess_points
from ..metrics import principal_cos2, subspace_of_batch
from ._algorithms import flip_signs


def check_bool(value, name: str) -> None:
    """Raise a ``TypeError`` naming ``name`` unless ``value`` is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool; got {value!r} ({type(value).__name__}).")


def check_int(value, name: str, minimum: int) -> None:
    """Raise a clear error unless ``value`` is an int ``>= minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")


def check_training_params(estimator) -> None:
    """The hyper-parameters every trained estimator shares: batch, epochs, verbosity, threads,
    compilation."""
    check_int(estimator.batch_size, "batch_size", 1)
    check_bool(estimator.compile, "compile")
    check_int(estimator.max_epochs, "max_epochs", 1)
    check_int(estimator.verbose, "verbose", 0)
    if estimator.n_threads is not None:
        check_int(estimator.n_threads, "n_threads", 1)


class BaseMatrixPCA(PersistenceMixin, TransformerMixin, BaseEstimator):
    """Base class: validation, preprocessing, ``predict``/``transform``/``score`` and tags.

    Subclasses define the parameters ``n_components``, ``center`` and ``normalize_points`` and
    implement ``_fit(batch)`` (after ``n_features_in_`` is set) and ``_components(batch)``
    returning an array ``(n_matrices, n_features, n_components)`` of unit columns, the first
    being the leading component.
    """

    def _check_common_params(self) -> None:
        check_int(self.n_components, "n_components", 1)
        check_bool(self.center, "center")
        check_bool(self.normalize_points, "normalize_points")

    def _fixed_n_features(self) -> bool:
        """Whether ``predict`` needs the feature count seen in ``fit`` (default: yes)."""
        return True

    def _check_params(self) -> None:
        """Validate the estimator-specific hyper-parameters (subclasses extend)."""

    def _prepare(self, X, *, reset: bool) -> MatrixBatch:
        batch = check_matrix_batch(X)
        if reset:
            if self.n_components > batch.n_features:
                raise ValueError(
                    f"n_components={self.n_components} must be <= n_features="
                    f"{batch.n_features}."
                )
            self.n_features_in_ = batch.n_features
        else:
            check_is_fitted(self)
            if self._fixed_n_features():
                check_n_features(batch, self.n_features_in_, type(self).__name__)
        return preprocess_points(batch, center=self.center, normalize_points=self.normalize_points)

    def fit(self, X, y=None):
        """Validate the batch of matrices and fit the estimator.

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices, rows are points. A list of matrices with different numbers of
            points is accepted.
        y : None
            Ignored; the target of each matrix is derived from the matrix itself.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_common_params()
        self._check_params()
        self._fit(self._prepare(X, reset=True))
        return self

    def _fit(self, batch: MatrixBatch) -> None:
        """Learn from the preprocessed batch (nothing to learn for the exact baselines)."""

    def _fitted_state(self) -> dict:
        return {"n_features_in_": self.n_features_in_}

    def _restore(self, fitted: dict, state: dict, history: list) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no weights to load.")
        self.n_features_in_ = int(fitted["n_features_in_"])

    def _predict_batch(self, batch: MatrixBatch) -> np.ndarray:
        components = np.swapaxes(np.asarray(self._components(batch)), 1, 2)  # (N, k, d)
        return flip_signs(components)

    def predict(self, X):
        """Predict the leading principal component(s) of each matrix.

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices with the feature count seen in ``fit``.

        Returns
        -------
        components : ndarray of shape (n_matrices, n_features) or \
                (n_matrices, n_components, n_features)
            Unit vectors, the largest-magnitude coordinate positive; the second form when
            ``n_components > 1``, the leading component first.
        """
        components = self._predict_batch(self._prepare(X, reset=False))
        return components[:, 0] if self.n_components == 1 else components

    def transform(self, X):
        """Project the (preprocessed) points of each matrix onto its predicted components.

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices with the feature count seen in ``fit``.

        Returns
        -------
        projections : ndarray of shape (n_matrices, n_points, n_components) or list
            Coordinates of every point on the matrix's components; a list of
            ``(n_points_i, n_components)`` arrays for a ragged input.
        """
        batch = self._prepare(X, reset=False)
        components = self._predict_batch(batch)
        return batch.unpad(batch.data @ np.swapaxes(components, 1, 2))

    def score(self, X, y=None):
        """Mean squared cosine between the leading predicted component and the top eigenspace.

        The eigenspace is that of each matrix's second moment after the estimator's own
        preprocessing (``center``, ``normalize_points``). 1 is perfect; a random direction
        scores ``r / d`` on average.

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        batch = self._prepare(X, reset=False)
        leading = self._predict_batch(batch)[:, 0]
        return float(np.mean(principal_cos2(subspace_of_batch(batch), leading)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.required = False
        return tags
