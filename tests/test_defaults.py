"""Out of the box, LoopedTransformerPCA gives a useful answer: within 1.5x of the power method
run for the same number of loops on the paper's Task 1, and under 1 degree on wine."""

import numpy as np

from skloop import LoopedTransformerPCA, PowerIterationPCA
from skloop.datasets import load_wine_matrices, make_sphere_matrices
from skloop.metrics import angular_error


def _mean_errors(X, seed=0):
    model = LoopedTransformerPCA(random_state=seed).fit(X)
    loops = model.get_params()["n_loops"]
    power = PowerIterationPCA(n_iter=loops, random_state=seed).fit(X)
    return (angular_error(X, model.predict(X)).mean(),
            angular_error(X, power.predict(X)).mean(), loops)


def test_defaults_are_within_1_5x_of_the_power_method_on_task_1():
    # Measured with seeds 0-3: 1.13-1.17x (5.2-5.9 degrees vs 4.5-5.2, means over matrices).
    model, power, loops = _mean_errors(make_sphere_matrices(2000, 16, 8, random_state=0))
    assert loops == 20
    assert model <= 1.5 * power, (model, power)
    assert model < 10  # a few degrees: a useful answer (3 loops gave 40)


def test_defaults_are_under_one_degree_on_wine():
    # The power method converges to float rounding here (λ2/λ1 ≈ 0.002), so the learned
    # layer's finite-sample error floor is what is measured: 0.61-0.89 degrees with seeds 0-3.
    model, power, _ = _mean_errors(load_wine_matrices(500, random_state=0))
    assert power < 1e-6
    assert model < 1.0, model
    assert np.isfinite(model)
