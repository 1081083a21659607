"""Diagnostics of the learned algorithm, deflation, and their exact references."""

import numpy as np
import pytest

from skloop import ExactPCA, LoopedTransformerPCA, PowerIterationPCA
from skloop.datasets import (
    load_digit_matrices,
    load_wine_matrices,
    make_spectrum_matrices,
    make_sphere_matrices,
)
from skloop.metrics import angular_error
from skloop.pca._diagnostics import growth_exponent, measured_contraction
from skloop.pca._model import power_method_weights

D = 8


def _angle(a, b):
    """Sign-invariant angle in degrees between rows of a and b (unit vectors)."""
    cos = np.abs(np.sum(a * b, axis=-1))
    sin = np.linalg.norm(a - np.sum(a * b, axis=-1, keepdims=True) * b, axis=-1)
    return np.degrees(np.arctan2(np.minimum(sin, np.linalg.norm(a + b, axis=-1)), cos))


@pytest.fixture(scope="module")
def task1():
    return make_sphere_matrices(2000, n_points=16, n_features=D, random_state=0)


@pytest.fixture(scope="module")
def trained(task1):
    return LoopedTransformerPCA(objective="layerwise", max_epochs=20, dtype="float64",
                                random_state=0).fit(task1)


@pytest.fixture(scope="module")
def hand_set(task1):
    model = LoopedTransformerPCA(objective="end_to_end", n_loops=3, max_epochs=1,
                                 dtype="float64", random_state=3).fit(task1[:64])
    return model.with_weights(*(w.numpy() for w in power_method_weights(D, 2.0, 1.5)))


def test_structure_report_of_a_hand_set_power_method_model(hand_set):
    report = hand_set.structure_report()
    assert report["rho"] == pytest.approx(3.0)
    assert (report["u"], report["w"]) == pytest.approx((2.0, 1.5))
    for key in ("inactive_ratio", "inactive_max", "W_pv21_diag_spread", "W_pv21_offdiag_ratio",
                "W_kq12_diag_spread", "W_kq12_offdiag_ratio"):
        assert report[key] == 0.0, key
    assert report["predicted_growth_exponent"] == 0.5


def test_structure_report_sees_off_block_mass(hand_set):
    W_pv, W_kq = hand_set.W_pv_.copy(), hand_set.W_kq_.copy()
    W_kq[0, 0] = 0.3  # an inactive entry
    W_pv[D, D + 1] = 0.0  # untouched
    W_pv[D + 1, 0] = 0.2  # off-diagonal of the active block
    report = hand_set.with_weights(W_pv, W_kq).structure_report()
    assert report["inactive_max"] == pytest.approx(0.3)
    assert report["inactive_ratio"] > 0.0
    assert report["W_pv21_offdiag_ratio"] == pytest.approx(0.2 / np.sqrt(D * 4.0))


def test_growth_exponent_of_a_power_law_and_of_training(trained):
    t = np.arange(1, 41) * 16.0
    assert growth_exponent(t, 3 * t ** (1 / 3)) == pytest.approx(1 / 3)
    assert np.isnan(growth_exponent(t[:4], t[:4]))
    report = trained.structure_report()
    # LN layerwise: ρ grows without bound; the paper's 1/3 is asymptotic (math note §1.11).
    assert 0.1 < report["growth_exponent"] < 1.0
    assert report["predicted_growth_exponent"] == pytest.approx(1 / 3)
    assert report["inactive_max"] == 0.0
    assert report["W_kq12_offdiag_ratio"] < 0.05  # the LN layerwise manifold is stable


def test_project_structure_is_the_shifted_power_method_and_removes_the_floor():
    X = load_wine_matrices(1000, random_state=0)
    X_test = load_wine_matrices(200, random_state=1)
    model = LoopedTransformerPCA(objective="layerwise", max_epochs=10, inference_loops=100,
                                 dtype="float64", random_state=0).fit(X)
    projected = model.project_structure()
    assert projected.rho_ == pytest.approx(model.rho_)
    assert projected.structure_report()["inactive_ratio"] == 0.0
    power = PowerIterationPCA(100, shift=model.rho_, random_state=0).fit(X_test)
    np.testing.assert_allclose(projected.predict(X_test), power.predict(X_test), atol=1e-10)
    floor = np.median(angular_error(X_test, model.predict(X_test)))
    assert floor > 0.05
    assert np.median(angular_error(X_test, projected.predict(X_test))) < 1e-6
    # The original keeps its anisotropic active blocks.
    assert model.structure_report()["W_kq12_offdiag_ratio"] > 0.0
    assert not np.array_equal(model.W_kq_, projected.W_kq_)


def test_loop_trajectory_against_the_power_methods(hand_set):
    X = make_spectrum_matrices(100, n_points=16, n_features=D, random_state=2)
    trajectory = hand_set.loop_trajectory(X, max_loops=12)
    assert trajectory["errors"].shape == (12, 100)
    assert trajectory["components"].shape == (12, 100, D)
    np.testing.assert_allclose(trajectory["errors"], trajectory["shifted_errors"], atol=1e-8)
    for k in (1, 6, 12):
        power = PowerIterationPCA(k, random_state=3).fit(X).predict(X)
        np.testing.assert_allclose(trajectory["power_errors"][k - 1], angular_error(X, power),
                                   atol=1e-8)
        hand_set.set_params(inference_loops=k)
        np.testing.assert_allclose(trajectory["components"][k - 1], hand_set.predict(X),
                                   atol=1e-12)


def test_contraction_factor_matches_the_measured_decay_on_task2():
    X = make_spectrum_matrices(2000, n_points=16, n_features=D, random_state=0)
    X_test = make_spectrum_matrices(300, n_points=16, n_features=D, random_state=5)
    model = LoopedTransformerPCA(objective="layerwise", lr=16.0, max_epochs=40,
                                 random_state=0).fit(X)
    for candidate in (model, model.project_structure()):
        factors = candidate.contraction_factor(X_test)
        assert factors["measured_median"] == pytest.approx(factors["predicted_median"], rel=0.1)
    exact = model.project_structure().contraction_factor(X_test)
    assert exact["measured_median"] == pytest.approx(exact["predicted_median"], rel=0.01)
    assert factors["predicted"].shape == (300,)
    with pytest.raises(ValueError, match="increasing"):
        model.contraction_factor(X_test, loops=(5, 5))


def test_measured_contraction_ignores_converged_matrices():
    rate = measured_contraction([10.0, 10.0], [1e-12, 1.0], 10)
    assert np.isnan(rate[0])
    assert rate[1] == pytest.approx((np.tan(np.radians(1.0)) / np.tan(np.radians(10.0))) ** 0.1)


@pytest.mark.parametrize("deflation", ["query", "points"])
def test_deflation_recovers_the_top3_eigenvectors_of_task2(trained, deflation):
    X = make_spectrum_matrices(200, n_points=24, n_features=D,
                               multiplicities=[10, 6, 3, 1, 1, 1, 1, 1], random_state=0)
    exact = ExactPCA(n_components=3).fit(X).predict(X)
    model = trained.project_structure().set_params(n_components=3, inference_loops=60,
                                                   deflation=deflation)
    components = model.predict(X)
    assert components.shape == (200, 3, D)
    np.testing.assert_allclose(np.einsum("mij,mkj->mik", components, components),
                               np.broadcast_to(np.eye(3), (200, 3, 3)), atol=1e-10)
    for j in range(3):
        assert np.max(_angle(components[:, j], exact[:, j])) < 1.0, j
    assert model.transform(X).shape == (200, 24, 3)


def test_query_deflation_is_robust_where_point_deflation_is_not(trained):
    # On general data point deflation reweights the points (and an inexact first component
    # leaves short residuals that the rescaling blows up); query deflation stays on the
    # eigenvectors, up to the trained model's own error floor.
    X = load_digit_matrices(200, random_state=0)
    exact = ExactPCA(n_components=2).fit(X).predict(X)
    errors = {}
    for deflation in ("query", "points"):
        model = trained.set_params(n_components=2, inference_loops=60, deflation=deflation)
        errors[deflation] = np.median(_angle(model.predict(X)[:, 1], exact[:, 1]))
    trained.set_params(n_components=1, inference_loops=None, deflation="query")
    assert errors["query"] < 2.0
    assert errors["points"] > 5.0
