"""What did a fitted LoopedTransformerPCA learn? Its inspection methods, as a mixin.

The numerics live in :mod:`skloop.pca._diagnostics`; these methods feed them the fitted
weights, the history and the model's own loop on the user's data.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .._core.params import Integral
from ..metrics import subspace_of_batch
from ._diagnostics import (
    PREDICTED_GROWTH,
    growth_exponent,
    loop_trajectory,
    measured_contraction,
    predicted_contraction,
    structure_metrics,
)
from ._inference import loop_outputs, normalized_outputs
from ._model import power_method_weights
from ._vectors import flip_signs

__all__ = ["InspectionMixin"]


class InspectionMixin:
    """``training_loss``, ``with_weights``, ``project_structure``, ``structure_report``,
    ``loop_trajectory``, ``contraction_factor`` of :class:`~skloop.LoopedTransformerPCA`."""

    def training_loss(self, X) -> float:
        """The training objective evaluated on ``X`` (e.g. a held-out test loss).

        Query vectors are drawn as at ``predict``; the depth is the training depth (``n_loops``
        end-to-end, one layer layerwise).

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices.

        Returns
        -------
        loss : float
        """
        batch = self._prepare(X, reset=False)
        inputs, projector = self._objective_inputs(batch, self._query_rng(), self._module_dtype())
        device = self.net_.device
        inputs = {key: value.to(device) for key, value in inputs.items()}
        with torch.no_grad(), self._torch_context():
            y = self.net_.infer(inputs)
            projector = None if projector is None else projector.to(device)
            return float(self.net_.get_loss(y, projector, X=inputs))

    def with_weights(self, W_pv, W_kq):
        """A fitted copy whose layer uses the given ``2d × 2d`` weights.

        For a hand-built transformer (e.g. :func:`~skloop.pca.power_method_weights`) or a
        training snapshot (:class:`WeightSnapshots`). Needs ``parametrization="full"``.

        Parameters
        ----------
        W_pv, W_kq : array-like of shape (2 n_features, 2 n_features)
            The new weights.

        Returns
        -------
        model : LoopedTransformerPCA
            A copy; ``self`` is unchanged.
        """
        check_is_fitted(self)
        shape = (2 * self.n_features_in_,) * 2
        if np.shape(W_pv) != shape or np.shape(W_kq) != shape:
            raise ValueError(f"W_pv and W_kq must have shape {shape}.")
        if not (np.all(np.isfinite(W_pv)) and np.all(np.isfinite(W_kq))):
            raise ValueError("W_pv and W_kq must be finite.")
        if self._module().parametrization != "full":
            raise ValueError("Replacing the weights needs parametrization='full'.")
        model = copy.deepcopy(self)
        module = model._module()
        with torch.no_grad():
            module.W_pv.copy_(torch.as_tensor(np.asarray(W_pv), dtype=module.W_pv.dtype))
            module.W_kq.copy_(torch.as_tensor(np.asarray(W_kq), dtype=module.W_kq.dtype))
        model._read_weights()
        return model

    def project_structure(self):
        """A copy whose layer keeps only the isotropic power-method part of the weights.

        The active blocks become ``u_ I`` and ``w_ I`` (their mean diagonals) and every other
        entry zero, which removes the finite-sample anisotropy behind the looped error floor:
        the copy is exactly :class:`PowerIterationPCA` with ``shift=rho_``.

        Returns
        -------
        model : LoopedTransformerPCA
            A fitted copy; ``self`` is unchanged.
        """
        check_is_fitted(self)
        if self._module().parametrization == "scalar":
            return copy.deepcopy(self)
        W_pv, W_kq = power_method_weights(self.n_features_in_, self.u_, self.w_)
        return self.with_weights(W_pv.numpy(), W_kq.numpy())

    def structure_report(self) -> dict:
        """How close the learned layer is to the power method, and how its gain grew.

        Returns
        -------
        report : dict
            The :func:`~skloop.pca._diagnostics.structure_metrics` of ``W_pv_``, ``W_kq_``
            (``rho``, ``u``, ``w``, ``inactive_ratio``, ``inactive_max``, diagonal spread and
            off-diagonal ratio of each active block), plus ``growth_exponent`` (log-log slope
            of ρ against SGD steps over the second half of training) and
            ``predicted_growth_exponent`` (1/2 end-to-end, 1/3 layerwise with LN, 0 without
            LN, ``None`` where the paper has no prediction). The paper's rates are
            asymptotic: short runs give smaller or larger slopes (math note §1.11).
        """
        check_is_fitted(self)
        report = structure_metrics(self.W_pv_, self.W_kq_)
        batches = np.asarray(self.history_[:, "train_batch_count"], dtype=float)
        report["growth_exponent"] = growth_exponent(np.cumsum(batches), self.history_[:, "rho"])
        fitted = self._architecture_  # the configuration trained, whatever set_params did since
        report["predicted_growth_exponent"] = PREDICTED_GROWTH.get(
            (fitted["objective"], fitted["normalization"])
        )
        return report

    def loop_trajectory(self, X, max_loops=25) -> dict:
        """The prediction after every loop, next to the power method from the same queries.

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices.
        max_loops : int, default=25
            Number of loops.

        Returns
        -------
        trajectory : dict
            ``loops`` (1..max_loops); ``components`` ``(max_loops, n_matrices, n_features)``
            (unit, sign-flipped); angular errors in degrees ``(max_loops, n_matrices)`` of the
            model (``errors``), of the classical power method (``power_errors``) and of the
            shifted power method with the learned gain (``shifted_errors``), all started from
            the model's query vectors.
        """
        if not isinstance(max_loops, Integral) or isinstance(max_loops, bool) or max_loops < 1:
            raise ValueError(f"max_loops must be an int >= 1; got {max_loops!r}.")
        batch = self._prepare(X, reset=False)
        v = self._query_vectors(batch)[:, :, 0]
        with self._torch_context():
            outputs = loop_outputs(self._module(), batch.data, batch.n_points, v, max_loops,
                                   every_loop=True)
        components = flip_signs(normalized_outputs(outputs, max_loops))
        return loop_trajectory(batch, v, components, float(self.rho_))

    def contraction_factor(self, X, loops=(5, 20)) -> dict:
        """Predicted vs measured per-loop contraction of the error on each matrix.

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices.
        loops : tuple of int, default=(5, 20)
            The decay is measured as ``(tan φ_b / tan φ_a)^{1/(b−a)}`` between these loops.

        Returns
        -------
        factors : dict
            ``predicted`` ``(1 + ρλ_{r+1}) / (1 + ρλ_1)`` and ``measured`` per matrix (NaN
            where the error already reached rounding level), and their medians
            ``predicted_median``, ``measured_median``.
        """
        first, last = loops
        if not 1 <= first < last:
            raise ValueError(f"loops must be two increasing positive ints; got {loops!r}.")
        trajectory = self.loop_trajectory(X, max_loops=last)
        errors = trajectory["errors"]
        measured = measured_contraction(errors[first - 1], errors[last - 1], last - first)
        batch = self._prepare(X, reset=False)
        predicted = predicted_contraction(subspace_of_batch(batch), self.rho_)
        return {
            "predicted": predicted,
            "measured": measured,
            "predicted_median": float(np.median(predicted)),
            "measured_median": float(np.nanmedian(measured)),
        }
