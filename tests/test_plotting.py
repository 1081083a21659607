import matplotlib.pyplot as plt
import numpy as np
import pytest

from skloop import LoopedTransformerPCA
from skloop.datasets import make_sphere_matrices
from skloop.plotting import LoopErrorDisplay, TrainingCurveDisplay, WeightsDisplay


@pytest.fixture(scope="module")
def fitted():
    X = make_sphere_matrices(300, n_points=12, n_features=4, random_state=0)
    model = LoopedTransformerPCA(objective="layerwise", max_epochs=5, random_state=0).fit(X)
    return model, X[:50]


def test_loop_error_display_holds_the_trajectory_medians(fitted):
    model, X = fitted
    display = LoopErrorDisplay.from_estimator(model, X, max_loops=8)
    trajectory = model.loop_trajectory(X, max_loops=8)
    np.testing.assert_allclose(display.errors, np.median(trajectory["errors"], axis=1))
    np.testing.assert_allclose(display.power_errors, np.median(trajectory["power_errors"], 1))
    assert len(display.ax_.get_lines()) == 3
    assert display.ax_.get_yscale() == "log"
    plt.close("all")


def test_weights_display_draws_both_matrices(fitted):
    model, _ = fitted
    display = WeightsDisplay.from_estimator(model)
    assert len(display.images_) == 2
    np.testing.assert_array_equal(display.images_[1].get_array(), model.W_kq_)
    plt.close("all")


def test_training_curve_display_uses_history(fitted):
    model, _ = fitted
    display = TrainingCurveDisplay.from_estimator(model, ("u", "w"), loglog=True)
    np.testing.assert_array_equal(display.curves["u"], model.history_[:, "u"])
    assert display.x[-1] == sum(model.history_[:, "train_batch_count"])
    assert display.ax_.get_xscale() == "log"
    plt.close("all")
