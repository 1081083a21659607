"""Preprocessing of batches of data matrices: any scikit-learn transformer, applied per matrix.

:class:`PerMatrix` puts a 2-D scikit-learn transformer (``StandardScaler``, ``Normalizer``,
``PCA``, ...) in front of skloop's estimators, which take batches of matrices
``(n_matrices, n_points, n_features)`` or ragged lists of 2-D matrices.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import (
    _check_feature_names_in,
    _generate_get_feature_names_out,
    check_is_fitted,
)

from ._core.data import check_matrix_batch, check_n_features
from ._core.estimator import AtomicFitMixin
from ._core.params import HasMethods, InvalidParameterError, StrOptions

__all__ = ["PerMatrix"]


class MatrixBatchMixin:
    """Unsupervised estimators of batches of matrices, whose transform output is 3-D too.

    Tags declare 3-D input and no target. ``set_output`` accepts only ``"default"`` (or None)
    and raises otherwise, since no DataFrame holds a batch of matrices; scikit-learn's automatic
    wrapping of ``transform`` is switched off, so the global
    ``set_config(transform_output=...)`` leaves the 3-D output as it is.
    """

    def __init_subclass__(cls, **kwargs):
        kwargs["auto_wrap_output_keys"] = None
        super().__init_subclass__(**kwargs)

    def set_output(self, *, transform=None):
        """Set the output container: only the default (arrays) exists for 3-D output.

        Parameters
        ----------
        transform : {"default"} or None, default=None
            ``"default"`` or None keep the output as it is; anything else raises.

        Returns
        -------
        self : object
            The estimator.

        Raises
        ------
        ValueError
            For ``"pandas"``, ``"polars"`` or any other container.
        """
        if transform not in (None, "default"):
            raise ValueError(
                f"{type(self).__name__}.set_output(transform={transform!r}): 3-D output cannot "
                "be a DataFrame; this transformer returns a batch of matrices (a 3-D array or a "
                "list of 2-D arrays). Use transform='default'."
            )
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.required = False
        return tags


def _with_default_output(transformer):
    """A transformer returning arrays, whatever the global ``transform_output``."""
    if hasattr(transformer, "set_output"):
        transformer.set_output(transform="default")
    return transformer


class PerMatrix(MatrixBatchMixin, AtomicFitMixin, TransformerMixin, BaseEstimator):
    """Apply a scikit-learn transformer to the points of every matrix of a batch.

    Each matrix of the batch (rows are points) is transformed as a 2-D ``(n_points,
    n_features)`` array by ``transformer``, and the results form a batch again, so that
    ``make_pipeline(PerMatrix(StandardScaler()), LoopedTransformerPCA())`` works, ragged
    batches included. The zero padding of a ragged batch never reaches the transformer.

    Parameters
    ----------
    transformer : estimator with ``fit`` and ``transform``
        A scikit-learn transformer of 2-D data; it must map every point to one output row
        (the number of output features may differ from the input's).
    fit_on : {"each", "all"}, default="each"
        ``"each"``: a clone of ``transformer`` is fitted on each matrix's own points when that
        matrix is transformed (every matrix standardized with its own statistics, say). It is
        a per-matrix operation: ``fit`` learns nothing, and new matrices at ``transform``
        time use their own statistics, not those of the training matrices. ``"all"``: one
        clone is fitted in ``fit`` on all the points of all the matrices and then applied to
        the points of every matrix.

    Attributes
    ----------
    transformer_ : estimator
        With ``fit_on="all"``: the transformer fitted on all points.
    n_features_in_ : int
        Number of features (the dimension of the points) seen in ``fit``.
    n_features_out_ : int
        Number of output features per point (seen on the first matrix in ``fit``).

    See Also
    --------
    sklearn.preprocessing.FunctionTransformer : a stateless function of the whole batch.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skloop import ExactPCA
    >>> from skloop.datasets import make_sphere_matrices
    >>> from skloop.preprocessing import PerMatrix
    >>> X = make_sphere_matrices(5, n_points=16, n_features=8, random_state=0)
    >>> Xt = PerMatrix(StandardScaler()).fit_transform(X)
    >>> Xt.shape, bool(np.allclose(Xt.mean(axis=1), 0))  # each matrix centred on its own
    ((5, 16, 8), True)
    >>> make_pipeline(PerMatrix(StandardScaler()), ExactPCA()).fit(X).predict(X).shape
    (5, 8)
    >>> ragged = [X[0, :10], X[1]]
    >>> [m.shape for m in PerMatrix(StandardScaler(), fit_on="all").fit_transform(ragged)]
    [(10, 8), (16, 8)]
    """

    _parameter_constraints = {
        "transformer": [HasMethods(["fit", "transform"])],
        "fit_on": [StrOptions({"each", "all"})],
    }

    def __init__(self, transformer, *, fit_on="each"):
        self.transformer = transformer
        self.fit_on = fit_on

    def fit(self, X, y=None):
        """Validate the batch and, with ``fit_on="all"``, fit the transformer on all points.

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices, rows are points; a list of matrices with different numbers of
            points is accepted.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        return self._atomic_fit(X)

    def _fit(self, X, y=None) -> None:
        self._validate_params()
        batch = check_matrix_batch(X)
        self.n_features_in_ = batch.n_features
        if self.fit_on == "all":
            points = batch.data[batch.point_mask()]  # the real points, stacked
            self.transformer_ = self._fresh_transformer().fit(points)
        # The transformer runs on the first matrix: it works, and gives the output width.
        first = self._transform_points([batch.data[0, : batch.n_points[0]]])
        self.n_features_out_ = first[0].shape[1]

    def transform(self, X):
        """Transform the points of every matrix.

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices (rows are points) of ``n_features_in_`` features.

        Returns
        -------
        Xt : ndarray of shape (n_matrices, n_points, n_features_out) or list of 2-D arrays
            The transformed matrices, float64; a list of ``(n_points_i, n_features_out)``
            arrays for a ragged input.
        """
        check_is_fitted(self)
        self._validate_params()
        batch = check_matrix_batch(X)
        check_n_features(batch, self.n_features_in_, type(self).__name__)
        matrices = [batch.data[i, :k] for i, k in enumerate(batch.n_points)]
        outputs = self._transform_points(matrices)
        widths = sorted({out.shape[1] for out in outputs})
        if len(widths) > 1:
            raise ValueError(
                f"{self._name()} returned different numbers of features {widths} for "
                "different matrices; a batch needs one feature count."
            )
        data = np.zeros((batch.n_matrices, batch.data.shape[1], widths[0]))
        for i, out in enumerate(outputs):
            data[i, : len(out)] = out
        return batch.unpad(data)

    def _transform_points(self, matrices: list) -> list:
        """The transformed points of each matrix, as float64 arrays of the same rows."""
        if self.fit_on == "all":
            check_is_fitted(self, "transformer_", msg=(
                "This %(name)s was not fitted with fit_on='all'; call fit before transform."
            ))
            stacked = _as_dense(self.transformer_.transform(np.concatenate(matrices)))
            self._check_rows(stacked, sum(len(m) for m in matrices))
            return np.split(stacked, np.cumsum([len(m) for m in matrices])[:-1])
        estimator = self._fresh_transformer()
        outputs = [_as_dense(estimator.fit_transform(points)) for points in matrices]
        for points, out in zip(matrices, outputs, strict=True):
            self._check_rows(out, len(points))
        return outputs

    def _fresh_transformer(self):
        """An unfitted clone of ``transformer`` that outputs arrays."""
        try:
            return _with_default_output(clone(self.transformer))
        except TypeError as exc:
            raise InvalidParameterError(
                f"The 'transformer' parameter of PerMatrix must be an estimator instance that "
                f"scikit-learn can clone; got {self.transformer!r}: {exc}"
            ) from None

    def _check_rows(self, out: np.ndarray, n_points: int) -> None:
        if out.ndim != 2 or len(out) != n_points:
            raise ValueError(
                f"{self._name()} returned an output of shape {out.shape} for {n_points} "
                "points; PerMatrix needs a transformer that maps every point to one output row."
            )

    def _name(self) -> str:
        return f"PerMatrix's {type(self.transformer).__name__}"

    def get_feature_names_out(self, input_features=None):
        """Names of the output features of every point.

        Those of the fitted transformer with ``fit_on="all"`` when it has
        ``get_feature_names_out``; otherwise the input names (``x0``, ``x1``, ... by default)
        when the feature count is unchanged, else ``permatrix0``, ``permatrix1``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; None uses ``x0``, ``x1``, ...

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        if self.fit_on == "all" and hasattr(self, "transformer_"):
            if hasattr(self.transformer_, "get_feature_names_out"):
                return self.transformer_.get_feature_names_out(input_features)
        if self.n_features_out_ == self.n_features_in_:
            return _check_feature_names_in(self, input_features)
        return _generate_get_feature_names_out(self, self.n_features_out_, input_features)


def _as_dense(output) -> np.ndarray:
    """A transformer's output as a float64 array (sparse outputs densified)."""
    if sparse.issparse(output):
        output = output.toarray()
    return np.asarray(output, dtype=np.float64)
