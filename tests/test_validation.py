"""Validation and preprocessing details (the bad-input table is in test_bad_input.py)."""

import numpy as np
import pytest

from skloop import ExactPCA, PowerIterationPCA
from skloop._core.data import check_matrix_batch, preprocess_points
from skloop.datasets import make_sphere_matrices

GOOD = make_sphere_matrices(4, n_points=6, n_features=3, random_state=0)


def test_wrong_feature_count_at_predict_transform_score():
    est = PowerIterationPCA(2).fit(GOOD)
    other = make_sphere_matrices(2, n_points=6, n_features=4, random_state=0)
    for method in (est.predict, est.transform, est.score):
        with pytest.raises(ValueError, match="expecting 3 features"):
            method(other)


def test_zero_after_centering_and_all_zero_matrix():
    X = np.ones((2, 4, 3))
    X[0, :, 0] = [1.0, 2.0, 3.0, 4.0]  # only matrix 0 has any spread ...
    with pytest.raises(ValueError, match="zero-norm point.*after centering"):
        ExactPCA(center=True).fit(X)
    zero = np.zeros((2, 4, 3))
    zero[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="all-zero matrix"):
        ExactPCA(normalize_points=False).fit(zero)
    # Without normalization a zero point is harmless (it adds nothing to Σ).
    X = GOOD.copy()
    X[0, 0] = 0.0
    assert ExactPCA(normalize_points=False).fit(X).predict(X).shape == (4, 3)


def test_huge_values_are_exact_with_and_without_normalization():
    huge = GOOD * 1e300
    expected = ExactPCA().fit(GOOD).predict(GOOD)
    for normalize_points in (True, False):
        pred = ExactPCA(normalize_points=normalize_points).fit(huge).predict(huge)
        np.testing.assert_allclose(pred, expected, atol=1e-12)


BAD_PARAMS = [
    (ExactPCA(n_components=0), ValueError, "'n_components' parameter"),
    (ExactPCA(n_components=4), ValueError, "n_components=4 must be <= n_features=3"),
    (ExactPCA(n_components=1.5), TypeError, "'n_components' parameter"),
    (ExactPCA(center="yes"), TypeError, "'center' parameter"),
    (ExactPCA(normalize_points=None), TypeError, "'normalize_points' parameter"),
    (PowerIterationPCA(n_iter=0), ValueError, "'n_iter' parameter"),
    (PowerIterationPCA(n_iter=-3), ValueError, "'n_iter' parameter"),
    (PowerIterationPCA(shift=-1.0), ValueError, "'shift' parameter"),
    (PowerIterationPCA(shift=np.inf), ValueError, "'shift' parameter"),
    (PowerIterationPCA(shift="big"), TypeError, "'shift' parameter"),
    (PowerIterationPCA(method="svd"), ValueError, "'method' parameter"),
]


@pytest.mark.parametrize("estimator, error, message", BAD_PARAMS, ids=[m for _, _, m in BAD_PARAMS])
def test_bad_hyper_parameters(estimator, error, message):
    with pytest.raises(error, match=message):
        estimator.fit(GOOD)


def test_ragged_lists_are_padded_with_their_own_point_counts():
    rng = np.random.default_rng(0)
    matrices = [rng.standard_normal((n, 3)) for n in (2, 5)]
    batch = check_matrix_batch(matrices)
    assert batch.ragged and batch.data.shape == (2, 5, 3)
    np.testing.assert_array_equal(batch.n_points, [2, 5])
    np.testing.assert_array_equal(batch.data[0, 2:], 0.0)
    normalized = preprocess_points(batch, center=True)
    np.testing.assert_array_equal(normalized.data[0, 2:], 0.0)  # padding stays zero
    np.testing.assert_allclose(np.linalg.norm(normalized.data[1], axis=1), 1.0)
    # A list of equal-sized matrices is an ordinary batch.
    assert not check_matrix_batch([m[:2] for m in matrices]).ragged


def test_integer_and_boolean_matrices_are_converted():
    X = (GOOD > 0).astype(int) + 1
    assert check_matrix_batch(X).data.dtype == np.float64
    assert ExactPCA().fit(X > 0.5).predict(X > 0.5).shape == (4, 3)
