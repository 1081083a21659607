"""scikit-learn-style Display objects for the looped transformer (matplotlib imported lazily).

Each Display holds the numbers it draws (so they can be tabulated too), has a
``from_estimator`` constructor and a ``plot`` method that returns the Display with ``ax_`` (or
``axes_``) and ``figure_`` set, like :class:`sklearn.metrics.RocCurveDisplay`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LoopErrorDisplay",
    "WeightsDisplay",
    "TrainingCurveDisplay",
    "check_matplotlib_support",
]


def check_matplotlib_support(caller: str) -> None:
    """Raise a clear ``ImportError`` when matplotlib (the ``plot`` extra) is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller} needs matplotlib: pip install 'skloop[plot]'."
        ) from exc


def _axes(ax, caller: str):
    check_matplotlib_support(caller)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


class LoopErrorDisplay:
    """Angular error after each loop, next to the power method and the shifted power method.

    Parameters
    ----------
    loops : ndarray of shape (n_loops,)
        Loop counts ``1..K``.
    errors : ndarray of shape (n_loops,)
        The model's error (a statistic over matrices, degrees).
    power_errors, shifted_errors : ndarray of shape (n_loops,) or None
        The classical and the shifted (learned ρ) power methods from the same queries.
    label : str or None
        Legend label of the model's curve.
    """

    def __init__(self, loops, errors, power_errors=None, shifted_errors=None, label=None):
        self.loops = np.asarray(loops)
        self.errors = np.asarray(errors)
        self.power_errors = power_errors
        self.shifted_errors = shifted_errors
        self.label = label

    @classmethod
    def from_estimator(cls, estimator, X, *, max_loops=25, statistic=np.median, label=None,
                       ax=None, show_baselines=True):
        """Compute the loop trajectory of a fitted ``LoopedTransformerPCA`` on ``X`` and plot.

        Parameters
        ----------
        estimator : LoopedTransformerPCA
            Fitted model.
        X : array-like of shape (n_matrices, n_points, n_features)
            Evaluation matrices.
        max_loops : int, default=25
            Number of loops.
        statistic : callable, default=numpy.median
            Reduction over matrices (``axis`` keyword).
        label : str or None
            Legend label; defaults to ``"transformer (ρ=…)"``.
        ax : matplotlib Axes or None
            Where to draw.
        show_baselines : bool, default=True
            Also draw the two power methods.

        Returns
        -------
        display : LoopErrorDisplay
        """
        trajectory = estimator.loop_trajectory(X, max_loops=max_loops)
        display = cls(
            trajectory["loops"],
            statistic(trajectory["errors"], axis=1),
            statistic(trajectory["power_errors"], axis=1),
            statistic(trajectory["shifted_errors"], axis=1),
            label=label or f"transformer (ρ={estimator.rho_:.3g})",
        )
        return display.plot(ax=ax, show_baselines=show_baselines)

    def plot(self, ax=None, *, show_baselines=True, logy=True, **line_kwargs):
        """Draw the curves (log-scale error by default).

        Parameters
        ----------
        ax : matplotlib Axes or None
            Where to draw; a new figure when None.
        show_baselines : bool, default=True
            Also draw the power methods.
        logy : bool, default=True
            Logarithmic error axis (geometric decay is a straight line).
        **line_kwargs
            Passed to the model's ``ax.plot``.

        Returns
        -------
        display : LoopErrorDisplay
        """
        ax = _axes(ax, "LoopErrorDisplay.plot")
        (self.line_,) = ax.plot(self.loops, self.errors, marker="o", markersize=3,
                                label=self.label, **line_kwargs)
        if show_baselines and self.power_errors is not None:
            ax.plot(self.loops, self.power_errors, "k--", label="power method")
        if show_baselines and self.shifted_errors is not None:
            ax.plot(self.loops, self.shifted_errors, "k:", label="shifted power method (same ρ)")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("loops K")
        ax.set_ylabel("angular error (degrees)")
        ax.legend(fontsize="small")
        self.ax_, self.figure_ = ax, ax.figure
        return self


class WeightsDisplay:
    """Heatmaps of the learned ``W_pv`` and ``W_kq`` with their ``d × d`` blocks outlined.

    Parameters
    ----------
    W_pv, W_kq : ndarray of shape (2d, 2d)
        The layer's weights.
    """

    def __init__(self, W_pv, W_kq):
        self.W_pv = np.asarray(W_pv)
        self.W_kq = np.asarray(W_kq)

    @classmethod
    def from_estimator(cls, estimator, *, axes=None):
        """Draw the fitted weights of a ``LoopedTransformerPCA``.

        Parameters
        ----------
        estimator : LoopedTransformerPCA
            Fitted model.
        axes : sequence of two matplotlib Axes or None
            Where to draw.

        Returns
        -------
        display : WeightsDisplay
        """
        return cls(estimator.W_pv_, estimator.W_kq_).plot(axes=axes)

    def plot(self, axes=None, *, cmap="RdBu_r"):
        """Draw both heatmaps on a symmetric colour scale.

        Parameters
        ----------
        axes : sequence of two matplotlib Axes or None
            Where to draw; a new 1 × 2 figure when None.
        cmap : str, default="RdBu_r"
            Diverging colour map.

        Returns
        -------
        display : WeightsDisplay
        """
        check_matplotlib_support("WeightsDisplay.plot")
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(9, 4))
        d = self.W_pv.shape[0] // 2
        self.images_ = []
        for ax, W, name in zip(axes, (self.W_pv, self.W_kq), ("W_pv", "W_kq"), strict=True):
            limit = np.abs(W).max() or 1.0
            image = ax.imshow(W, cmap=cmap, vmin=-limit, vmax=limit)
            ax.axhline(d - 0.5, color="k", lw=0.5)
            ax.axvline(d - 0.5, color="k", lw=0.5)
            ax.set_title(name)
            ax.figure.colorbar(image, ax=ax, fraction=0.046)
            self.images_.append(image)
        self.axes_, self.figure_ = axes, axes[0].figure
        return self


class TrainingCurveDisplay:
    """Quantities recorded during training (losses, active scalars) against epochs or steps.

    Parameters
    ----------
    x : ndarray of shape (n_epochs,)
        Epochs or SGD steps.
    curves : dict of str to ndarray of shape (n_epochs,)
        Named series.
    xlabel : str
        Label of the horizontal axis.
    """

    def __init__(self, x, curves, xlabel="epoch"):
        self.x = np.asarray(x)
        self.curves = {name: np.asarray(values) for name, values in curves.items()}
        self.xlabel = xlabel

    @classmethod
    def from_estimator(cls, estimator, keys=("train_loss",), *, x="step", ax=None,
                       loglog=False):
        """Plot entries of a fitted estimator's ``history_``.

        Parameters
        ----------
        estimator : LoopedTransformerPCA
            Fitted model.
        keys : sequence of str, default=("train_loss",)
            History keys to draw (``"train_loss"``, ``"u"``, ``"w"``, ``"rho"``).
        x : {"step", "epoch"}, default="step"
            Horizontal axis: SGD steps or epochs.
        ax : matplotlib Axes or None
            Where to draw.
        loglog : bool, default=False
            Log-log axes (power-law growth is a straight line).

        Returns
        -------
        display : TrainingCurveDisplay
        """
        history = estimator.history_
        if x == "step":
            positions = np.cumsum(history[:, "train_batch_count"])
        else:
            positions = np.asarray(history[:, "epoch"])
        curves = {key: np.asarray(history[:, key], dtype=float) for key in keys}
        return cls(positions, curves, xlabel="SGD steps" if x == "step" else "epoch").plot(
            ax=ax, loglog=loglog
        )

    def plot(self, ax=None, *, loglog=False):
        """Draw every curve.

        Parameters
        ----------
        ax : matplotlib Axes or None
            Where to draw.
        loglog : bool, default=False
            Log-log axes.

        Returns
        -------
        display : TrainingCurveDisplay
        """
        ax = _axes(ax, "TrainingCurveDisplay.plot")
        self.lines_ = {}
        for name, values in self.curves.items():
            (self.lines_[name],) = ax.plot(self.x, values, label=name)
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(self.xlabel)
        ax.legend(fontsize="small")
        self.ax_, self.figure_ = ax, ax.figure
        return self
