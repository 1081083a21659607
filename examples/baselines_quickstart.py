"""
Exact baselines: the power method against the eigendecomposition
=================================================================

Every learned model of skloop is measured against two exact references: ``ExactPCA``
(batched eigendecomposition) and ``PowerIterationPCA`` (the normalized power method, and its
shifted variant ``v ← (I + ρΣ)v / ||·||`` that a looped transformer with layer normalization
converges to). This script shows how their error falls with the number of iterations on the
paper's Task 2 and on real digit matrices.
"""

import numpy as np

from skloop import ExactPCA, PowerIterationPCA
from skloop.datasets import load_digit_matrices, make_spectrum_matrices
from skloop.metrics import angular_error, leading_subspace

# %%
# Two batches of 500 matrices of 16 unit-norm points in 8 dimensions. Task 2 has the exact
# spectrum m_i / n with m = (3, 2, ..., 2, 1): the eigengap ratio λ2/λ1 is 2/3 for every matrix.
data = {
    "Task 2": make_spectrum_matrices(500, n_points=16, n_features=8, random_state=0),
    "digits": load_digit_matrices(500, n_points=16, n_features=8, random_state=0),
}

# %%
# The exact baseline is exact (errors at rounding level); the power method contracts the
# tangent of the error by λ2/λ1 per step, the shifted one by (1 + ρλ2)/(1 + ρλ1).
for name, X in data.items():
    subspace = leading_subspace(X)  # computed once, reused by every metric call
    print(f"{name}: median λ2/λ1 = {np.median(subspace.eigengap_ratio):.3f}")
    exact = ExactPCA().fit(X).predict(X)
    print(
        f"  ExactPCA                  median error {np.median(angular_error(subspace, exact)):.2e}°"
    )
    for shift in (None, 5.0):
        for n_iter in (1, 5, 20):
            est = PowerIterationPCA(n_iter=n_iter, shift=shift, random_state=0).fit(X)
            error = np.median(angular_error(subspace, est.predict(X)))
            label = f"power (shift={shift}, k={n_iter})"
            print(f"  {label:<25} median error {error:.2e}°")
