"""``skloop reproduce ood``: models trained on Task 1, evaluated out of distribution.

Columns compare the looped transformer (LN layerwise, its isotropic projection, and no-LN
unnormalized) with the power method at the same number of loops, the exact eigendecomposition
and scikit-learn's per-matrix loops, on the training task and on Task 2, Task 1 with 3n points,
spiked Gaussians, digits, image patches and wine matrices.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.decomposition import PCA, TruncatedSVD

from ... import datasets
from ...metrics import angular_error, leading_subspace
from ...pca import ExactPCA, LoopedTransformerPCA, PowerIterationPCA
from ._common import Report, Sizes, sizes_for

__all__ = ["run", "sizes_for", "evaluation_sets", "evaluate_methods", "ERROR_HEADERS"]

LOOPS = 20
# The columns of evaluate_methods' rows: errors are heavy-tailed across matrices, so the mean,
# the median and the 90th percentile are all shown.
ERROR_HEADERS = ["data", "median λ2/λ1", "method", "mean error (°)", "median error (°)",
                 "p90 error (°)", "time (ms)"]


def evaluation_sets(sizes: Sizes, seed: int) -> dict:
    """Name → batch of test matrices with ``sizes.n_features`` features."""
    d, n, m = sizes.n_features, sizes.n_points, sizes.n_test
    shape = dict(n_features=d, random_state=seed + 1)
    return {
        "Task 1 (train distribution)": datasets.make_sphere_matrices(m, n, **shape),
        "Task 1, 3n points": datasets.make_sphere_matrices(m, 3 * n, **shape),
        "Task 2": datasets.make_spectrum_matrices(m, n, **shape),
        "spiked Gaussian": datasets.make_spiked_matrices(m, n, **shape),
        "digits": datasets.load_digit_matrices(m, n, **shape),
        "image patches": datasets.load_image_patch_matrices(m, n, **shape),
        "wine": datasets.load_wine_matrices(m, n, **{**shape, "n_features": min(d, 13)}),
    }


def _sklearn_loop(estimator_factory, X):
    return np.stack([estimator_factory().fit(A).components_[0] for A in X])


def _methods(models: dict, seed: int) -> dict:
    """Name → (predict function, centered reference?)."""
    ln = models["LN"]
    methods = {
        f"transformer LN (ρ={ln.rho_:.3g})": (ln.predict, False),
        "transformer LN, projected": (ln.project_structure().predict, False),
        f"transformer no LN (ρ={models['no LN'].rho_:.3g})": (models["no LN"].predict, False),
        f"power method ({LOOPS} loops)": (
            lambda X: PowerIterationPCA(LOOPS, random_state=seed).fit(X).predict(X), False),
        "ExactPCA (batched eigh)": (lambda X: ExactPCA().fit(X).predict(X), False),
        "sklearn TruncatedSVD loop": (
            lambda X: _sklearn_loop(lambda: TruncatedSVD(1, algorithm="arpack"), X), False),
        "sklearn PCA loop (centered)": (lambda X: _sklearn_loop(lambda: PCA(1), X), True),
    }
    return methods


def evaluate_methods(methods: dict, sets: dict, n_features: int) -> list:
    """Rows ``[data, median λ2/λ1, method, mean, median, p90 error, ms]`` for every pair.

    ``methods`` maps a name to ``(predict, centered)``: centered methods are measured against
    the top eigenvector of the centered covariance of the same points, the others against the
    uncentered second moment of unit points.
    """
    rows = []
    for set_name, X in sets.items():
        if X.shape[2] != n_features:  # wine has 13 features: only when d <= 13
            continue
        references = {False: leading_subspace(X),
                      True: leading_subspace(X, center=True, normalize_points=False)}
        gap = np.median(references[False].eigengap_ratio)
        for method, (predict, centered) in methods.items():
            start = time.perf_counter()
            components = predict(X)
            elapsed = time.perf_counter() - start
            errors = angular_error(references[centered], components)
            rows.append([set_name, gap, method, errors.mean(), np.median(errors),
                         np.percentile(errors, 90), 1000 * elapsed])
    return rows


def _figure(report: Report, rows: list, methods: dict) -> None:
    """Mean error of the iterative methods per set, and the learned models relative to the
    power method where the power method has not converged."""
    import matplotlib.pyplot as plt

    from .._plots import legend_outside

    names = list(dict.fromkeys(row[0] for row in rows))
    mean = {(row[0], row[2]): row[3] for row in rows}
    shown = [m for m in methods if not m.startswith(("ExactPCA", "sklearn"))]  # iterative
    power = next(m for m in shown if m.startswith("power method"))
    floor = 1e-6  # float64 rounding of the exact methods is ~1e-14°: below the axis
    figure, (ax_abs, ax_rel) = plt.subplots(1, 2, figsize=(13, 5.2),
                                            gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(shown)
    x = np.arange(len(names))
    for i, method in enumerate(shown):
        values = np.array([mean[(name, method)] for name in names])
        ax_abs.bar(x + i * width, np.maximum(values, floor), width, label=method,
                   color=f"C{i}" if method != power else "k")
    ax_abs.set_yscale("log")
    ax_abs.set_ylim(floor, None)
    ax_abs.set_xticks(x + 0.4 - width / 2, names, rotation=25, ha="right", fontsize="small")
    ax_abs.set_ylabel("mean angular error (degrees, log scale)")
    ax_abs.set_title(f"Mean error after {LOOPS} loops (no bar: below {floor:g}°, float "
                     "rounding)", fontsize="medium")
    ax_abs.grid(True, axis="y", which="major", alpha=0.3)
    # Relative to the power method: only where it has not converged (mean error > 0.01°);
    # elsewhere its error is float rounding and a ratio would measure nothing.
    slow = [name for name in names if mean[(name, power)] > 1e-2]
    learned = [m for m in shown if m != power]
    x = np.arange(len(slow))
    width = 0.8 / len(learned)
    for i, method in enumerate(learned):
        ratios = np.array([mean[(name, method)] / mean[(name, power)] for name in slow])
        bars = ax_rel.bar(x + i * width, ratios - 1, width, bottom=1,
                          color=f"C{shown.index(method)}")
        ax_rel.bar_label(bars, [f"{r:.2g}" for r in ratios], fontsize="x-small")
    ax_rel.set_yscale("log")
    ax_rel.axhline(1.0, color="k", lw=1)
    ax_rel.set_xticks(x + 0.4 - width / 2, slow, rotation=25, ha="right", fontsize="small")
    ax_rel.set_ylabel("mean error ÷ power method's mean error (log scale)")
    ax_rel.set_title("Relative to the power method (1 = as good)", fontsize="medium")
    ax_rel.grid(True, axis="y", alpha=0.3)
    figure.suptitle(f"Trained on Task 1, evaluated on {len(names)} distributions with "
                    f"{LOOPS} loops ({len(names) - len(slow)} sets where the power method "
                    "converges to float precision are left out on the right)",
                    fontsize="medium")
    legend_outside(figure, [ax_abs], ncol=len(shown))
    report.save(figure, "ood_mean_error", tight=False)


def run(out_dir, *, sizes: Sizes, seed=0, device="auto", verbosity=0) -> str:
    """Train on Task 1, evaluate every method on every set, write PNG and ``report.md``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    sizes : Sizes
        Problem and training sizes (CPU default or paper-sized, named in the report).
    seed : int, default=0
        Seed of the data and the models.
    device : str, default="auto"
        Torch device of the models.
    verbosity : {0, 1, 2}, default=0
        1: a line per finished table; 2: also skorch's per-epoch log of every training run.

    Returns
    -------
    report : str
        The markdown report.
    """
    report = Report(out_dir, "Out-of-distribution principal components", sizes, seed,
                    progress=verbosity >= 1)
    X_train = datasets.make_sphere_matrices(sizes.n_train, sizes.n_points, sizes.n_features,
                                            random_state=seed)
    common = dict(objective="layerwise", inference_loops=LOOPS, lr=sizes.lr,
                  max_epochs=sizes.max_epochs, batch_size=sizes.batch_size,
                  random_state=seed, verbose=int(verbosity >= 2), device=device,
                  dtype="float64")  # resolve < 1e-3 degrees
    models = {
        "LN": LoopedTransformerPCA(**common).fit(X_train),
        "no LN": LoopedTransformerPCA(normalization=None, target="unnormalized",
                                      **common).fit(X_train),
    }
    methods = _methods(models, seed)
    rows = evaluate_methods(methods, evaluation_sets(sizes, seed), sizes.n_features)
    report.table(
        f"Trained on Task 1, evaluated with {LOOPS} loops",
        ERROR_HEADERS,
        rows,
        note="Convention: the reference is the top eigenspace of the uncentered second moment "
        "of unit-norm points (the paper's), for every method except 'sklearn PCA loop "
        "(centered)', which is measured against the top eigenvector of the centered "
        "covariance of the same (unit) points, its own convention. Transformers: "
        "objective='layerwise' trained on Task 1; 'projected' keeps only u·I and w·I. "
        "Statistics over the test matrices: errors are heavy-tailed (a mean above the 90th "
        "percentile means a few matrices carry it). Times include preprocessing.",
    )
    _figure(report, rows, methods)
    return report.write()
