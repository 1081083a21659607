"""``skloop demo``: the main job, end to end, in about a minute of CPU.

Trains LoopedTransformerPCA with and without layer normalization on the paper's Task 1,
evaluates it in and out of distribution next to ExactPCA, the power method and scikit-learn's
PCA, grid-searches loop depth × normalization, trains the induction-head paper's
6-parameter model through its four phases, and writes one report plus its plots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from tqdm.auto import tqdm

from .. import datasets
from ..induction import InductionDynamicsRegressor, plateau_time_theory
from ..pca import ExactPCA, LoopedTransformerPCA, PowerIterationPCA
from ._report import markdown_table
from .reproduce.ood import evaluate_methods

__all__ = ["run_demo"]

LOOPS = 20
SHAPE = dict(n_points=16, n_features=8)


def _transformers(device, seed):
    X = datasets.make_sphere_matrices(2000, random_state=seed, **SHAPE)
    common = dict(objective="layerwise", inference_loops=LOOPS, max_epochs=40, device=device,
                  random_state=seed)
    return {
        "LN": LoopedTransformerPCA(**common).fit(X),
        "no LN": LoopedTransformerPCA(normalization=None, target="unnormalized",
                                      **common).fit(X),
    }


def _comparison(models, seed) -> str:
    sets = {
        "Task 1 (training distribution)": datasets.make_sphere_matrices(
            500, random_state=seed + 1, **SHAPE),
        "Task 2 (OOD)": datasets.make_spectrum_matrices(500, random_state=seed + 1, **SHAPE),
        "digits (OOD, real)": datasets.load_digit_matrices(500, random_state=seed + 1, **SHAPE),
        "image patches (OOD, real)": datasets.load_image_patch_matrices(
            500, random_state=seed + 1, **SHAPE),
    }
    methods = {
        f"LoopedTransformerPCA, LN (ρ={models['LN'].rho_:.3g})": (models["LN"].predict, False),
        f"LoopedTransformerPCA, no LN (ρ={models['no LN'].rho_:.3g})": (
            models["no LN"].predict, False),
        f"PowerIterationPCA ({LOOPS} iterations)": (
            lambda X: PowerIterationPCA(LOOPS, random_state=seed).fit(X).predict(X), False),
        "ExactPCA": (lambda X: ExactPCA().fit(X).predict(X), False),
        "sklearn PCA, per matrix (centered)": (
            lambda X: np.stack([PCA(1).fit(A).components_[0] for A in X]), True),
    }
    rows = evaluate_methods(methods, sets, SHAPE["n_features"])
    return markdown_table(
        ["data", "median λ2/λ1", "method", "mean error (°)", "p90 error (°)", "time (ms)"], rows)


def _grid_search(device, seed):
    X = datasets.make_sphere_matrices(600, random_state=seed + 2, **SHAPE)
    search = GridSearchCV(
        LoopedTransformerPCA(objective="layerwise", max_epochs=20, device=device,
                             random_state=seed),
        {"n_loops": [3, 10, 20], "normalization": ["rms", None]}, cv=3,
    ).fit(X)
    rows = [[str(p["n_loops"]), str(p["normalization"]), score]
            for p, score in zip(search.cv_results_["params"],
                                search.cv_results_["mean_test_score"], strict=True)]
    table = markdown_table(["n_loops", "normalization", "mean cos² (3-fold)"], rows)
    return search, table


def _induction(device, seed):
    sampler = datasets.InductionTaskSampler("mixed", seq_len=40, alpha=1.0, w_star=0.49)
    X_eval, y_eval = sampler(10000, random_state=seed + 3)
    model = InductionDynamicsRegressor(
        training="layerwise", optimizer="sgd", lr=0.5,
        batch_size=1000, sampler=sampler, steps_per_epoch=100, max_epochs=80, device=device,
        random_state=seed,
    ).fit(X_eval, y_eval)
    phases = model.phases_
    final = model.history_[-1]
    table = markdown_table(
        ["T_I (4-gram learned)", "T_half (induction head emerges)", "T_III", "plateau L_IH2",
         "theory ln(w*/σ)/λ", "final w_K = w_Q (w* = 0.49)", "final h (h* = 0.5)"],
        [[phases["T_I"], phases["T_half"], phases["T_III"], phases["plateau"],
          plateau_time_theory(40), final["w_K"], final["h"]]],
    )
    return model, table


def _plots(out: Path, models, induction, seed) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import LoopErrorDisplay

    X = datasets.make_spectrum_matrices(500, random_state=seed + 1, **SHAPE)
    figure, ax = plt.subplots(figsize=(6, 4))
    LoopErrorDisplay.from_estimator(models["LN"], X, max_loops=30, ax=ax, label="LN")
    LoopErrorDisplay.from_estimator(models["no LN"], X, max_loops=30, ax=ax, label="no LN",
                                    show_baselines=False)
    ax.set_title("Task 2 (out of distribution): error vs loops", fontsize="small")
    paths = [out / "loops_vs_power_method.png"]
    figure.tight_layout()
    figure.savefig(paths[0], dpi=110)
    history = [induction.stage_starts_[2]] + list(induction.history_)
    t = [row["time"] for row in history]
    figure, ax = plt.subplots(figsize=(6, 4))
    for key in ("G4", "IH2"):
        ax.semilogy(t, [row[key] for row in history], label=f"L_{key}")
    ax.axvline(induction.phases_["T_half"], color="grey", ls=":", label="T_half")
    ax.set_xlabel("gradient-flow time t = lr × iterations")
    ax.legend(fontsize="small")
    ax.set_title("Induction head: four phases of training", fontsize="small")
    paths.append(out / "induction_four_phases.png")
    figure.tight_layout()
    figure.savefig(paths[1], dpi=110)
    plt.close("all")
    return paths


def run_demo(out_dir="skloop-demo", *, device="auto", quiet=False, seed=0) -> str:
    """Run the demo, write ``report.md`` and the plots to ``out_dir``; return the report.

    Parameters
    ----------
    out_dir : str or Path, default="skloop-demo"
        Output folder (created).
    device : str, default="auto"
        Torch device of every model.
    quiet : bool, default=False
        No progress bar.
    seed : int, default=0
        Seed of the data and the models.

    Returns
    -------
    report : str
        The markdown report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = tqdm(total=5, desc="skloop demo", disable=quiet, unit="step")
    steps.set_postfix_str("training LoopedTransformerPCA (LN, no LN)")
    models = _transformers(device, seed)
    steps.update()
    steps.set_postfix_str("comparing with ExactPCA, power method, sklearn PCA")
    comparison = _comparison(models, seed)
    steps.update()
    steps.set_postfix_str("grid search over n_loops × normalization")
    search, grid = _grid_search(device, seed)
    steps.update()
    steps.set_postfix_str("training the induction-head model (four phases)")
    induction, phases = _induction(device, seed)
    steps.update()
    steps.set_postfix_str("plots")
    try:
        plots = [str(p) for p in _plots(out, models, induction, seed)]
    except ImportError:  # matplotlib is the optional "plot" extra
        plots = ["none (pip install 'skloop[plot]' for the PNGs)"]
    steps.update()
    steps.close()
    report = "\n\n".join([
        "# skloop demo",
        "## 1. LoopedTransformerPCA learns the power method",
        "Trained on paper Task 1 (2000 matrices of 16 unit points in 8 dimensions, one layer, "
        f"40 epochs), looped {LOOPS} times at inference. Errors are angles (degrees) to the top "
        "eigenvector of each matrix's uncentered second moment of unit points (the paper's "
        "convention); sklearn PCA centers, so it is measured against the centered covariance "
        "of the same points.",
        comparison,
        "## 2. Grid search over loop depth and normalization (GridSearchCV, no y)",
        f"Best: {search.best_params_} — more loops help, and LN beats no LN, whose gain ρ is "
        "stuck at the fixed point of Theorem 4.2.",
        grid,
        "## 3. InductionDynamicsRegressor: the 6-parameter model's four phases",
        "Online SGD on the 4-gram + in-context 2-gram target (α* = 1, w* = 0.49, L = 40, "
        "σ_init = 0.01, lr 0.5, batch 1000): the 4-gram is learned at once, the induction head "
        "only after a plateau whose length the theory predicts.",
        phases,
        "Plots: " + ", ".join(plots),
    ])
    (out / "report.md").write_text(report + "\n")
    return report
