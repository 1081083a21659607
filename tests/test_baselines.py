import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import NotFittedError

from skloop import ExactPCA, PowerIterationPCA
from skloop.datasets import make_spectrum_matrices, make_sphere_matrices
from skloop.metrics import angular_error, leading_subspace


def _unit_rows(A):
    return A / np.linalg.norm(A, axis=-1, keepdims=True)


def _cos(a, b):
    return abs(np.sum(a * b, axis=-1)) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def task2():
    return make_spectrum_matrices(200, n_points=16, n_features=8, random_state=0)


def test_exact_pca_agrees_with_truncated_svd_uncentered():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 30, 6)) + rng.standard_normal((10, 1, 6))
    for normalize in (True, False):
        pred = ExactPCA(normalize_points=normalize).fit(X).predict(X)
        for A, p in zip(X, pred, strict=True):
            data = _unit_rows(A) if normalize else A
            reference = TruncatedSVD(1, algorithm="arpack").fit(data).components_[0]
            assert _cos(p, reference) == pytest.approx(1.0, abs=1e-10)


def test_exact_pca_agrees_with_sklearn_pca_when_centered():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((10, 30, 6)) * np.linspace(2, 0.5, 6) + 3.0
    pred = ExactPCA(center=True, normalize_points=False).fit(X).predict(X)
    for A, p in zip(X, pred, strict=True):
        reference = PCA(1).fit(A).components_[0]
        assert _cos(p, reference) == pytest.approx(1.0, abs=1e-10)


def test_exact_pca_several_components_and_sign_convention(task2):
    X = make_spectrum_matrices(
        50, n_points=21, n_features=6, multiplicities=[6, 5, 4, 3, 2, 1], random_state=1
    )
    pred = ExactPCA(n_components=3).fit(X).predict(X)
    assert pred.shape == (50, 3, 6)
    eigenvectors = leading_subspace(X).eigenvectors
    for k in range(3):
        np.testing.assert_allclose(_cos(pred[:, k], eigenvectors[:, :, k]), 1.0, atol=1e-10)
    largest = np.take_along_axis(pred, np.abs(pred).argmax(axis=-1)[..., None], axis=-1)
    assert np.all(largest > 0)
    np.testing.assert_allclose(np.linalg.norm(pred, axis=-1), 1.0, atol=1e-12)


def test_power_iteration_matches_the_exact_error_identity(task2):
    # sin² φ_k = Σ_{i>r} λ_i^{2k} c_i² / Σ_i λ_i^{2k} c_i²  (power-method note, §3.2 at ρ → ∞).
    subspace = leading_subspace(task2)
    rng = np.random.RandomState(7)
    v = rng.standard_normal((200, 8))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    c = np.einsum("mij,mi->mj", subspace.eigenvectors, v)
    for k in (1, 3, 10, 30):
        pred = PowerIterationPCA(n_iter=k, random_state=7).fit(task2).predict(task2)
        weights = subspace.eigenvalues ** (2 * k) * c**2
        expected = np.degrees(np.arcsin(np.sqrt(weights[:, 1:].sum(1) / weights.sum(1))))
        np.testing.assert_allclose(angular_error(subspace, pred), expected, rtol=1e-8, atol=1e-10)


def test_power_iteration_obeys_the_rate_bound(task2):
    # tan φ_k <= (λ2/λ1)^k tan φ_0 for every matrix, and the rate is attained (λ2/λ1 = 2/3).
    subspace = leading_subspace(task2)
    rng = np.random.RandomState(3)
    v = rng.standard_normal((200, 8))
    tan0 = np.tan(np.radians(angular_error(subspace, v)))
    previous = None
    for k in (5, 10, 20, 40):
        pred = PowerIterationPCA(n_iter=k, random_state=3).fit(task2).predict(task2)
        tan_k = np.tan(np.radians(angular_error(subspace, pred)))
        assert np.all(tan_k <= (2 / 3) ** k * tan0 * (1 + 1e-9) + 1e-13)
        if previous is not None and k <= 20:
            rate = np.median((tan_k / previous[1]) ** (1 / (k - previous[0])))
            assert rate == pytest.approx(2 / 3, rel=0.02)
        previous = (k, tan_k)


def test_shifted_power_iteration_is_the_matrix_power(task2):
    rho, k = 4.0, 6
    pred = PowerIterationPCA(n_iter=k, shift=rho, random_state=11).fit(task2).predict(task2)
    rng = np.random.RandomState(11)
    v = rng.standard_normal((200, 8, 1))
    sigma = np.swapaxes(task2, 1, 2) @ task2 / 16
    expected = np.linalg.matrix_power(np.eye(8) + rho * sigma, k) @ v
    np.testing.assert_allclose(_cos(pred, expected[:, :, 0]), 1.0, atol=1e-12)


@pytest.mark.parametrize("n_components", [1, 3])
def test_gram_and_matrix_free_agree(task2, n_components):
    kwargs = dict(n_iter=15, n_components=n_components, random_state=0, shift=2.0)
    gram = PowerIterationPCA(method="gram", **kwargs).fit(task2).predict(task2)
    free = PowerIterationPCA(method="matrix_free", **kwargs).fit(task2).predict(task2)
    np.testing.assert_allclose(gram, free, atol=1e-10)


def test_orthogonal_iteration_finds_the_top_components():
    X = make_spectrum_matrices(
        50, n_points=21, n_features=6, multiplicities=[6, 5, 4, 3, 2, 1], random_state=2
    )
    pred = PowerIterationPCA(n_iter=300, n_components=3, random_state=0).fit(X).predict(X)
    exact = ExactPCA(n_components=3).fit(X).predict(X)
    np.testing.assert_allclose(_cos(pred, exact), 1.0, atol=1e-9)


def test_random_state_reproducible_and_score_increases_with_iterations(task2):
    a = PowerIterationPCA(n_iter=3, random_state=5).fit(task2).predict(task2)
    b = PowerIterationPCA(n_iter=3, random_state=5).fit(task2).predict(task2)
    np.testing.assert_array_equal(a, b)
    scores = [
        PowerIterationPCA(n_iter=k, random_state=5).fit(task2).score(task2) for k in (1, 5, 20)
    ]
    assert scores[0] < scores[1] < scores[2] <= 1.0
    assert ExactPCA().fit(task2).score(task2) == pytest.approx(1.0, abs=1e-12)


def test_transform_projects_the_preprocessed_points():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 10, 5)) * 3
    est = ExactPCA(n_components=2).fit(X)
    projections = est.transform(X)
    assert projections.shape == (4, 10, 2)
    expected = _unit_rows(X) @ np.swapaxes(est.predict(X), 1, 2)
    np.testing.assert_allclose(projections, expected, atol=1e-12)
    np.testing.assert_allclose(est.fit_transform(X), expected, atol=1e-12)


def test_ragged_input_matches_per_matrix_predictions():
    rng = np.random.default_rng(6)
    matrices = [rng.standard_normal((n, 4)) for n in (5, 9, 7)]
    est = PowerIterationPCA(n_iter=10, shift=1.5, random_state=0).fit(matrices)
    pred = est.predict(matrices)
    transformed = est.transform(matrices)
    assert isinstance(transformed, list)
    assert [t.shape for t in transformed] == [(5, 1), (9, 1), (7, 1)]
    # Same v per matrix: the query vectors depend only on the batch size and the seed.
    rng_v = np.random.RandomState(0)
    v = rng_v.standard_normal((3, 4))
    for i, A in enumerate(matrices):
        sigma = _unit_rows(A).T @ _unit_rows(A) / A.shape[0]
        expected = np.linalg.matrix_power(np.eye(4) + 1.5 * sigma, 10) @ v[i]
        assert _cos(pred[i], expected) == pytest.approx(1.0, abs=1e-12)


def test_grid_search_without_y_picks_the_most_iterations(task2):
    search = GridSearchCV(PowerIterationPCA(random_state=0), {"n_iter": [1, 5, 20]}).fit(task2)
    assert search.best_params_ == {"n_iter": 20}
    scores = cross_val_score(ExactPCA(), task2, cv=3)
    np.testing.assert_allclose(scores, 1.0, atol=1e-12)


def test_pipeline_with_a_3d_preprocessing_step(task2):
    # A random rotation of every matrix leaves the second moment's spectrum unchanged.
    rotation = np.linalg.qr(np.random.default_rng(0).standard_normal((8, 8)))[0]
    pipe = make_pipeline(
        FunctionTransformer(lambda X: X @ rotation), PowerIterationPCA(n_iter=40, random_state=0)
    )
    pipe.fit(task2)
    assert pipe.score(task2) > 0.999
    pred = pipe.predict(task2)
    exact = ExactPCA().fit(task2).predict(task2) @ rotation
    np.testing.assert_allclose(_cos(pred, exact), 1.0, atol=1e-4)


@pytest.mark.parametrize("estimator", [ExactPCA(n_components=2), PowerIterationPCA(7, shift=0.5)])
def test_clone_get_params_and_pickle(estimator, task2):
    cloned = clone(estimator)
    assert cloned.get_params() == estimator.get_params()
    with pytest.raises(NotFittedError):
        cloned.predict(task2)
    estimator.set_params(random_state=0) if "random_state" in estimator.get_params() else None
    fitted = estimator.fit(task2)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(task2), fitted.predict(task2))
    assert restored.n_features_in_ == 8


def test_tags_declare_3d_input():
    tags = ExactPCA().__sklearn_tags__()
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    assert not tags.target_tags.required


def test_feature_count_checked_at_predict():
    est = ExactPCA().fit(make_sphere_matrices(3, n_features=8, random_state=0))
    with pytest.raises(ValueError, match="X has 5 features, but ExactPCA is expecting 8"):
        est.predict(make_sphere_matrices(3, n_features=5, random_state=0))
