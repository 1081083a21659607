"""Speed of the exact baselines, measured side by side in one run.

Prints the median wall time of predicting the leading component of N matrices with
``ExactPCA`` (batched torch eigh), ``PowerIterationPCA`` (Gram-first and matrix-free),
``numpy.linalg.eigh`` on the stacked second moments, and the per-matrix scikit-learn
``TruncatedSVD`` loop (timed on a subset and extrapolated), with ratios to ``ExactPCA``.

Usage: ``python benchmarks/baselines.py [--quick]``.
"""

import argparse
import time

import numpy as np
from sklearn.decomposition import TruncatedSVD

from skloop import ExactPCA, PowerIterationPCA
from skloop.datasets import make_sphere_matrices
from skloop.experiments._report import markdown_table


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    args = parser.parse_args()
    sizes = (
        [(1000, 16, 8), (1000, 100, 32)]
        if args.quick
        else [(1000, 16, 8), (10000, 20, 8), (10000, 100, 32), (1000, 100, 128)]
    )
    repeats = 3 if args.quick else 7
    rows = []
    for n_matrices, n_points, n_features in sizes:
        X = make_sphere_matrices(n_matrices, n_points, n_features, random_state=0)
        exact = ExactPCA().fit(X)
        methods = {
            "ExactPCA": lambda X=X, e=exact: e.predict(X),
            "numpy eigh": lambda X=X: np.linalg.eigh(np.swapaxes(X, 1, 2) @ X)[1][:, :, -1],
        }
        for method in ("gram", "matrix_free"):
            est = PowerIterationPCA(20, method=method, random_state=0).fit(X)
            methods[f"power k=20 {method}"] = lambda X=X, e=est: e.predict(X)
        subset = X[:50]
        per_matrix = median_time(
            lambda s=subset: [TruncatedSVD(1, algorithm="arpack").fit(A) for A in s], 1
        ) / len(subset)
        timings = {name: median_time(fn, repeats) for name, fn in methods.items()}
        timings["sklearn TruncatedSVD loop (extrapolated)"] = per_matrix * n_matrices
        for name, seconds in timings.items():
            rows.append(
                [
                    f"{n_matrices}×{n_points}×{n_features}",
                    name,
                    1000 * seconds,
                    seconds / timings["ExactPCA"],
                ]
            )
    print(markdown_table(["N×n×d", "method", "median ms", "× ExactPCA"], rows))


if __name__ == "__main__":
    main()
