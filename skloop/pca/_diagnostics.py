"""What algorithm did the looped transformer learn? Pure functions behind its diagnostics.

Definitions follow ``../shared/math/power_method.md`` §8. The power-method structure is
``W_pv[21] = u I``, ``W_kq[12] = w I`` and every other entry zero; the learned gain is
``ρ = u·w`` and one loop is then ``v ← (I + ρΣ) v`` (normalized with LN).
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.data import MatrixBatch
from ..metrics import LeadingSubspace, angular_error, subspace_of_batch
from ._linalg import iterate_power

__all__ = [
    "active_blocks",
    "active_scalars",
    "structure_metrics",
    "growth_exponent",
    "PREDICTED_GROWTH",
    "predicted_contraction",
    "measured_contraction",
    "loop_trajectory",
]

# Exponent of ρ_t ∝ t^a predicted by the paper (Thm 4.1: u, w ∝ t^{1/4}; Thm 4.3: t^{1/6});
# without LN the layerwise gain converges to a fixed point (Thm 4.2).
PREDICTED_GROWTH = {
    ("end_to_end", "rms"): 0.5,
    ("layerwise", "rms"): 1 / 3,
    ("layerwise", None): 0.0,
}


def active_blocks(W_pv: np.ndarray, W_kq: np.ndarray):
    """The two power-method blocks ``W_pv[21]`` (bottom-left) and ``W_kq[12]`` (top-right)."""
    d = W_pv.shape[0] // 2
    return W_pv[d:, :d], W_kq[:d, d:]


def active_scalars(W_pv: np.ndarray, W_kq: np.ndarray) -> tuple[float, float]:
    """``u`` = mean diagonal of ``W_pv[21]``, ``w`` = mean diagonal of ``W_kq[12]``."""
    pv21, kq12 = active_blocks(W_pv, W_kq)
    return float(np.mean(np.diag(pv21))), float(np.mean(np.diag(kq12)))


def _isotropy(block: np.ndarray) -> tuple[float, float]:
    diagonal = np.diag(block)
    mean = np.mean(diagonal)
    spread = float(np.std(diagonal) / abs(mean)) if mean != 0 else float("inf")
    off = block - np.diag(diagonal)
    diag_norm = np.linalg.norm(diagonal)
    off_ratio = float(np.linalg.norm(off) / diag_norm) if diag_norm > 0 else float("inf")
    return spread, off_ratio


def structure_metrics(W_pv: np.ndarray, W_kq: np.ndarray) -> dict:
    """How close a layer is to the power-method structure.

    Returns
    -------
    metrics : dict
        ``u``, ``w``, ``rho`` (mean diagonals of the active blocks and their product);
        ``inactive_ratio`` (Frobenius norm outside the active blocks over that of the active
        blocks) and ``inactive_max`` (largest entry outside them); per active block
        ``*_diag_spread`` (std/|mean| of its diagonal) and ``*_offdiag_ratio``
        (``||B − Diag(B)||_F / ||Diag(B)||_F``).
    """
    pv21, kq12 = active_blocks(W_pv, W_kq)
    u, w = active_scalars(W_pv, W_kq)
    outside_pv, outside_kq = W_pv.copy(), W_kq.copy()
    d = W_pv.shape[0] // 2
    outside_pv[d:, :d] = 0.0
    outside_kq[:d, d:] = 0.0
    outside = np.sqrt(np.sum(outside_pv**2) + np.sum(outside_kq**2))
    active = np.sqrt(np.sum(pv21**2) + np.sum(kq12**2))
    metrics = {
        "u": u,
        "w": w,
        "rho": u * w,
        "inactive_ratio": float(outside / active) if active > 0 else float("inf"),
        "inactive_max": float(max(np.abs(outside_pv).max(), np.abs(outside_kq).max())),
    }
    for name, block in (("W_pv21", pv21), ("W_kq12", kq12)):
        spread, off_ratio = _isotropy(block)
        metrics[f"{name}_diag_spread"] = spread
        metrics[f"{name}_offdiag_ratio"] = off_ratio
    return metrics


def growth_exponent(steps, values, tail: float = 0.5) -> float:
    """Least-squares slope of ``log values`` against ``log steps`` over the last ``tail``.

    NaN when fewer than 3 points remain or a value is not positive.
    """
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    start = int(np.floor(len(steps) * (1 - tail)))
    steps, values = steps[start:], values[start:]
    if len(steps) < 3 or np.any(values <= 0) or np.any(steps <= 0):
        return float("nan")
    return float(np.polyfit(np.log(steps), np.log(values), 1)[0])


def predicted_contraction(subspace: LeadingSubspace, rho: float) -> np.ndarray:
    """Per-matrix factor ``(1 + ρλ_{r+1}) / (1 + ρλ_1)`` of the shifted power iteration."""
    ratio = subspace.eigengap_ratio  # λ_{r+1}/λ_1
    lam1 = subspace.eigenvalues[:, 0]
    return (1 + rho * ratio * lam1) / (1 + rho * lam1)


def measured_contraction(errors_start, errors_end, loops: int, floor_deg: float = 1e-9):
    """Per-loop decay ``(tan φ_end / tan φ_start)^{1/loops}`` from angles in degrees.

    NaN where the end angle has reached rounding level (``floor_deg``), where the rate is
    no longer measurable.
    """
    start = np.tan(np.radians(np.asarray(errors_start, dtype=float)))
    end = np.tan(np.radians(np.asarray(errors_end, dtype=float)))
    valid = (end > np.tan(np.radians(floor_deg))) & (start > 0)
    rate = np.full(start.shape, np.nan)
    rate[valid] = (end[valid] / start[valid]) ** (1.0 / loops)
    return rate


def no_ln_plateaus(X: np.ndarray, v: np.ndarray) -> dict:
    """Monte-Carlo fixed points of the no-LN layerwise losses on the manifold (Thm 4.2).

    With ``Σ = XᵀX/n`` per matrix and queries ``v`` (math note §4.3)::

        unnormalized target AᵀAv:  ρ*_U = n − 1/E[tr Σ²],  L*_U = 1 − 1/(d E[tr Σ²])
        normalized target Σv/‖Σv‖: ρ*_N = (E‖Σv‖ − 1/d)/E‖Σv‖²,
                                    L*_N = 2 − 2E[vᵀΣv/‖Σv‖] − (E‖Σv‖ − 1/d)²/E‖Σv‖²

    Parameters
    ----------
    X : ndarray of shape (N, n, d)
        Unit-norm points (one ``n`` for all matrices).
    v : ndarray of shape (N, d)
        Unit query vectors.

    Returns
    -------
    plateaus : dict
        ``rho_U``, ``loss_U``, ``rho_N``, ``loss_N``.
    """
    n, d = X.shape[1], X.shape[2]
    sigma = np.swapaxes(X, 1, 2) @ X / n
    trace_sq = np.mean(np.sum(sigma**2, axis=(1, 2)))
    sigma_v = np.einsum("mij,mj->mi", sigma, v)
    norm = np.linalg.norm(sigma_v, axis=1)
    mean_norm, mean_sq = np.mean(norm), np.mean(norm**2)
    alignment = np.mean(np.sum(v * sigma_v, axis=1) / norm)
    return {
        "rho_U": n - 1 / trace_sq,
        "loss_U": 1 - 1 / (d * trace_sq),
        "rho_N": (mean_norm - 1 / d) / mean_sq,
        "loss_N": 2 - 2 * alignment - (mean_norm - 1 / d) ** 2 / mean_sq,
    }


def loop_trajectory(batch: MatrixBatch, v: np.ndarray, components: np.ndarray, rho: float):
    """Errors per loop of a model's components next to the power method from the same queries.

    Parameters
    ----------
    batch : MatrixBatch
        Preprocessed matrices.
    v : ndarray of shape (N, d)
        The model's query vectors.
    components : ndarray of shape (n_loops, N, d)
        The model's unit read-out after every loop.
    rho : float
        The learned gain (shift of the shifted power method).

    Returns
    -------
    trajectory : dict
        ``loops``, ``components``, and the angular errors (degrees, ``(n_loops, N)``) of the
        model (``errors``), the power method (``power_errors``) and the shifted power method
        (``shifted_errors``).
    """
    max_loops = components.shape[0]
    subspace = subspace_of_batch(batch)
    X_t, n_t = torch.from_numpy(batch.data), torch.from_numpy(batch.n_points)

    def power_errors(shift):
        steps = iterate_power(X_t, n_t, torch.from_numpy(v[:, :, None]), max_loops, shift)
        return np.stack([angular_error(subspace, V[:, :, 0].numpy()) for V in steps])

    return {
        "loops": np.arange(1, max_loops + 1),
        "components": components,
        "errors": np.stack([angular_error(subspace, c) for c in components]),
        "power_errors": power_errors(None),
        "shifted_errors": power_errors(rho),
    }
