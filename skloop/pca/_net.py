"""The skorch side of LoopedTransformerPCA: its net (the paper's objectives as the loss) and
its training callbacks."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.utils import to_tensor

from .._core.skorch import LoopNet, RefreshTrainingData, dataset_arrays, plain_module
from ._diagnostics import active_scalars
from ._objectives import layerwise_loss, one_step_target, subspace_loss
from ._vectors import random_query_vectors

__all__ = ["LoopedPCANet", "WeightSnapshots", "module_weights", "record_active_scalars",
           "record_validation_angle", "redraw_queries"]


def module_weights(net) -> tuple[np.ndarray, np.ndarray]:
    """The net's ``2d × 2d`` weights ``(W_pv, W_kq)`` as float64 arrays."""
    module = plain_module(net)
    with torch.no_grad():
        W_pv, W_kq = module.weights(module.n_features)
    return (W_pv.detach().cpu().numpy().astype(np.float64),
            W_kq.detach().cpu().numpy().astype(np.float64))


class LoopedPCANet(LoopNet):
    """skorch net whose loss is one of the paper's objectives (target derived from X).

    Parameters
    ----------
    objective : {"end_to_end", "layerwise"}
        End-to-end: the squared distance of the looped output to the leading subspace, whose
        projector is the net's ``y``; layerwise: one power step from ``v``.
    target : {"normalized", "unnormalized"}
        Layerwise target (see :func:`~skloop.pca._objectives.one_step_target`).
    normalize_output_in_loss : bool
        End-to-end loss on ``y/||y||``.
    """

    def __init__(self, *args, objective="end_to_end", target="normalized",
                 normalize_output_in_loss=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.objective = objective
        self.target = target
        self.normalize_output_in_loss = normalize_output_in_loss

    def score(self, X, y=None):
        """Mean squared cosine of the read-out (at the training depth) to the top eigenvector
        of each matrix: 1 is perfect. What skorch's ``EpochScoring(None)`` reports.

        Parameters
        ----------
        X : skorch Dataset, Subset of one, or dict of tensors
            The net's inputs (``X``, ``n_points``, ``v``).
        y : ignored
            The projectors are recomputed from ``X``.

        Returns
        -------
        score : float
        """
        if isinstance(X, dict):
            points = X["X"]
        else:
            data, _, rows = dataset_arrays(X)
            points = data["X"] if rows is None else data["X"][rows]
        with torch.no_grad():
            top = torch.linalg.eigh((points.transpose(1, 2) @ points).double())[1][:, :, -1]
        y_pred = torch.as_tensor(self.predict(X), dtype=torch.float64)
        cosine = (y_pred * top).sum(-1) / y_pred.norm(dim=-1).clamp_min(1e-300)
        return float((cosine**2).mean())

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if self.objective == "end_to_end":
            projector = to_tensor(y_true, device=self.device)
            return subspace_loss(y_pred, projector, self.normalize_output_in_loss)
        inputs = to_tensor(X, device=self.device)
        target = one_step_target(inputs["X"], inputs["n_points"], inputs["v"], self.target)
        return layerwise_loss(y_pred, target)


class _RecordActiveScalars(Callback):
    """Log ``u``, ``w`` and ``ρ = u·w`` of the power-method blocks after every epoch."""

    def on_epoch_end(self, net, **kwargs):
        u, w = active_scalars(*module_weights(net))
        net.history.record("u", u)
        net.history.record("w", w)
        net.history.record("rho", u * w)


def record_active_scalars() -> Callback:
    """The callback that logs ``u``, ``w``, ``rho`` in the history after every epoch."""
    return _RecordActiveScalars()


class _RecordValidationAngle(Callback):
    """With a validation split: the mean angular error (degrees) of the model at the
    inference depth on the held-out matrices, as ``valid_angular_error`` (and
    ``valid_angular_error_best``, as skorch's scores), every epoch."""

    def __init__(self, n_loops):
        self.n_loops = n_loops

    def initialize(self):
        self.eigenvectors_ = None
        self.best_ = np.inf
        return self

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        if dataset_valid is None:
            return
        X, _, rows = dataset_arrays(dataset_valid)
        inputs = {key: value if rows is None else value[rows] for key, value in X.items()}
        with torch.no_grad():
            if self.eigenvectors_ is None:  # the held-out set is fixed for the whole fit
                points = inputs["X"].double()
                sigma = points.transpose(1, 2) @ points  # the scale of Σ does not matter
                self.eigenvectors_ = torch.linalg.eigh(sigma)[1][:, :, -1]
            y = plain_module(net)(**inputs, n_loops=self.n_loops).double()
            top = self.eigenvectors_.to(y.device)
            along = (y * top).sum(-1)
            outside = (y - along[:, None] * top).norm(dim=-1)
            angle = torch.rad2deg(torch.atan2(outside, along.abs())).mean().item()
        net.history.record("valid_angular_error", angle)
        # As skorch's scoring callbacks do: Checkpoint(monitor="valid_angular_error_best").
        net.history.record("valid_angular_error_best", bool(angle < self.best_))
        self.best_ = min(self.best_, angle)


def record_validation_angle(n_loops: int) -> Callback:
    """The callback that logs ``valid_angular_error`` (mean degrees) when there is a split."""
    return _RecordValidationAngle(n_loops)


def _fresh_queries(n_features: int, n_rows: int, rng) -> dict:
    return {"X": {"v": random_query_vectors(rng, n_rows, n_features)[:, :, 0]}}


def redraw_queries(n_features: int, seed: int) -> Callback:
    """Online training: fresh query vectors for every matrix at each epoch after the first
    (the first keeps the queries drawn in ``fit``)."""
    return RefreshTrainingData(functools.partial(_fresh_queries, n_features), seed,
                               first_epoch=False)


class WeightSnapshots(Callback):
    """Keep copies of the looped layer's weights during training.

    Pass an instance in ``LoopedTransformerPCA(callbacks=[...])``; after ``fit`` its
    ``snapshots_`` list holds one dict per recorded epoch with ``epoch``, ``step`` (SGD steps
    so far), ``W_pv`` and ``W_kq``. Turn one back into a model with
    ``model.with_weights(s["W_pv"], s["W_kq"])``.

    Parameters
    ----------
    epochs : iterable of int or None, default=None
        Epochs (1-based) to record; ``None`` records every epoch. Any iterable works; a
        one-shot iterator (a generator) is read once, here, into a tuple, so that every fit
        and every clone sees all its epochs.
    """

    def __init__(self, epochs=None):
        self.epochs = tuple(epochs) if isinstance(epochs, Iterator) else epochs

    def initialize(self):
        self.snapshots_ = []
        self._steps = 0
        self._epochs = None if self.epochs is None else frozenset(int(e) for e in self.epochs)
        return self

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        self._steps += net.history[-1, "train_batch_count"]
        if self._epochs is None or epoch in self._epochs:
            W_pv, W_kq = module_weights(net)
            self.snapshots_.append({"epoch": epoch, "step": self._steps, "W_pv": W_pv,
                                    "W_kq": W_kq})
