"""PerMatrix: scikit-learn transformers on the points of each matrix, in skloop pipelines."""

import pickle
import time

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler
from sklearn.utils import estimator_checks as checks
from sklearn.utils._param_validation import InvalidParameterError

from skloop import ExactPCA, LoopedTransformerPCA, PowerIterationPCA
from skloop.datasets import make_sphere_matrices
from skloop.preprocessing import PerMatrix


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 9, 4)) * [1.0, 2.0, 3.0, 4.0] + [0.0, 1.0, -2.0, 5.0]


@pytest.fixture
def ragged():
    rng = np.random.default_rng(1)
    return [rng.normal(size=(k, 3)) + k for k in (5, 9, 2, 7)]


def test_each_equals_a_hand_loop(X):
    out = PerMatrix(StandardScaler()).fit(X).transform(X)
    expected = np.stack([StandardScaler().fit_transform(m) for m in X])
    assert out.shape == X.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, expected)
    # New matrices at transform time use their own statistics, not those seen in fit.
    np.testing.assert_allclose(PerMatrix(StandardScaler()).fit(X[:2]).transform(X), expected)


def test_all_equals_one_scaler_on_all_points(X):
    model = PerMatrix(StandardScaler(), fit_on="all").fit(X)
    scaler = StandardScaler().fit(X.reshape(-1, X.shape[2]))
    np.testing.assert_allclose(model.transformer_.mean_, scaler.mean_)
    expected = scaler.transform(X.reshape(-1, 4)).reshape(X.shape)
    np.testing.assert_allclose(model.transform(X), expected)
    np.testing.assert_allclose(model.transform(X[:2]), model.transform(X)[:2])
    assert model.n_features_in_ == 4 and model.n_features_out_ == 4


@pytest.mark.parametrize("fit_on", ["each", "all"])
def test_ragged_in_ragged_out_padding_never_seen(ragged, fit_on):
    seen = []

    def record(points):
        seen.append(len(points))
        return points * 2.0

    model = PerMatrix(FunctionTransformer(record), fit_on=fit_on).fit(ragged)
    seen.clear()
    out = model.transform(ragged)
    assert isinstance(out, list) and [m.shape for m in out] == [m.shape for m in ragged]
    for got, matrix in zip(out, ragged, strict=True):
        np.testing.assert_allclose(got, 2 * matrix)
    # only real points reach the transformer: per matrix, or all of them at once
    assert seen == ([5, 9, 2, 7] if fit_on == "each" else [23])


def test_ragged_standard_scaler_all(ragged):
    out = PerMatrix(StandardScaler(), fit_on="all").fit_transform(ragged)
    scaler = StandardScaler().fit(np.concatenate(ragged))
    for got, matrix in zip(out, ragged, strict=True):
        np.testing.assert_allclose(got, scaler.transform(matrix))


def test_output_feature_count_may_change(X):
    model = PerMatrix(PCA(2), fit_on="all").fit(X)
    assert model.transform(X).shape == (6, 9, 2) and model.n_features_out_ == 2
    assert list(model.get_feature_names_out()) == ["pca0", "pca1"]
    each = PerMatrix(PCA(3)).fit(X)
    assert each.transform(X).shape == (6, 9, 3)
    assert list(each.get_feature_names_out()) == ["permatrix0", "permatrix1", "permatrix2"]


def test_feature_names_out(X):
    assert list(PerMatrix(StandardScaler()).fit(X).get_feature_names_out()) == [
        "x0", "x1", "x2", "x3"]
    names = ["a", "b", "c", "d"]
    for fit_on in ("each", "all"):
        model = PerMatrix(StandardScaler(), fit_on=fit_on).fit(X)
        assert list(model.get_feature_names_out(names)) == names
    no_names = PerMatrix(FunctionTransformer(np.abs), fit_on="all").fit(X)
    assert list(no_names.get_feature_names_out()) == ["x0", "x1", "x2", "x3"]
    with pytest.raises(ValueError, match="input_features"):
        PerMatrix(StandardScaler()).fit(X).get_feature_names_out(["a"])
    with pytest.raises(NotFittedError):
        PerMatrix(StandardScaler()).get_feature_names_out()


@pytest.mark.parametrize("cls", [ExactPCA, PowerIterationPCA, LoopedTransformerPCA])
def test_pca_feature_names_out(cls):
    prefix = cls.__name__.lower()
    with pytest.raises(NotFittedError):
        cls().get_feature_names_out()
    X = make_sphere_matrices(20, n_points=8, n_features=4, random_state=0)
    params = {"max_epochs": 1, "random_state": 0} if cls is LoopedTransformerPCA else {}
    model = cls(n_components=2, **params).fit(X)
    names = model.get_feature_names_out()
    assert list(names) == [f"{prefix}0", f"{prefix}1"]
    assert len(names) == model.transform(X).shape[2]


@pytest.mark.parametrize("estimator", [PerMatrix(StandardScaler()), ExactPCA(),
                                       make_pipeline(PerMatrix(Normalizer()), ExactPCA())])
@pytest.mark.parametrize("container", ["pandas", "polars"])
def test_set_output_refuses_dataframes(estimator, container):
    with pytest.raises(ValueError, match="3-D output cannot be a DataFrame"):
        clone(estimator).set_output(transform=container)
    assert clone(estimator).set_output(transform="default") is not None
    assert clone(estimator).set_output() is not None


def test_global_pandas_output_leaves_batches_alone(X):
    pytest.importorskip("pandas")
    pipe = make_pipeline(PerMatrix(StandardScaler()), ExactPCA(n_components=2))
    with sklearn.config_context(transform_output="pandas"):
        for fit_on in ("each", "all"):
            out = PerMatrix(StandardScaler(), fit_on=fit_on).fit_transform(X)
            assert isinstance(out, np.ndarray) and out.shape == X.shape
        assert pipe.fit(X).transform(X).shape == (6, 9, 2)


def test_pipeline_with_looped_transformer_and_grid_search():
    X = make_sphere_matrices(80, n_points=8, n_features=4, random_state=0)
    pipe = make_pipeline(PerMatrix(StandardScaler()),
                         LoopedTransformerPCA(max_epochs=2, random_state=0))
    pipe.fit(X)
    assert pipe.predict(X).shape == (80, 4)
    assert 0.0 <= pipe.score(X) <= 1.0
    assert pipe.transform(X).shape == (80, 8, 1)
    search = GridSearchCV(pipe, {"loopedtransformerpca__inference_loops": [1, 3]}, cv=2)
    search.fit(X)
    assert search.best_params_["loopedtransformerpca__inference_loops"] in (1, 3)
    assert search.predict(X[:5]).shape == (5, 4)


def test_pipeline_with_exact_pca_matches_manual_steps(ragged):
    X = make_sphere_matrices(30, n_points=10, n_features=5, random_state=2)
    pipe = make_pipeline(PerMatrix(StandardScaler()), ExactPCA()).fit(X)
    manual = ExactPCA().fit(PerMatrix(StandardScaler()).fit_transform(X))
    standardized = np.stack([StandardScaler().fit_transform(m) for m in X])
    np.testing.assert_allclose(pipe.predict(X), manual.predict(standardized))
    assert pipe.score(X) == pytest.approx(1.0)
    ragged_pipe = make_pipeline(PerMatrix(StandardScaler(), fit_on="all"), ExactPCA())
    assert ragged_pipe.fit(ragged).predict(ragged).shape == (4, 3)
    assert [m.shape for m in ragged_pipe.transform(ragged)] == [(k, 1) for k in (5, 9, 2, 7)]


@pytest.mark.parametrize("fit_on", ["each", "all"])
def test_clone_and_pickle(X, fit_on):
    model = PerMatrix(StandardScaler(with_mean=False), fit_on=fit_on)
    twin = clone(model)
    assert twin.get_params()["transformer__with_mean"] is False
    assert twin.transformer is not model.transformer
    model.fit(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).transform(X),
                                  model.transform(X))
    assert not hasattr(clone(model), "n_features_in_")


@pytest.mark.parametrize("params, match", [
    ({"transformer": "scaler"}, "transformer"),
    ({"transformer": StandardScaler(), "fit_on": "some"}, "fit_on"),
    ({"transformer": ExactPCA}, "transformer"),
])
def test_bad_params(X, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        PerMatrix(**params).fit(X)


def test_bad_input_and_state(X):
    with pytest.raises(ValueError, match="3-D"):
        PerMatrix(StandardScaler()).fit(X[0])
    with pytest.raises(NotFittedError):
        PerMatrix(StandardScaler(), fit_on="all").transform(X)
    with pytest.raises(NotFittedError):
        PerMatrix(StandardScaler()).transform(X)
    model = PerMatrix(StandardScaler(), fit_on="all").fit(X)
    with pytest.raises(ValueError, match="expecting 4 features"):
        model.transform(X[:, :, :3])
    with pytest.raises(NotFittedError, match="fit_on='all'"):
        PerMatrix(StandardScaler()).fit(X).set_params(fit_on="all").transform(X)
    before = model.transformer_
    with pytest.raises(ValueError):
        model.fit(np.full((2, 3, 4), np.nan))
    assert model.transformer_ is before  # a failed fit keeps the fitted state


@pytest.mark.parametrize("fit_on", ["each", "all"])
def test_transformer_that_changes_rows_is_refused(X, fit_on):
    drop_row = FunctionTransformer(lambda points: points[1:])
    with pytest.raises(ValueError, match="one output row"):
        PerMatrix(drop_row, fit_on=fit_on).fit_transform(X)


def test_sparse_output_is_densified(X):
    from sklearn.preprocessing import OneHotEncoder

    codes = (X > 0).astype(float)
    out = PerMatrix(OneHotEncoder(), fit_on="all").fit_transform(codes)
    assert isinstance(out, np.ndarray) and out.shape == (6, 9, 8)
    np.testing.assert_allclose(out.sum(axis=2), 4.0)


@pytest.mark.parametrize("check", [
    checks.check_no_attributes_set_in_init,
    checks.check_get_params_invariance,
    checks.check_set_params,
    checks.check_estimator_repr,
    checks.check_estimator_cloneable,
    checks.check_mixin_order,
], ids=lambda c: c.__name__)
def test_sklearn_data_free_checks(check):
    check("PerMatrix", PerMatrix(StandardScaler()))


@pytest.mark.parametrize("estimator", [PerMatrix(StandardScaler()), ExactPCA()])
def test_tags_declare_3d_input(estimator):
    tags = estimator.__sklearn_tags__()
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    assert not tags.target_tags.required


def test_each_is_fast_enough():
    X = make_sphere_matrices(1000, n_points=16, n_features=8, random_state=0)
    start = time.perf_counter()
    PerMatrix(StandardScaler()).fit_transform(X)
    assert time.perf_counter() - start < 5.0  # ~0.3 s measured
