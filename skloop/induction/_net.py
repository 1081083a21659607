"""The skorch side of the induction estimators: their net (the paper's ½ MSE) and callbacks."""

from __future__ import annotations

import functools

import numpy as np
import torch
from sklearn.metrics import r2_score
from skorch.callbacks import Callback

from .._core.skorch import LoopNet, RefreshTrainingData, plain_module

__all__ = ["InductionNet", "RecordDynamics", "StopAtSlope", "resample_each_epoch"]


class InductionNet(LoopNet):
    """skorch net with the paper's loss ½ E‖TF(X) − y‖² (summed over outputs)."""

    def score(self, X, y):
        """R² of the predictions, as the estimators' ``score``: what skorch's
        ``EpochScoring(None)`` reports.

        Parameters
        ----------
        X : skorch Dataset, Subset of one, or tensor
            Token sequences.
        y : array-like of shape (n_sequences, n_outputs)
            Targets.

        Returns
        -------
        score : float
        """
        return float(r2_score(np.asarray(y).reshape(len(y), -1), self.predict(X)))

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(device=y_pred.device, dtype=y_pred.dtype)
        return 0.5 * ((y_pred - y_true) ** 2).sum(-1).mean()


def _sample(sampler, n_rows: int, rng) -> dict:
    X, y = sampler(n_rows, random_state=rng)
    return {"X": X, "y": y}


def resample_each_epoch(sampler, seed: int) -> Callback:
    """Online training: a fresh training set from ``sampler`` at the start of every epoch."""
    return RefreshTrainingData(functools.partial(_sample, sampler), seed, first_epoch=True)


class RecordDynamics(Callback):
    """Per epoch, on fixed evaluation data: iteration, gradient-flow time, total and partial
    losses, and the module's ``tracked_parameters()``.

    Parameters
    ----------
    X, y : Tensor
        The evaluation data.
    output_groups : dict
        Name of each partial loss → the target columns (a slice) it covers.
    """

    def __init__(self, X, y, output_groups):
        self.X, self.y = X, y
        self.output_groups = output_groups

    def initialize(self):
        self.iteration_ = 0
        self.stage_start_ = 0
        self.stage_ = 1
        self.stage_starts_ = {}
        return self

    def start_stage(self, net, stage):
        """Mark the start of a stage and keep its t = 0 evaluation in ``stage_starts_``."""
        self.stage_ = stage
        self.stage_start_ = self.iteration_
        self.stage_starts_[stage] = self._evaluate(net)

    def _evaluate(self, net) -> dict:
        module = plain_module(net)
        with torch.no_grad():
            X = self.X.to(net.device, next(module.parameters()).dtype)
            residual = (module(X) - self.y.to(X)) ** 2
        values = {"iteration": self.iteration_, "stage": self.stage_,
                  "time": net.lr * (self.iteration_ - self.stage_start_)}
        partial = {name: 0.5 * residual[:, columns].sum(-1).mean().item()
                   for name, columns in self.output_groups.items()}
        values["loss"] = sum(partial.values())
        values.update(partial)
        values.update(module.tracked_parameters())
        return values

    def on_epoch_end(self, net, **kwargs):
        self.iteration_ += net.history[-1, "train_batch_count"]
        for key, value in self._evaluate(net).items():
            net.history.record(key, value)


class StopAtSlope(Callback):
    """Stage I: stop once the first-layer slope p̃ reaches a target.

    Parameters
    ----------
    target : float or None
        The slope at which Stage I ends (``None``: never early).
    """

    def __init__(self, target):
        self.target = target
        self.active = False

    def on_epoch_end(self, net, **kwargs):
        if (self.active and self.target is not None
                and plain_module(net).p_tilde.item() >= self.target):
            raise KeyboardInterrupt  # skorch ends the fit loop cleanly on this signal


def monitored_rows(n_rows: int, online: bool, size: int = 1000):
    """Rows of the training set evaluated for ``history_`` every epoch: all of them online
    (the given evaluation set) or when few, else ``size`` evenly spaced ones (evaluating a
    large training set every epoch cost 30% of the fit)."""
    if online or n_rows <= size:
        return slice(None)
    return np.linspace(0, n_rows - 1, size).astype(int)
