"""Training dynamics of the 6-parameter model: closed-form population losses, gradient-flow
ODE, phase detection and the theoretical plateau time (``../shared/math/induction_heads.md``
§5.4–5.6).

Stage II with the oracle first layer (``y_s = x_{s−1}``) has five parameters
``(p, g, w_K, w_Q, h)``; the losses decouple into ``L_G4(p, g)`` (exact, eq. 18) and
``L_IH2(w_K w_Q, h)`` (eq. 21, softmax replaced by ``exp/N`` for Gaussian tokens).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "PARAMETERS",
    "population_losses",
    "population_gradient",
    "simulate_population",
    "detect_phases",
    "plateau_time_theory",
]

PARAMETERS = ("p_tilde", "g", "p", "w_K", "w_Q", "h")


def _geometric_sum(p, n_terms: int):
    """``M(p) = Σ_{k=0}^{N−1} e^{−pk}``, summed term by term: smooth through p = 0."""
    k = torch.arange(n_terms, dtype=p.dtype)
    return torch.exp(-p * k).sum()


def population_losses(p, g, w_K, w_Q, h, *, seq_len, alpha, w_star):
    """Closed-form ``(L_G4, L_IH2)`` of Stage II for torch scalars (differentiable).

    ``L_G4`` is exact for any tokens with ``E x_i x_j = δ_ij`` (eq. 18); ``L_IH2`` is eq. (21)
    with ``w² = w_K w_Q``, valid while ``|w² ± w*²|`` stay below 1/2 (Gaussian tokens).
    """
    n = seq_len - 2
    g_star = alpha / (1 + alpha)
    M1, M2 = _geometric_sum(p, n), _geometric_sum(2 * p, n)
    loss_g4 = 0.5 * g_star**2 - g_star * g / M1 + 0.5 * g**2 * M2 / M1**2
    w2 = w_K * w_Q
    loss_ih2 = (
        (1 - 4 * w_star**4) ** -0.5 / (1 + alpha) ** 2
        - 2 * h * (1 - (w2 + w_star**2) ** 2) ** -0.5 / (1 + alpha)
        + h**2 * (1 - 4 * w2**2) ** -0.5
    ) / (2 * n)
    return loss_g4, loss_ih2


def population_gradient(p, g, w_K, w_Q, h, *, seq_len, alpha, w_star):
    """``(L_G4, L_IH2)`` and the gradient in ``(p, g, w_K, w_Q, h)``, in closed form (numpy).

    The same losses as :func:`population_losses`, differentiated by hand (checked against
    autograd in the tests) so that an Euler step costs microseconds.
    """
    n = seq_len - 2
    k = np.arange(n)
    e1, e2 = np.exp(-p * k), np.exp(-2 * p * k)
    M1, M2 = e1.sum(), e2.sum()
    dM1, dM2 = -(k * e1).sum(), -2 * (k * e2).sum()  # d/dp of M(p) and of M(2p)
    g_star = alpha / (1 + alpha)
    loss_g4 = 0.5 * g_star**2 - g_star * g / M1 + 0.5 * g**2 * M2 / M1**2
    d_g = -g_star / M1 + g * M2 / M1**2
    d_p = g_star * g * dM1 / M1**2 + 0.5 * g**2 * (dM2 / M1**2 - 2 * M2 * dM1 / M1**3)
    s2, w2 = w_star**2, w_K * w_Q
    B = (1 - (w2 + s2) ** 2) ** -0.5
    C = (1 - 4 * w2**2) ** -0.5
    dB = (w2 + s2) * B**3
    dC = 4 * w2 * C**3
    A = (1 - 4 * w_star**4) ** -0.5 / (1 + alpha) ** 2
    loss_ih2 = (A - 2 * h * B / (1 + alpha) + h**2 * C) / (2 * n)
    d_h = (-2 * B / (1 + alpha) + 2 * h * C) / (2 * n)
    d_w2 = (-2 * h * dB / (1 + alpha) + h**2 * dC) / (2 * n)
    return loss_g4, loss_ih2, np.array([d_p, d_g, d_w2 * w_Q, d_w2 * w_K, d_h])


def simulate_population(seq_len=40, alpha=1.0, w_star=0.49, init_scale=0.01, *, t_max=None,
                        step=0.5, eval_every=5.0) -> dict:
    """Euler steps of gradient flow on the population losses (separate ``w_K``, ``w_Q``).

    Parameters
    ----------
    seq_len : int, default=40
        ``L``.
    alpha, w_star : float
        The mixed target's ``α*`` and ``w*``.
    init_scale : float, default=0.01
        ``σ_init``: every parameter starts there.
    t_max : float or None
        Simulated time; ``None`` uses ``2 × plateau_time_theory + 1000``.
    step : float, default=0.5
        Euler step (0.1 gives the same phase times, math note §6).
    eval_every : float, default=5.0
        Recording interval.

    Returns
    -------
    history : dict of ndarray
        ``time``, ``G4``, ``IH2``, ``loss`` and the parameters ``p``, ``g``, ``w_K``,
        ``w_Q``, ``h`` (``p_tilde`` is infinite: oracle Stage I).
    """
    if t_max is None:
        t_max = 2 * plateau_time_theory(seq_len, alpha, w_star, init_scale) + 1000
    theta = np.full(5, float(init_scale))  # p, g, w_K, w_Q, h
    record_every = max(1, int(round(eval_every / step)))
    rows = []
    for i in range(int(math.ceil(t_max / step)) + 1):
        loss_g4, loss_ih2, grad = population_gradient(*theta, seq_len=seq_len, alpha=alpha,
                                                      w_star=w_star)
        if i % record_every == 0:
            rows.append((i * step, loss_g4, loss_ih2, loss_g4 + loss_ih2, *theta))
        theta = theta - step * grad
    columns = np.array(rows).T
    keys = ("time", "G4", "IH2", "loss", "p", "g", "w_K", "w_Q", "h")
    return dict(zip(keys, columns, strict=True))


def _first(times, condition, after=None):
    mask = np.asarray(condition, dtype=bool)
    if after is not None:
        mask &= times >= after
    index = np.flatnonzero(mask)
    return float(times[index[0]]) if index.size else float("nan")


def detect_phases(history: dict, *, alpha=1.0, w_star=0.49, time_key="time") -> dict:
    """The phase markers of math note §5.6 from a recorded history.

    Returns
    -------
    phases : dict
        ``T_I`` (``L_G4 ≤ 0.01 L_G4(0)``), ``T_o`` (``h ≥ h*``, else ``h ≥ 0.95 h*``), ``T_w``
        (``w_K w_Q ≥ (w*/2)²``), and after ``T_o``: ``T_II`` (``L_IH2 ≤ 0.99 L_IH2(T_o)``, the
        paper's threshold, fragile: the plateau drifts), ``T_half`` (0.5, robust) and
        ``T_III`` (0.01); ``plateau`` is ``L_IH2(T_o)``. NaN where not reached.
    """
    t = np.asarray(history[time_key], dtype=float)
    g4, ih2 = np.asarray(history["G4"]), np.asarray(history["IH2"])
    h_star = 1 / (1 + alpha)
    h = np.asarray(history["h"])
    T_o = _first(t, h >= h_star)
    if math.isnan(T_o):
        T_o = _first(t, h >= 0.95 * h_star)
    plateau = float(ih2[np.searchsorted(t, T_o)]) if not math.isnan(T_o) else float("nan")
    w2 = np.asarray(history["w_K"]) * np.asarray(history["w_Q"])
    return {
        "T_I": _first(t, g4 <= 0.01 * g4[0]),
        "T_o": T_o,
        "T_w": _first(t, w2 >= (w_star / 2) ** 2),
        "T_II": _first(t, ih2 <= 0.99 * plateau, after=T_o),
        "T_half": _first(t, ih2 <= 0.5 * plateau, after=T_o),
        "T_III": _first(t, ih2 <= 0.01 * plateau, after=T_o),
        "plateau": plateau,
    }


def plateau_time_theory(seq_len, alpha=1.0, w_star=0.49, init_scale=0.01) -> float:
    """Linearised emergence time ``ln(w*/σ_init) / λ`` of the induction head.

    ``λ = w*² (1 − w*⁴)^{−3/2} / ((1 + α*)² (L − 2))`` is the growth rate of ``w_K = w_Q`` on the
    plateau (math note §5.4); 2254 for the paper's Fig 3 setting.
    """
    rate = w_star**2 * (1 - w_star**4) ** -1.5 / ((1 + alpha) ** 2 * (seq_len - 2))
    return math.log(w_star / init_scale) / rate
