"""Shared scikit-learn behaviour of the estimators that predict principal components.

Every PCA-like estimator of skloop (the exact baselines and the looped transformer) takes a
batch of data matrices, preprocesses it the same way, predicts sign-fixed unit components per
matrix and is scored by the squared cosine to the leading principal subspace. Subclasses
implement ``_fit_batch(batch)`` and ``_components(batch)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._core.data import (
    MatrixBatch,
    check_matrix_batch,
    check_model_range,
    check_n_features,
    preprocess_points,
)
from .._core.estimator import AtomicFitMixin, TorchEstimatorMixin, random_state_for, seed_from
from .._core.params import Integral, Number
from .._core.persistence import PersistenceMixin
from ..metrics import principal_cos2, subspace_of_batch
from ..preprocessing import MatrixBatchMixin
from ._vectors import flip_signs


class BaseMatrixPCA(MatrixBatchMixin, ClassNamePrefixFeaturesOutMixin, AtomicFitMixin,
                    PersistenceMixin, TransformerMixin, BaseEstimator):
    """Base class: validation, preprocessing, ``predict``/``transform``/``score``.

    Subclasses extend ``_parameter_constraints`` (checked at ``fit``) and
    ``_inference_parameters`` (the parameters ``predict``/``transform``/``score`` read, checked
    again there), implement ``_fit_batch(batch)`` (after ``n_features_in_`` is set) and
    ``_components(batch)`` returning an array ``(n_matrices, n_features, n_components)`` of unit
    columns, the first being the leading component.

    ``get_feature_names_out`` names the ``n_components`` columns of ``transform`` after the
    class (``exactpca0``, ...); tags and ``set_output`` (no DataFrames: the output is 3-D) come
    from :class:`~skloop.preprocessing.MatrixBatchMixin`.
    """

    _parameter_constraints = {
        "n_components": [Number(Integral, 1, None, closed="left")],
        "center": ["boolean"],
        "normalize_points": ["boolean"],
    }
    _inference_parameters = ("n_components", "center", "normalize_points")
    # Fitted attributes written by ``save`` and set back by ``load``.
    _saved_attributes = ("n_features_in_",)

    def _fixed_n_features(self) -> bool:
        """Whether ``predict`` needs the feature count seen in ``fit`` (default: yes)."""
        return True

    def _prepare(self, X, *, reset: bool) -> MatrixBatch:
        if not reset:
            check_is_fitted(self)
            self._validate_params(self._inference_parameters)
        batch = check_matrix_batch(X)
        if self.n_components > batch.n_features:
            raise ValueError(
                f"n_components={self.n_components} must be <= n_features={batch.n_features}."
            )
        if reset:
            self.n_features_in_ = batch.n_features
        elif self._fixed_n_features():
            check_n_features(batch, self.n_features_in_, type(self).__name__)
        batch = preprocess_points(batch, center=self.center,
                                  normalize_points=self.normalize_points)
        if not self.normalize_points and isinstance(self, TorchEstimatorMixin):
            # Raw points go into a torch model: they must fit its dtype (the exact baselines
            # scale internally and take any finite value).
            check_model_range(batch, self._dtype() if reset else self._module_dtype())
        return batch

    @property
    def _n_features_out(self) -> int:
        """Columns per point of ``transform`` (for ``get_feature_names_out``)."""
        check_is_fitted(self)
        return self.n_components

    def _query_rng(self) -> np.random.RandomState:
        """The generator of the query (starting) vectors of one ``predict``.

        An int ``random_state`` gives the same vectors as a fresh ``RandomState`` with that seed
        (so :class:`PowerIterationPCA` and :class:`LoopedTransformerPCA` with one seed share
        them); otherwise the seed ``query_seed_`` drawn at ``fit``: identical inputs always get
        identical predictions.
        """
        if isinstance(self.random_state, Integral) and not isinstance(self.random_state, bool):
            return np.random.RandomState(self.random_state)
        return np.random.RandomState(self.query_seed_)

    def _draw_query_seed(self) -> None:
        self.query_seed_ = seed_from(random_state_for(self.random_state))

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
        return self._atomic_fit(X)

    def _fit(self, X, y=None) -> None:
        self._validate_params()
        self._fit_batch(self._prepare(X, reset=True))

    def _fit_batch(self, batch: MatrixBatch) -> None:
        """Learn from the preprocessed batch (nothing to learn for the exact baselines)."""

    def _fitted_state(self) -> dict:
        return {name: getattr(self, name) for name in self._saved_attributes}

    def _restore(self, fitted: dict, state: dict, history: list) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no weights to load.")
        self._restore_attributes(fitted)

    def _restore_attributes(self, fitted: dict) -> None:
        self.n_features_in_ = int(fitted["n_features_in_"])
        if "query_seed_" in self._saved_attributes:
            # Files written before query_seed_ existed: a fresh seed, fixed from now on.
            seed = fitted.get("query_seed_")
            self.query_seed_ = seed_from(random_state_for(None)) if seed is None else int(seed)

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
