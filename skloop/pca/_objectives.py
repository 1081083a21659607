"""Training objectives of the looped transformer (pure torch functions).

``../shared/math/power_method.md`` §4: the end-to-end looped loss (Thm 4.1) and the one-layer
losses with and without LN (Thms 4.2, 4.3).
"""

from __future__ import annotations

import torch

from ._linalg import scaled_matrices, unit_vectors

__all__ = ["learning_rate", "subspace_loss", "one_step_target", "layerwise_loss"]


def subspace_loss(y: torch.Tensor, projector: torch.Tensor, normalize_output: bool = True):
    """Mean squared distance ``Dist²(y, V) = ||y||² - yᵀ P_V y`` over the batch.

    Parameters
    ----------
    y : Tensor of shape (B, d)
        Model outputs.
    projector : Tensor of shape (B, d, d)
        Orthogonal projectors onto each matrix's leading principal subspace.
    normalize_output : bool, default=True
        Use ``y / ||y||``. Taken literally (``False``) the loss has a degenerate minimum at
        ``y → 0``, which random or perturbed inits reach at large angles (math note §1.3); on
        the power-method manifold with LN both forms agree (``||y|| = 1``).
    """
    if normalize_output:
        y = unit_vectors(y)  # exact at any scale; a zero output stays zero
    inside = torch.einsum("bi,bij,bj->b", y, projector, y)
    return ((y * y).sum(-1) - inside).mean()


def one_step_target(X, n_points, v, target: str = "normalized"):
    """Target of the layerwise objective: one power step from ``v``.

    ``"normalized"``: ``Σv / ||Σv||`` with ``Σ = XᵀX / n``; ``"unnormalized"``: ``XᵀX v`` (no
    ``1/n``, math note §1.7: with ``1/n`` the optimal gain would be negative).
    """
    if target == "unnormalized":
        return (X.transpose(1, 2) @ (X @ v[:, :, None]))[:, :, 0]  # (B, d)
    # Only the direction counts: scale extreme matrices first (their products would under- or
    # overflow), an exact power of two that leaves ordinary data bit-identical.
    X = scaled_matrices(X)[0]
    return unit_vectors((X.transpose(1, 2) @ (X @ v[:, :, None]))[:, :, 0])


def layerwise_loss(y: torch.Tensor, target: torch.Tensor):
    """Mean squared error ``E||y - target||²`` (summed over coordinates)."""
    return ((y - target) ** 2).sum(-1).mean()


# lr="auto" for SGD, times d (the scalars move by ~lr/d per step). Measured at d = 8, 13 on
# Task 1/2 and wine (2000 matrices, 40 epochs): the LN layerwise manifold is stable and takes
# large steps; the end-to-end manifold is a saddle that large steps leave (wine, lr = d: ρ → −965);
# the no-LN unnormalized quadratic has curvature ~ n E[tr Σ²], and wine diverges at 0.5 d.
_AUTO_LR_PER_FEATURE = {
    ("layerwise", "rms", "normalized"): 2.0,
    ("layerwise", None, "unnormalized"): 0.25,
}


def learning_rate(lr, n_features: int, *, sgd: bool, configuration: tuple, scalar: bool) -> float:
    """The step size of a fit: ``lr``, or for ``"auto"`` the measured rule above.

    Parameters
    ----------
    lr : float or "auto"
        The estimator's ``lr``.
    n_features : int
        ``d``.
    sgd : bool
        Plain SGD (``"auto"``: scaled with ``d``) or an adaptive optimizer (``"auto"``: 0.03).
    configuration : tuple
        ``(objective, normalization, target)``.
    scalar : bool
        The scalar parametrization: the gradient in ``u`` is ``d`` times that of each diagonal
        entry of the full model's block (math note §3.3), so dividing SGD's step by ``d``
        follows the same trajectory; Adam's step does not scale with the gradient.

    Returns
    -------
    lr : float
    """
    if lr == "auto":
        lr = _AUTO_LR_PER_FEATURE.get(configuration, 0.5) * n_features if sgd else 0.03
    lr = float(lr)
    return lr / n_features if scalar and sgd else lr
