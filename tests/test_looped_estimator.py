"""LoopedTransformerPCA: training behaviour against the paper's closed forms, and the API."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import EarlyStopping

from skloop import LoopedTransformerPCA, PowerIterationPCA
from skloop.datasets import load_wine_matrices, make_spectrum_matrices, make_sphere_matrices
from skloop.metrics import angular_error, leading_subspace
from skloop.pca._model import power_method_weights

D = 8


@pytest.fixture(scope="module")
def task1():
    return make_sphere_matrices(2000, n_points=16, n_features=D, random_state=0)


@pytest.fixture(scope="module")
def task2():
    return make_spectrum_matrices(2000, n_points=16, n_features=D, random_state=0)


@pytest.fixture(scope="module")
def task2_test():
    return make_spectrum_matrices(500, n_points=16, n_features=D, random_state=1)


def _inactive_mass(model):
    """Largest |entry| outside the diagonals of W_pv[21] and W_kq[12] ... and their blocks."""
    W_pv, W_kq = model.W_pv_.copy(), model.W_kq_.copy()
    W_pv[D:, :D] = 0.0
    W_kq[:D, D:] = 0.0
    return max(np.abs(W_pv).max(), np.abs(W_kq).max())


@pytest.mark.parametrize("normalization", ["rms", None])
def test_power_method_weights_predict_exactly_the_shifted_power_iteration(normalization):
    X = make_spectrum_matrices(300, n_points=16, n_features=D, random_state=3)
    model = LoopedTransformerPCA(n_loops=4, normalization=normalization, max_epochs=1,
                                 objective="end_to_end", dtype="float64",
                                 random_state=7).fit(X)
    rho = 2.5
    model = model.with_weights(*(w.numpy() for w in power_method_weights(D, 1.25, 2.0)))
    assert model.rho_ == pytest.approx(rho)
    power = PowerIterationPCA(n_iter=4, shift=rho, random_state=7).fit(X)
    np.testing.assert_allclose(model.predict(X), power.predict(X), atol=1e-12)
    model.set_params(inference_loops=9)
    np.testing.assert_allclose(model.predict(X), power.set_params(n_iter=9).predict(X),
                               atol=1e-12)


def test_float32_default_matches_float64_to_float32_accuracy():
    # Same init (drawn in float64, then cast), same batches: the float32 run differs only by
    # rounding, ~1e-7 per step relative; 5 epochs of SGD keep ρ within 1e-4. Predictions with
    # hand-set power-method weights: 9 loops of float32 mat-vecs, ~1e-6 per entry.
    X = make_spectrum_matrices(300, n_points=16, n_features=D, random_state=3)
    single = LoopedTransformerPCA(objective="layerwise", max_epochs=5, random_state=0).fit(X)
    double = clone(single).set_params(dtype="float64").fit(X)
    assert single.net_.module_.W_pv.dtype == torch.float32
    assert single.rho_ == pytest.approx(double.rho_, rel=1e-4)
    weights = [w.numpy() for w in power_method_weights(D, 1.25, 2.0)]
    predicted = single.set_params(inference_loops=9).with_weights(*weights).predict(X)
    power = PowerIterationPCA(n_iter=9, shift=2.5, random_state=0).fit(X).predict(X)
    assert predicted.dtype == np.float64
    np.testing.assert_allclose(predicted, power, atol=2e-5)
    assert np.max(np.abs(predicted - power)) > 1e-9  # float32 really computed it


@pytest.mark.parametrize(
    "params",
    [dict(objective="end_to_end"), dict(objective="layerwise"),
     dict(objective="layerwise", normalization=None, target="unnormalized"),
     dict(objective="layerwise", normalization=None, target="normalized")],
    ids=["end_to_end", "layerwise-LN", "layerwise-noLN-unnormalized", "layerwise-noLN-normalized"],
)
def test_inactive_blocks_stay_exactly_zero_from_the_paper_init(params, task1):
    model = LoopedTransformerPCA(max_epochs=5, random_state=0, **params).fit(task1[:512])
    assert _inactive_mass(model) == 0.0
    assert model.rho_ > 0


def test_layerwise_ln_loss_keeps_falling_while_rho_grows(task1):
    model = LoopedTransformerPCA(objective="layerwise", max_epochs=30, random_state=0).fit(task1)
    loss = np.array(model.history_[:, "train_loss"])
    rho = np.array(model.history_[:, "rho"])
    assert np.all(np.diff(rho) > 0)  # no finite minimizer: ρ grows every epoch
    assert loss[-1] < loss[9] < loss[0]
    assert np.all(np.diff(loss[5:]) < 0)  # epoch means keep decreasing after the start
    # Thm 4.3: the loss decays like Υ_2/ρ², so loss·ρ² settles (Υ_2 ≈ 17 on Task 1).
    assert 5 < loss[-1] * rho[-1] ** 2 < 40


def test_no_ln_unnormalized_converges_to_the_closed_form_plateau(task1):
    # Task 1, d = 8, n = 16: ρ* = n - nd/(n+d-1) = 10.4348, L* = (d-1)/(n+d-1) = 0.30435.
    model = LoopedTransformerPCA(objective="layerwise", normalization=None,
                                 target="unnormalized", max_epochs=20, random_state=0).fit(task1)
    assert model.rho_ == pytest.approx(16 - 16 * 8 / 23, rel=0.03)
    assert model.history_[-1, "train_loss"] == pytest.approx(7 / 23, rel=0.04)
    assert np.ptp(model.history_[-5:, "rho"]) < 0.05 * model.rho_  # a fixed point, not growth


def test_no_ln_normalized_plateau_is_strictly_positive(task2):
    # L*_N = 0.049 on Task 2 (Monte Carlo, math note §10.2): the layer cannot fit the step.
    model = LoopedTransformerPCA(objective="layerwise", normalization=None, max_epochs=20,
                                 random_state=0).fit(task2)
    loss = model.history_[:, "train_loss"]
    assert loss[-1] == pytest.approx(0.049, rel=0.15)
    assert abs(loss[-1] - loss[-5]) < 0.01 * loss[-1]


def test_ln_layerwise_loops_contract_at_the_predicted_rate_and_beat_no_ln(task2, task2_test):
    subspace = leading_subspace(task2_test)
    ln = LoopedTransformerPCA(objective="layerwise", lr=16.0, max_epochs=40,
                              random_state=0).fit(task2)
    no_ln = LoopedTransformerPCA(objective="layerwise", normalization=None,
                                 target="unnormalized", max_epochs=20, random_state=0).fit(task2)

    def error(model, k):
        return angular_error(subspace, model.set_params(inference_loops=k).predict(task2_test))

    # Per-loop factor between K = 5 and 15 vs (1 + ρλ2)/(1 + ρλ1) at the learned ρ (0.73 here).
    measured = np.median((np.tan(np.radians(error(ln, 15)))
                          / np.tan(np.radians(error(ln, 5)))) ** (1 / 10))
    predicted = np.median((1 + ln.rho_ * subspace.eigenvalues[:, 1])
                          / (1 + ln.rho_ * subspace.eigenvalues[:, 0]))
    assert measured == pytest.approx(predicted, rel=0.05)
    assert predicted < 0.76
    for k in (5, 10, 20, 40):
        assert np.median(error(ln, k)) < np.median(error(no_ln, k)), k


def test_finite_sample_model_has_an_error_floor_that_the_power_method_lacks():
    # Active blocks learned by SGD on finite, anisotropic data are not exactly multiples of I:
    # the looped map's fixed point is slightly off the top eigenvector.
    X = load_wine_matrices(1000, random_state=0)
    X_test = load_wine_matrices(300, random_state=1)
    model = LoopedTransformerPCA(objective="layerwise", max_epochs=20, random_state=0).fit(X)
    floor = np.median(angular_error(X_test, model.set_params(inference_loops=100).predict(X_test)))
    at_50 = np.median(angular_error(X_test, model.set_params(inference_loops=50).predict(X_test)))
    power = PowerIterationPCA(100, shift=model.rho_, random_state=0).fit(X_test)
    assert np.median(angular_error(X_test, power.predict(X_test))) < 1e-8
    assert 0.05 < floor < 5.0  # measured ≈ 0.6° at ρ ≈ 100
    assert at_50 == pytest.approx(floor, rel=1e-3)  # converged: a floor, not slow convergence


def test_random_state_makes_fit_and_predict_bit_reproducible(task1):
    params = dict(max_epochs=3, random_state=11, online=True, init="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = LoopedTransformerPCA(**params).fit(task1[:300])
        b = LoopedTransformerPCA(**params).fit(task1[:300])
    np.testing.assert_array_equal(a.W_kq_, b.W_kq_)
    np.testing.assert_array_equal(a.predict(task1[:50]), b.predict(task1[:50]))
    assert a.history_[:, "train_loss"] == b.history_[:, "train_loss"]


def test_online_queries_change_training(task1):
    fixed = LoopedTransformerPCA(max_epochs=3, random_state=0).fit(task1[:300])
    online = LoopedTransformerPCA(max_epochs=3, random_state=0, online=True).fit(task1[:300])
    assert fixed.history_[0, "train_loss"] == online.history_[0, "train_loss"]
    assert fixed.history_[-1, "train_loss"] != online.history_[-1, "train_loss"]


def test_clone_get_params_and_pickle_round_trip(task1):
    model = LoopedTransformerPCA(n_loops=2, max_epochs=2, random_state=0)
    assert clone(model).get_params() == model.get_params()
    model.fit(task1[:200])
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(task1[:20]), model.predict(task1[:20]))


def test_model_trained_on_cuda_unpickles_on_cpu(task1):
    # skorch stores the device; a net pickled on CUDA is mapped to the CPU when CUDA is absent.
    model = LoopedTransformerPCA(max_epochs=1, random_state=0).fit(task1[:200])
    expected = model.predict(task1[:20])
    model.net_.device = "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = pickle.loads(pickle.dumps(model))
    if not __import__("torch").cuda.is_available():
        assert str(restored.net_.device) == "cpu"
    np.testing.assert_allclose(restored.predict(task1[:20]), expected, atol=1e-12)


def test_history_records_loss_and_active_scalars(task1):
    model = LoopedTransformerPCA(max_epochs=4, random_state=0).fit(task1[:256])
    assert len(model.history_) == 4
    for key in ("train_loss", "u", "w", "rho"):
        assert len(model.history_[:, key]) == 4
    assert model.history_[-1, "rho"] == pytest.approx(model.rho_)
    assert model.u_ * model.w_ == pytest.approx(model.rho_)
    assert model.W_pv_.shape == model.W_kq_.shape == (2 * D, 2 * D)


def test_grid_search_cross_val_and_pipeline_without_y(task1):
    grid = GridSearchCV(
        LoopedTransformerPCA(objective="layerwise", max_epochs=8, random_state=0),
        {"inference_loops": [1, 10], "normalization": ["rms", None]}, cv=2,
    ).fit(task1[:512])
    assert grid.best_params_["inference_loops"] == 10
    grid = GridSearchCV(LoopedTransformerPCA(max_epochs=2, random_state=0),
                        {"n_loops": [1, 2], "normalization": ["rms", None]}, cv=2)
    grid.fit(task1[:256])
    assert set(grid.best_params_) == {"n_loops", "normalization"}
    scores = cross_val_score(LoopedTransformerPCA(max_epochs=2, random_state=0), task1[:256], cv=2)
    assert np.all((scores > 0) & (scores <= 1))
    pipe = make_pipeline(FunctionTransformer(lambda X: -X),
                         LoopedTransformerPCA(max_epochs=2, random_state=0)).fit(task1[:256])
    assert pipe.predict(task1[:10]).shape == (10, D)
    assert pipe.transform(task1[:10]).shape == (10, 16, 1)


def test_transform_score_and_sign_convention(task1):
    model = LoopedTransformerPCA(objective="layerwise", max_epochs=10, inference_loops=20,
                                 random_state=0).fit(task1)
    components = model.predict(task1[:100])
    np.testing.assert_allclose(np.linalg.norm(components, axis=1), 1.0, atol=1e-12)
    largest = np.take_along_axis(components, np.abs(components).argmax(1)[:, None], 1)
    assert np.all(largest > 0)
    np.testing.assert_allclose(model.transform(task1[:100])[:, :, 0],
                               np.einsum("mpi,mi->mp", task1[:100], components), atol=1e-12)
    # Mean cos² after 20 loops, next to the shifted power method with the learned ρ (Task 1
    # has small eigengaps in its tail, so neither is at 1; measured 0.929 vs 0.949, the gap
    # being the finite-sample error floor).
    power = PowerIterationPCA(20, shift=model.rho_, random_state=0).fit(task1)
    assert model.score(task1[:100]) > 0.9
    assert power.score(task1[:100]) - 0.05 < model.score(task1[:100]) <= power.score(task1[:100])


def test_scalar_parametrization_predicts_at_any_feature_count(task1):
    model = LoopedTransformerPCA(parametrization="scalar", objective="layerwise", max_epochs=10,
                                 inference_loops=30, dtype="float64", random_state=0).fit(task1)
    other = make_spectrum_matrices(100, n_points=24, n_features=12, random_state=0)
    assert model.predict(other).shape == (100, 12)
    power = PowerIterationPCA(30, shift=model.rho_, random_state=0).fit(other)
    np.testing.assert_allclose(model.predict(other), power.predict(other), atol=1e-10)
    full = LoopedTransformerPCA(max_epochs=1, random_state=0).fit(task1[:100])
    with pytest.raises(ValueError, match="expecting 8 features"):
        full.predict(other)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_scalar_parametrization_follows_the_full_model(task1, optimizer):
    # SGD: the scalar model's step is lr/d, so both walk the same (u, w) path from the paper
    # init (exactly in population; SGD on Task 1 keeps the full blocks nearly isotropic).
    # Adam's step does not scale with the gradient: no correction (it was d times too slow).
    kwargs = dict(objective="layerwise", max_epochs=5, optimizer=optimizer, random_state=0)
    full = LoopedTransformerPCA(**kwargs).fit(task1)
    scalar = LoopedTransformerPCA(parametrization="scalar", **kwargs).fit(task1)
    assert scalar.rho_ == pytest.approx(full.rho_, rel=0.1)


def test_verbose_prints_the_epoch_log(task1, capsys):
    LoopedTransformerPCA(max_epochs=2, verbose=1, random_state=0).fit(task1[:256])
    out = capsys.readouterr()
    assert "train_loss" in out.out


def test_user_callbacks_early_stopping(task1):
    model = LoopedTransformerPCA(
        objective="layerwise", normalization=None, target="unnormalized", max_epochs=200,
        callbacks=[EarlyStopping(monitor="train_loss", patience=3, threshold=1e-4)],
        random_state=0,
    ).fit(task1[:512])
    assert len(model.history_) < 200


def test_divergence_stops_with_a_clear_message(task1):
    model = LoopedTransformerPCA(objective="layerwise", normalization=None,
                                 target="unnormalized", lr=1e4, max_epochs=5, random_state=0)
    with pytest.raises(FloatingPointError, match="diverged.*lr"):
        model.fit(task1[:256])


BAD_PARAMS = [
    (dict(n_loops=0), ValueError, "'n_loops' parameter"),
    (dict(inference_loops=0), ValueError, "'inference_loops' parameter"),
    (dict(normalization="layer"), ValueError, "'normalization' parameter"),
    (dict(objective="supervised"), ValueError, "'objective' parameter"),
    (dict(objective="layerwise", target="unnormalized"), ValueError, "needs normalization=None"),
    (dict(init="xavier"), ValueError, "'init' parameter"),
    (dict(parametrization="diag"), ValueError, "'parametrization' parameter"),
    (dict(lr=-0.1), ValueError, "'lr' parameter"),
    (dict(lr="fast"), ValueError, "'lr' parameter"),
    (dict(batch_size=0), ValueError, "'batch_size' parameter"),
    (dict(max_epochs=1.5), TypeError, "'max_epochs' parameter"),
    (dict(optimizer="lbfgs"), ValueError, "'optimizer' parameter"),
    (dict(n_components=0), ValueError, "'n_components' parameter"),
    (dict(n_components=9), ValueError, "n_components=9 must be <= n_features=8"),
    (dict(online="yes"), TypeError, "'online' parameter"),
    (dict(init_scale=0.0), ValueError, "'init_scale' parameter"),
    (dict(n_threads=0), ValueError, "'n_threads' parameter"),
]


@pytest.mark.parametrize("params, error, message", BAD_PARAMS, ids=[m for *_, m in BAD_PARAMS])
def test_bad_hyper_parameters(params, error, message, task1):
    with pytest.raises(error, match=message):
        LoopedTransformerPCA(**params).fit(task1[:10])


def test_random_init_warns_it_is_outside_the_theory(task1):
    with pytest.warns(UserWarning, match="outside the paper's theory"):
        LoopedTransformerPCA(init="random", max_epochs=1, random_state=0).fit(task1[:50])


def test_bad_input_is_rejected_by_the_shared_validation(task1):
    model = LoopedTransformerPCA(max_epochs=1, random_state=0).fit(task1[:50])
    bad = task1[:5].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict(bad)
    with pytest.raises(ValueError, match="3-D array"):
        model.fit(task1[0])


def test_predict_in_chunks_equals_one_pass(monkeypatch):
    # Large batches run in chunks of PREDICT_BUDGET data entries; rows are independent, so
    # chunking changes at most BLAS's blocking (float32 rounding, ~1e-7).
    import skloop._core.estimator as estimator_module

    X = make_spectrum_matrices(300, n_points=16, n_features=D, random_state=3)
    model = LoopedTransformerPCA(objective="layerwise", max_epochs=2, n_components=2,
                                 random_state=0).fit(X)
    whole = model.predict(X)
    monkeypatch.setattr(estimator_module, "PREDICT_BUDGET", 16 * D * 7)  # 7 rows per pass
    np.testing.assert_allclose(model.predict(X), whole, rtol=0, atol=1e-6)


def test_weight_snapshots_take_any_iterable_of_epochs(task1):
    from skloop.pca import WeightSnapshots

    snapshots = WeightSnapshots(epochs=(e for e in (1, 3, 4)))
    model = LoopedTransformerPCA(max_epochs=4, callbacks=[snapshots], random_state=0)
    model.fit(task1[:256])
    assert [s["epoch"] for s in snapshots.snapshots_] == [1, 3, 4]
    model.fit(task1[:256])  # a second fit sees the same epochs: the generator was read once
    assert [s["epoch"] for s in snapshots.snapshots_] == [1, 3, 4]
