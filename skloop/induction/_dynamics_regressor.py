"""InductionDynamicsRegressor: the 6-parameter model of the induction-head paper, trained to
show its training dynamics (the four phases, Figs 3, 9 and 10)."""

from __future__ import annotations

import numpy as np
from sklearn.utils._param_validation import StrOptions

from .._core.estimator import document_training_parameters
from .._core.params import AppliesWhen, Integral, Number, Real, applies_when
from .._core.skorch import plain_module
from ._base import BaseInductionRegressor, document_online_parameters
from ._dynamics import detect_phases
from ._net import InductionNet, StopAtSlope
from ._reparameterized import ReparameterizedInduction

__all__ = ["InductionDynamicsRegressor"]

_POSITIVE = Number(Real, 0, None, closed="neither")


def _trains_stage1(params) -> bool:
    return params["training"] == "layerwise" and params["stage1"] == "train"


@document_online_parameters
@document_training_parameters
class InductionDynamicsRegressor(BaseInductionRegressor):
    """The paper's 6-parameter model (eqs. 16–17), trained to show the four phases.

    Layer 1 is a previous-token head with slope ``p̃``; layer 2 has an RPE-only head (weight
    ``g``, slope ``p``: the 4-gram part) and a dot-product-only head (``w_K``, ``w_Q``, output
    ``h``: the in-context 2-gram, the induction head). For tokens of dimension ``d = 1`` (Fig 3)
    all six parameters start at ``init_scale``; for ``d > 1`` (the Fig 10 lift) ``W_K``, ``W_Q``
    are ``d × d`` matrices drawn Gaussian with ``‖·‖_F = init_scale``. The target has ``2 d``
    columns, the mixed 4-gram group then the induction group
    (``make_induction_head_task("mixed", ...)`` or :class:`~skloop.datasets.InductionTaskSampler`).

    Parameters
    ----------
    training : {"layerwise", "joint"}, default="layerwise"
        With ``stage1="train"``: ``"layerwise"`` trains the first-layer slope ``p̃`` alone
        (Stage I), then the five second-layer parameters with ``p̃`` frozen (Stage II, the
        paper's recipe); ``"joint"`` trains all six together. Under the oracle first layer
        there is no ``p̃`` to train and both are the same run (only the default is accepted).
    stage1 : {"oracle", "train"}, default="oracle"
        ``"oracle"`` uses ``y_s = x_{s−1}`` exactly (``p̃ = ∞``, the regime Theorem 4.5
        analyses); ``"train"`` learns ``p̃`` (Stage I as the paper specifies it leaves
        ``p̃ ≈ 0.94`` and floors the 4-gram loss, math note §5.7).
    stage1_epochs : int, default=10
        Epochs of Stage I (only with ``training="layerwise"``, ``stage1="train"``).
    stage1_lr : float or None, default=None
        Stage I learning rate (``None``: ``lr``; only with a trained Stage I).
    stage1_target_p : float or None, default=None
        End Stage I early once ``p̃`` reaches this value (only with a trained Stage I).
    %(online_parameters)s
    init_scale : float, default=0.01
        ``σ_init`` of the six parameters (eq. 9).
    optimizer : {"sgd", "adam"}, default="sgd"
        SGD (the paper's Figs 3, 9) or Adam (Fig 10).
    lr : float, default=0.5
        Learning rate of Stage II (and of Stage I unless ``stage1_lr``); the gradient-flow
        time of ``history_`` is ``lr × iterations``.
    batch_size : int, default=1000
        Sequences per step.
    max_epochs : int, default=20
        Epochs of Stage II (of the whole run with ``training="joint"``).
    %(training_parameters)s

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained net (``net_.module_`` is the torch module).
    n_features_in_ : int
        Token dimension ``d`` seen in ``fit``.
    n_outputs_ : int
        Number of target columns, ``2 d``.
    history_ : skorch.History
        Per epoch, on the evaluation data (online: the ``X, y`` given to ``fit``; offline: a
        fixed, evenly spaced subset of at most 1000 training sequences): ``train_loss``,
        ``iteration``, ``stage``, ``time`` (``lr × iterations`` since the stage began),
        ``loss``, the partial losses ``G4`` and ``IH2`` (``½ E‖·‖²`` of each output group;
        their sum is ``loss``) and the six parameters ``p_tilde``, ``g``, ``p``, ``w_K``,
        ``w_Q``, ``h`` (``w_K``, ``w_Q`` are Frobenius norms for ``d > 1``).
    stage_starts_ : dict
        The same quantities at the start (t = 0) of each stage (keys 1, 2).
    phases_ : dict
        The phase markers ``T_I, T_o, T_w, T_II, T_half, T_III`` and the plateau
        ``L_IH2(T_o)`` on the Stage II time axis (see :func:`skloop.induction.detect_phases`),
        with ``α*``, ``w*`` from the sampler when it has them, else ``α*`` fitted from the data
        and ``w*`` from the learned ``w_K w_Q``.

    See Also
    --------
    InductionHeadRegressor : the full ALiBi transformer.
    skloop.induction.simulate_population : the population gradient flow of the same model.

    References
    ----------
    M. Wang, R. Yu, W. E, L. Wu, *How Transformers Implement Induction Heads: Approximation
    and Optimization Analysis*, arXiv:2410.11474.

    Examples
    --------
    >>> from skloop import InductionDynamicsRegressor
    >>> from skloop.datasets import make_induction_head_task
    >>> X, y = make_induction_head_task("mixed", 500, seq_len=20, random_state=0)
    >>> model = InductionDynamicsRegressor(max_epochs=3, random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (500, 2)
    >>> sorted(model.phases_)[:3]
    ['T_I', 'T_II', 'T_III']
    """

    _parameter_constraints = {
        **BaseInductionRegressor._parameter_constraints,
        "training": [StrOptions({"layerwise", "joint"})],
        "stage1": [StrOptions({"oracle", "train"})],
        "stage1_epochs": [Number(Integral, 1, None, closed="left")],
        "stage1_lr": [_POSITIVE, None],
        "stage1_target_p": [_POSITIVE, None],
        "init_scale": [_POSITIVE],
    }
    _trained_stage1 = AppliesWhen(_trains_stage1, "training='layerwise' and stage1='train'")
    _parameter_applies = {
        **BaseInductionRegressor._parameter_applies,
        # Under the oracle p̃ is outside the graph: "joint" and "layerwise" train identically.
        "training": applies_when("stage1", "train"),
        "stage1_epochs": _trained_stage1,
        "stage1_lr": _trained_stage1,
        "stage1_target_p": _trained_stage1,
    }
    _saved_attributes = (*BaseInductionRegressor._saved_attributes, "phases_")
    _architecture_parameters = ("training", "stage1", "init_scale", "dtype")
    _min_seq_len = 3  # layer 2 reads keys s = 2..L−1

    def __init__(
        self,
        *,
        training="layerwise",
        stage1="oracle",
        stage1_epochs=10,
        stage1_lr=None,
        stage1_target_p=None,
        sampler=None,
        steps_per_epoch=100,
        init_scale=0.01,
        optimizer="sgd",
        lr=0.5,
        batch_size=1000,
        max_epochs=20,
        train_split=None,
        warm_start=False,
        dtype="float32",
        device="auto",
        compile=False,
        n_threads=1,
        random_state=None,
        verbose=0,
        callbacks=None,
        **skorch_params,
    ):
        self.training = training
        self.stage1 = stage1
        self.stage1_epochs = stage1_epochs
        self.stage1_lr = stage1_lr
        self.stage1_target_p = stage1_target_p
        self.sampler = sampler
        self.steps_per_epoch = steps_per_epoch
        self.init_scale = init_scale
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.dtype = dtype
        self.device = device
        self.compile = compile
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.train_split = train_split
        self.warm_start = warm_start
        self._store_routed(skorch_params)

    def _check_shapes(self, n_features, n_outputs):
        if n_outputs != 2 * n_features:
            raise ValueError(
                "InductionDynamicsRegressor needs 2 n_features target columns (the mixed "
                f"4-gram + induction target); got {n_features} features, {n_outputs} outputs. "
                "Use make_induction_head_task('mixed', ...) or InductionTaskSampler('mixed')."
            )

    def _output_groups(self) -> dict:
        half = self.n_outputs_ // 2
        return {"G4": slice(0, half), "IH2": slice(half, self.n_outputs_)}

    def _build_net(self, n_features, n_outputs, *, callbacks=(), shuffle_seed=0, init_seed=0):
        return InductionNet(
            ReparameterizedInduction,
            module__init_scale=float(self.init_scale),
            module__oracle_first_layer=self.stage1 == "oracle",
            module__n_features=n_features,
            module__seed=init_seed,
            **self._net_arguments(lr=self.lr, shuffle_seed=shuffle_seed, callbacks=callbacks),
        )

    def _stage_callbacks(self) -> list:
        return [("stop_at_slope", StopAtSlope(self.stage1_target_p))]

    def _train(self, net, inputs, dynamics):
        """Joint: one run (recorded as Stage II). Layerwise: Stage I (p̃ alone, unless the
        oracle replaces it), then Stage II (p̃ frozen)."""
        if self.training == "joint":
            dynamics.start_stage(net, 2)
            net.partial_fit(*inputs)
            return
        module = plain_module(net)
        second_layer = [module.g, module.p, module.w_K, module.w_Q, module.h]
        stop_at_slope = dict(net.callbacks_)["stop_at_slope"]
        if self.stage1 == "train":
            for param in second_layer:
                param.requires_grad_(False)
            net.set_params(lr=self.stage1_lr or self.lr, max_epochs=self.stage1_epochs)
            dynamics.start_stage(net, 1)
            stop_at_slope.active = True
            net.partial_fit(*inputs)
            stop_at_slope.active = False
            for param in second_layer:
                param.requires_grad_(True)
        module.p_tilde.requires_grad_(False)
        net.set_params(lr=self.lr, max_epochs=self.max_epochs)
        dynamics.start_stage(net, 2)
        net.partial_fit(*inputs)
        module.p_tilde.requires_grad_(True)

    def _continue(self, net, inputs, dynamics):
        """More Stage II (layerwise: ``p̃`` stays frozen) or more joint training."""
        module = plain_module(net)
        module.p_tilde.requires_grad_(self.training == "joint")
        net.partial_fit(*inputs)
        module.p_tilde.requires_grad_(True)

    def _after_fit(self, X, y):
        self.phases_ = self._phases(X, y)

    def _restore_results(self, fitted):
        self.phases_ = fitted.get("phases_", {})

    def _phases(self, X, y) -> dict:
        """Phase markers of the Stage II history (math note §5.6)."""
        d = self.n_features_in_
        alpha = getattr(self.sampler, "alpha", None)
        w_star = getattr(self.sampler, "w_star", None)
        # Stage II from its t = 0 evaluation on, then every epoch.
        rows = [self.stage_starts_[2]] + [r for r in self.history_ if r.get("stage") == 2]
        if alpha is None:  # the G4 group is g* x_{L-2} exactly: least squares recovers g*
            last = X[:, -3].ravel()
            g_star = float(last @ y[:, :d].ravel() / (last @ last))
            alpha = g_star / (1 - g_star)
        if w_star is None:
            w_star = float(np.sqrt(max(rows[-1]["w_K"] * rows[-1]["w_Q"], 0.0)))
        elif getattr(self.sampler, "lift", "sqrt") == "linear":
            w_star /= np.sqrt(d)  # ‖W*‖_F of the literal lift W* = w* I/d
        keys = ("time", "G4", "IH2", "w_K", "w_Q", "h")
        history = {key: np.array([row[key] for row in rows]) for key in keys}
        return detect_phases(history, alpha=alpha, w_star=w_star)
