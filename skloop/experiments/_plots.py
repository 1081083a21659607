"""Figure helpers shared by the demo and the reproductions (matplotlib imported by callers).

Conventions of every figure the commands write: a title, axis labels with units, the statistic
over matrices named on the axis (median or mean), and legends outside the data.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PHASE_MARKERS", "mark_phases", "legend_outside", "error_trajectories"]

# The four phase markers of the induction-head dynamics (math note §5.6), with what each marks.
PHASE_MARKERS = {
    "T_I": ("4-gram learned", "tab:green", "-."),
    "T_II": ("induction loss leaves the plateau", "tab:olive", ":"),
    "T_half": ("induction head emerges (L_IH2 halved)", "tab:red", "--"),
    "T_III": ("induction head learned", "tab:purple", "-"),
}


def mark_phases(axes, phases: dict) -> None:
    """Vertical lines at ``T_I``, ``T_II``, ``T_half``, ``T_III`` on every axis in ``axes``.

    The legend entry of each line (on the first axis) names the marker, its time and what it
    marks; a marker that was not reached (NaN) gets a legend entry saying so and no line.
    """
    axes = list(np.atleast_1d(axes))
    for key, (meaning, color, style) in PHASE_MARKERS.items():
        value = phases.get(key, float("nan"))
        if value is None or math.isnan(value):
            axes[0].plot([], [], color=color, ls=style, lw=1,
                         label=f"{key} not reached ({meaning})")
            continue
        for i, ax in enumerate(axes):
            ax.axvline(value, color=color, ls=style, lw=1,
                       label=f"{key} = {value:g} ({meaning})" if i == 0 else None)


def legend_outside(figure, axes, *, ncol=2, fontsize="small") -> None:
    """One legend for the figure, below the axes, from the handles of every axis (deduplicated
    by label), with room made for it."""
    handles, labels = {}, []
    for ax in np.atleast_1d(axes).ravel():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    rows = math.ceil(len(labels) / ncol)
    figure.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    figure.legend([handles[label] for label in labels], labels, loc="lower center", ncol=ncol,
                  fontsize=fontsize, frameon=False)


def error_trajectories(ax, trajectories: dict, *, baselines_from: str) -> None:
    """Error vs loops: the median (solid) and the mean (dashed) over matrices, per model.

    ``trajectories`` maps a legend label to a ``loop_trajectory`` dict; the power method's
    curves come from the trajectory named ``baselines_from`` (same queries).
    """
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for color, (label, trajectory) in zip(colors, trajectories.items(), strict=False):
        ax.semilogy(trajectory["loops"], np.median(trajectory["errors"], axis=1), color=color,
                    label=f"{label}, median")
        ax.semilogy(trajectory["loops"], np.mean(trajectory["errors"], axis=1), color=color,
                    ls="--", label=f"{label}, mean")
    power = trajectories[baselines_from]
    ax.semilogy(power["loops"], np.median(power["power_errors"], axis=1), color="k",
                label="power method, median")
    ax.semilogy(power["loops"], np.mean(power["power_errors"], axis=1), color="k", ls="--",
                label="power method, mean")
    ax.set_xlabel("loops K (power iterations for the power method)")
    ax.set_ylabel("angular error to the top eigenvector (degrees)")
    ax.grid(True, which="major", alpha=0.3)
