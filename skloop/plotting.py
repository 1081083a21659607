"""scikit-learn-style Display objects for the looped transformer and the induction models
(matplotlib imported lazily).

Each Display holds the numbers it draws (so they can be tabulated too), has a
``from_estimator`` constructor and a ``plot`` method that returns the Display with ``ax_`` (or
``axes_``) and ``figure_`` set, like :class:`sklearn.metrics.RocCurveDisplay`.
"""

from __future__ import annotations

import numpy as np

from .induction._mechanism import (
    duplicate_token_scores,
    induction_scores,
    previous_token_scores,
)

__all__ = [
    "AttentionPatternDisplay",
    "HeadScoresDisplay",
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


def _token_labels(tokens: np.ndarray) -> list:
    """Axis labels of a sequence ``(L, d)``: the value of 1-dimensional tokens, else the
    position."""
    if tokens.shape[1] == 1:
        return [f"{value:+.2g}" for value in tokens[:, 0]]
    return [str(position) for position in range(len(tokens))]


class AttentionPatternDisplay:
    """Attention patterns of one sequence: a heatmap per layer and head (query × key).

    Parameters
    ----------
    patterns : list of ndarray of shape (n_heads, n_queries, seq_len)
        Each layer's ``blocks.u.attn.hook_pattern`` for the sequence; ``n_queries`` is
        ``seq_len`` or the last positions only (the 6-parameter model's layer 2).
    tokens : ndarray of shape (seq_len, n_features)
        The sequence (its values label the axes when ``n_features == 1``).
    """

    def __init__(self, patterns, tokens):
        self.patterns = [np.asarray(p) for p in patterns]
        self.tokens = np.asarray(tokens).reshape(len(tokens), -1)

    @classmethod
    def from_estimator(cls, estimator, X, *, sequence=0, axes=None, cmap="viridis"):
        """Draw the patterns of a fitted induction estimator on one sequence of ``X``.

        Parameters
        ----------
        estimator : fitted InductionHeadRegressor or InductionDynamicsRegressor
            Its ``run_with_cache`` gives the patterns.
        X : array-like of shape (n_sequences, seq_len, n_features)
            Sequences to choose from.
        sequence : int, default=0
            Index of the sequence drawn.
        axes : 2-D array of matplotlib Axes or None
            ``n_layers × max_heads`` axes; a new figure when None.
        cmap : str, default="viridis"
            Colour map (weights in [0, 1]).

        Returns
        -------
        display : AttentionPatternDisplay
        """
        tokens = np.asarray(X)[sequence : sequence + 1]
        names = [n for n in estimator.hook_names() if n.endswith("attn.hook_pattern")]
        cache = estimator.run_with_cache(tokens, names=names)
        return cls([cache[name][0] for name in names], tokens[0]).plot(axes=axes, cmap=cmap)

    def plot(self, axes=None, *, cmap="viridis"):
        """Draw one heatmap per layer and head; unused axes are hidden.

        Parameters
        ----------
        axes : 2-D array of matplotlib Axes or None
            ``n_layers × max_heads`` axes; a new figure when None.
        cmap : str, default="viridis"
            Colour map.

        Returns
        -------
        display : AttentionPatternDisplay
            With ``images_[u][h]`` (the ``AxesImage`` of layer ``u``, head ``h``), ``axes_``
            and ``figure_``.
        """
        check_matplotlib_support("AttentionPatternDisplay.plot")
        import matplotlib.pyplot as plt

        n_heads = max(len(p) for p in self.patterns)
        if axes is None:
            _, axes = plt.subplots(len(self.patterns), n_heads, squeeze=False,
                                   figsize=(3 * n_heads, 3 * len(self.patterns)))
        axes = np.asarray(axes).reshape(len(self.patterns), n_heads)
        labels = _token_labels(self.tokens)
        L = len(labels)
        self.images_ = []
        for u, (pattern, row) in enumerate(zip(self.patterns, axes, strict=True)):
            self.images_.append([])
            for h, ax in enumerate(row):
                if h >= len(pattern):
                    ax.set_visible(False)
                    continue
                n_queries = pattern.shape[1]
                image = ax.imshow(pattern[h], cmap=cmap, vmin=0, vmax=1, aspect="auto")
                ax.set_xticks(range(L), labels, fontsize="x-small", rotation=90)
                ax.set_yticks(range(n_queries), labels[L - n_queries :], fontsize="x-small")
                ax.set_title(f"layer {u}, head {h}", fontsize="small")
                ax.set_xlabel("key")
                ax.set_ylabel("query")
                self.images_[-1].append(image)
        self.axes_, self.figure_ = axes, axes[0, 0].figure
        return self


_HEAD_SCORES = {
    "previous_token": previous_token_scores,
    "induction": induction_scores,
    "duplicate_token": duplicate_token_scores,
}


class HeadScoresDisplay:
    """One mechanism score per layer and head, as an annotated heatmap.

    Parameters
    ----------
    scores : ndarray of shape (n_layers, max_heads)
        NaN where a layer has fewer heads (as :func:`skloop.induction.previous_token_scores`
        returns them).
    score_name : str, default="score"
        Title of the plot.
    """

    def __init__(self, scores, score_name="score"):
        self.scores = np.asarray(scores, dtype=float)
        self.score_name = score_name

    @classmethod
    def from_estimator(cls, estimator, X, *, score="previous_token", ax=None, cmap="Blues"):
        """Compute a head score of a fitted induction estimator on ``X`` and draw it.

        Parameters
        ----------
        estimator : InductionHeadRegressor or InductionDynamicsRegressor
            Fitted (or hand-built) model.
        X : array-like of shape (n_sequences, seq_len, n_features)
            Token sequences; twice-repeated blocks for ``"induction"`` and
            ``"duplicate_token"`` (:func:`skloop.datasets.make_repeated_tokens`).
        score : {"previous_token", "induction", "duplicate_token"}, default="previous_token"
            Which score: :func:`skloop.induction.previous_token_scores`,
            :func:`~skloop.induction.induction_scores` or
            :func:`~skloop.induction.duplicate_token_scores`.
        ax : matplotlib Axes or None
            Where to draw.
        cmap : str, default="Blues"
            Colour map.

        Returns
        -------
        display : HeadScoresDisplay
        """
        if score not in _HEAD_SCORES:
            raise ValueError(f"score must be one of {sorted(_HEAD_SCORES)}; got {score!r}.")
        values = _HEAD_SCORES[score](estimator, X)
        return cls(values, f"{score.replace('_', '-')} score").plot(ax=ax, cmap=cmap)

    def plot(self, ax=None, *, cmap="Blues"):
        """Draw the scores (colour in [0, 1]) with their values written in the cells.

        Parameters
        ----------
        ax : matplotlib Axes or None
            The axes to draw on; a new figure when None.
        cmap : str, default="Blues"
            Sequential colour map of the cells.

        Returns
        -------
        display : HeadScoresDisplay
            With ``image_``, ``texts_``, ``ax_`` and ``figure_``.
        """
        ax = _axes(ax, "HeadScoresDisplay.plot")
        self.image_ = ax.imshow(np.ma.masked_invalid(self.scores), cmap=cmap, vmin=0, vmax=1)
        self.texts_ = [
            ax.text(h, u, f"{value:.2f}", ha="center", va="center",
                    color="white" if value > 0.6 else "black")
            for (u, h), value in np.ndenumerate(self.scores) if np.isfinite(value)
        ]
        ax.set_xticks(range(self.scores.shape[1]))
        ax.set_yticks(range(self.scores.shape[0]))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(self.score_name)
        ax.figure.colorbar(self.image_, ax=ax, fraction=0.046)
        self.ax_, self.figure_ = ax, ax.figure
        return self
