"""``skloop reproduce power-method``: the figures of the looped-transformer paper.

Fig 1/4: learned weights and growth of the active scalars (end-to-end and LN layerwise);
Fig 2: single layers with and without LN (train/test loss, error vs loops);
Fig 5: error vs loops for training snapshots next to the power method;
Fig 8: a model trained end-to-end with L loops evaluated at other depths.
"""

from __future__ import annotations

import re

import numpy as np

from ...datasets import make_spectrum_matrices, make_sphere_matrices
from ...pca import LoopedTransformerPCA, WeightSnapshots
from ...pca._diagnostics import no_ln_plateaus
from .._plots import legend_outside
from ._common import Report, Sizes, median_errors, sizes_for

__all__ = ["run", "sizes_for"]

LOOPS_SHOWN = (1, 5, 10, 25)
TASKS = {"Task 1": make_sphere_matrices, "Task 2": make_spectrum_matrices}


def _data(sizes: Sizes, seed: int):
    shape = dict(n_points=sizes.n_points, n_features=sizes.n_features)
    return {
        task: (make(sizes.n_train, random_state=seed, **shape),
               make(sizes.n_test, random_state=seed + 1, **shape))
        for task, make in TASKS.items()
    }


def _model(sizes: Sizes, seed: int, settings: dict, **params) -> LoopedTransformerPCA:
    # float64: the reproductions resolve errors far below float32's ~1e-3 degrees. ``settings``
    # holds the device and skorch's verbosity.
    return LoopedTransformerPCA(lr=sizes.lr, max_epochs=sizes.max_epochs,
                                batch_size=sizes.batch_size, random_state=seed,
                                dtype="float64", **settings, **params)


def _growth(report: Report, models: dict):
    """Fig 1/4: heatmaps and log-log growth of the active scalars, plus the structure table."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import (
        FormatStrFormatter,
        LogLocator,
        MaxNLocator,
        NullFormatter,
        ScalarFormatter,
    )

    from ...plotting import TrainingCurveDisplay, WeightsDisplay

    rows = []
    columns = 2
    figure, axes = plt.subplots(-(-len(models) // columns), columns,
                                figsize=(10, 3.6 * -(-len(models) // columns)), squeeze=False)
    for ax, (name, (model, X_test)) in zip(axes.ravel(), models.items(), strict=True):
        weights = WeightsDisplay.from_estimator(model)
        weights.figure_.suptitle(f"{name}: learned weights (blocks: data | query)")
        for heatmap in weights.axes_:  # matrix indices are integers
            heatmap.xaxis.set_major_locator(MaxNLocator(integer=True))
            heatmap.yaxis.set_major_locator(MaxNLocator(integer=True))
            heatmap.set_xlabel("column")
            heatmap.set_ylabel("row")
        report.save(weights.figure_, "weights_" + re.sub(r"[^A-Za-z0-9]+", "_", name))
        TrainingCurveDisplay.from_estimator(model, ("u", "w"), ax=ax, loglog=True)
        ax.set_title(name, fontsize="small")
        ax.set_xlabel("SGD steps")
        ax.set_ylabel("active scalar (mean diagonal)")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers, no overlapping minor labels
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
            axis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.tick_params(which="minor", labelsize="x-small")
        if ax.get_xlim()[1] / ax.get_xlim()[0] > 300:  # many decades: majors suffice
            ax.xaxis.set_minor_formatter(NullFormatter())
        s = model.structure_report()
        rows.append([name, s["rho"], s["u"], s["w"], s["growth_exponent"],
                     s["predicted_growth_exponent"], s["inactive_max"],
                     s["W_pv21_offdiag_ratio"], s["W_kq12_offdiag_ratio"],
                     model.history_[-1, "train_loss"], model.training_loss(X_test)])
    figure.suptitle("Fig 1 / Fig 4: growth of the active scalars u (W_pv[21]) and w "
                    "(W_kq[12]), log-log", fontsize="medium")
    report.save(figure, "fig1_fig4_active_scalar_growth")
    report.table(
        "Fig 1 / Fig 4: learned structure and growth of the active scalars",
        ["model", "ρ", "u", "w", "slope of log ρ", "paper", "inactive max",
         "off-diag W_pv21", "off-diag W_kq12", "train loss", "test loss"],
        rows,
        note="Slope: least squares of log ρ vs log(SGD steps) over the second half of "
        "training; the paper's exponents are asymptotic (ρ ∝ t^{1/2} end-to-end, t^{1/3} "
        "layerwise), short runs differ (math note §1.11).",
    )


def _single_layers(report: Report, sizes: Sizes, data: dict, seed: int, settings: dict):
    """Fig 2: LN vs no-LN single layers: loss curves, error vs loops, closed forms."""
    import matplotlib.pyplot as plt

    variants = {
        "LN, normalized target": dict(normalization="rms"),
        "no LN, normalized target": dict(normalization=None),
        "no LN, unnormalized target": dict(normalization=None, target="unnormalized"),
    }
    rows, trained = [], {}
    figure, axes = plt.subplots(len(data), 3, figsize=(14, 3.8 * len(data)), squeeze=False)
    for row_axes, (task, (X, X_test)) in zip(axes, data.items(), strict=True):
        v = np.random.RandomState(seed).standard_normal((len(X_test), sizes.n_features))
        plateaus = no_ln_plateaus(X_test, v / np.linalg.norm(v, axis=1, keepdims=True))
        for name, params in variants.items():
            snapshots = WeightSnapshots()
            model = _model(sizes, seed, settings, objective="layerwise", callbacks=[snapshots],
                           **params).fit(X)
            steps = [s["step"] for s in snapshots.snapshots_]
            test_loss = [model.with_weights(s["W_pv"], s["W_kq"]).training_loss(X_test)
                         for s in snapshots.snapshots_]
            row_axes[0].plot(steps, model.history_[:, "train_loss"], label=name)
            row_axes[1].plot(steps, test_loss, label=name)
            trajectory = model.loop_trajectory(X_test, max_loops=max(LOOPS_SHOWN))
            row_axes[2].semilogy(trajectory["loops"], np.median(trajectory["errors"], 1),
                                 label=name)
            reference = {"no LN, unnormalized target": plateaus["loss_U"],
                         "no LN, normalized target": plateaus["loss_N"]}.get(name, 0.0)
            rows.append([task, name, model.rho_, model.history_[-1, "train_loss"],
                         test_loss[-1], reference,
                         *median_errors(trajectory["errors"], LOOPS_SHOWN)])
            trained[(task, name)] = model
        power = median_errors(trajectory["power_errors"], LOOPS_SHOWN)
        rows.append([task, "power method", "—", "—", "—", "—", *power])
        row_axes[2].semilogy(trajectory["loops"], np.median(trajectory["power_errors"], 1),
                             "k--", label="power method")
        labels = {"train loss": "training loss (mean over matrices)",
                  "test loss": "test loss (mean over matrices)",
                  "error vs loops": "median angular error (degrees)"}
        for ax, (title, ylabel) in zip(row_axes, labels.items(), strict=True):
            ax.set_title(f"{task}: {title}", fontsize="small")
            ax.set_xlabel("inference loops K" if "loops" in title else "SGD steps")
            ax.set_ylabel(ylabel)
    figure.suptitle("Fig 2: one layer with and without LN, trained layerwise, then looped",
                    fontsize="medium")
    legend_outside(figure, axes, ncol=4)
    report.save(figure, "fig2_ln_vs_no_ln", tight=False)
    report.table(
        "Fig 2: single layers with and without LN, looped at inference",
        ["task", "model", "ρ", "train loss", "test loss", "population plateau",
         *[f"error K={k}" for k in LOOPS_SHOWN]],
        rows,
        note="Population plateau: the no-LN fixed-point loss L*_U or L*_N (Monte Carlo on the "
        "test matrices, math note §4.3); the LN loss has no positive plateau (→ 0).",
    )
    return trained


def _snapshots(report: Report, sizes: Sizes, data: dict, seed: int, settings: dict):
    """Fig 5: error vs loops of LN-layerwise snapshots next to the power method."""
    import matplotlib.pyplot as plt

    from ...plotting import LoopErrorDisplay

    epochs = sorted({1, max(1, sizes.max_epochs // 8), max(1, sizes.max_epochs // 2),
                     sizes.max_epochs})
    rows = []
    figure, axes = plt.subplots(1, len(data), figsize=(6 * len(data), 4))
    for ax, (task, (X, X_test)) in zip(axes, data.items(), strict=True):
        snapshots = WeightSnapshots(epochs)
        model = _model(sizes, seed, settings, objective="layerwise",
                       callbacks=[snapshots]).fit(X)
        for snapshot in snapshots.snapshots_:
            snap = model.with_weights(snapshot["W_pv"], snapshot["W_kq"])
            display = LoopErrorDisplay.from_estimator(
                snap, X_test, max_loops=max(LOOPS_SHOWN), ax=ax, show_baselines=False,
                label=f"step {snapshot['step']} (ρ={snap.rho_:.3g})",
            )
            factors = snap.contraction_factor(X_test)
            rows.append([task, snapshot["step"], snap.rho_,
                         *[display.errors[k - 1] for k in LOOPS_SHOWN],
                         factors["measured_median"], factors["predicted_median"]])
        ax.semilogy(display.loops, display.power_errors, "k--", label="power method")
        ax.set_ylabel("median angular error (degrees)")
        ax.set_xlabel("inference loops K")
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(f"{task}: LN layer snapshots", fontsize="small")
        rows.append([task, "power method", "—",
                     *[display.power_errors[k - 1] for k in LOOPS_SHOWN], "—", "—"])
    figure.suptitle("Fig 5: training snapshots of the LN layer, looped, next to the power "
                    "method", fontsize="medium")
    report.save(figure, "fig5_snapshots_vs_power_method")
    report.table(
        "Fig 5: error vs loops for LN-layerwise training snapshots",
        ["task", "SGD step", "ρ", *[f"error K={k}" for k in LOOPS_SHOWN],
         "measured contraction", "predicted (1+ρλ2)/(1+ρλ1)"],
        rows,
        note="Measured contraction: median of (tan φ_20 / tan φ_5)^(1/15).",
    )


def _depths(report: Report, models: dict):
    """Fig 8: end-to-end models trained with L loops, evaluated at K loops."""
    import matplotlib.pyplot as plt

    rows = []
    figure, ax = plt.subplots(figsize=(6, 4))
    for name, (model, X_test) in models.items():
        full = model.loop_trajectory(X_test, max_loops=max(LOOPS_SHOWN))
        projected = model.project_structure().loop_trajectory(X_test, max(LOOPS_SHOWN))
        loops = full["loops"]
        ax.semilogy(loops, np.median(full["errors"], 1), label=f"{name}")
        ax.semilogy(loops, np.median(projected["errors"], 1), ":", label=f"{name}, projected")
        rows.append([name, "learned", *median_errors(full["errors"], LOOPS_SHOWN)])
        rows.append([name, "projected", *median_errors(projected["errors"], LOOPS_SHOWN)])
        rows.append([name, "power method", *median_errors(full["power_errors"], LOOPS_SHOWN)])
    ax.set_xlabel("inference loops K")
    ax.set_ylabel("median angular error (degrees)")
    ax.set_title("Fig 8: end-to-end models looped beyond their training depth",
                 fontsize="medium")
    legend_outside(figure, [ax], ncol=2)
    report.save(figure, "fig8_depth_transfer", tight=False)
    report.table(
        "Fig 8: end-to-end models evaluated at other depths",
        ["model", "weights", *[f"error K={k}" for k in LOOPS_SHOWN]],
        rows,
        note="Projected: active blocks replaced by u·I and w·I, everything else 0 "
        "(removes the finite-sample anisotropy that freezes the looped error).",
    )


def run(out_dir, *, sizes: Sizes, seed=0, device="auto", verbosity=0) -> str:
    """Train every model, write the PNGs and ``report.md`` to ``out_dir``; return the report.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    sizes : Sizes
        Problem and training sizes (CPU default or paper-sized, named in the report).
    seed : int, default=0
        Seed of the data and the models.
    device : str, default="auto"
        Torch device of every model.
    verbosity : {0, 1, 2}, default=0
        1: a line per finished table; 2: also skorch's per-epoch log of every training run.

    Returns
    -------
    report : str
        The markdown report.
    """
    report = Report(out_dir, "Looped transformers learn the power method", sizes, seed,
                    progress=verbosity >= 1)
    settings = dict(device=device, verbose=int(verbosity >= 2))
    data = _data(sizes, seed)
    L = sizes.end_to_end_loops
    end_to_end = {
        f"end-to-end L={L}, {task}": (
            _model(sizes, seed, settings, objective="end_to_end", n_loops=L).fit(X), X_test)
        for task, (X, X_test) in data.items()
    }
    layers = _single_layers(report, sizes, data, seed, settings)
    layerwise = {f"LN layerwise, {task}": (layers[(task, "LN, normalized target")], X_test)
                 for task, (_, X_test) in data.items()}
    _growth(report, {**end_to_end, **layerwise})
    _snapshots(report, sizes, data, seed, settings)
    _depths(report, end_to_end)
    return report.write()
