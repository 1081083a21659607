"""The baseline comparison behind ``skloop demo``.

Runs the exact baselines and scikit-learn's per-matrix loop on the paper's tasks and on
out-of-distribution and real data, and reports angular errors and wall times side by side.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.decomposition import TruncatedSVD

from . import datasets
from ._report import markdown_table
from .metrics import angular_error, leading_subspace
from .pca import ExactPCA, PowerIterationPCA

__all__ = ["baseline_rows", "demo_datasets"]


def demo_datasets(n_matrices: int, n_points: int, n_features: int, random_state: int):
    """The evaluation sets of the demo: name → batch ``(n_matrices, n_points, n_features)``."""
    sizes = dict(n_points=n_points, n_features=n_features, random_state=random_state)
    return {
        "Task 1 (sphere)": datasets.make_sphere_matrices(n_matrices, **sizes),
        "Task 2 (spectrum)": datasets.make_spectrum_matrices(n_matrices, **sizes),
        "spiked Gaussian": datasets.make_spiked_matrices(n_matrices, **sizes),
        "digits": datasets.load_digit_matrices(n_matrices, **sizes),
        "image patches": datasets.load_image_patch_matrices(n_matrices, **sizes),
    }


def _truncated_svd_loop(X: np.ndarray) -> np.ndarray:
    """scikit-learn's uncentered analogue, one ``TruncatedSVD`` fit per matrix."""
    return np.stack(
        [TruncatedSVD(1, algorithm="arpack").fit(A).components_[0] for A in X]
    )


def baseline_rows(X: np.ndarray, random_state: int, power_iters=(5, 20)) -> list[list]:
    """``[method, mean error, p90 error, milliseconds]`` for every baseline on one batch."""
    methods = {"ExactPCA (batched eigh)": ExactPCA().fit(X).predict}
    for k in power_iters:
        est = PowerIterationPCA(n_iter=k, random_state=random_state).fit(X)
        methods[f"PowerIterationPCA({k})"] = est.predict
    methods["sklearn TruncatedSVD loop"] = _truncated_svd_loop
    subspace = leading_subspace(X)
    rows = []
    for name, predict in methods.items():
        start = time.perf_counter()
        components = predict(X)
        elapsed = time.perf_counter() - start
        errors = angular_error(subspace, components)
        rows.append([name, errors.mean(), np.percentile(errors, 90), 1000 * elapsed])
    return rows


def baseline_report(n_matrices=500, n_points=16, n_features=8, random_state=0) -> str:
    """The demo's markdown report of the baselines on every evaluation set."""
    rows = []
    for name, X in demo_datasets(n_matrices, n_points, n_features, random_state).items():
        gap = np.median(leading_subspace(X).eigengap_ratio)
        for method, *numbers in baseline_rows(X, random_state):
            rows.append([name, gap, method, *numbers])
    table = markdown_table(
        ["data", "median λ2/λ1", "method", "mean error (°)", "p90 error (°)", "time (ms)"], rows
    )
    header = (
        f"Leading principal component of {n_matrices} matrices per set "
        f"(n_points={n_points}, n_features={n_features}); uncentered second moment of "
        "unit-norm points (the paper's convention); error = angle to the top eigenspace."
    )
    return f"{header}\n\n{table}"
