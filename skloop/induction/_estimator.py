"""InductionHeadRegressor: the ALiBi transformer of the induction-head paper as an estimator."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from .._persistence import PersistenceMixin, restore_net
from .._torch import (
    DTYPES,
    OPTIMIZERS,
    LoopNet,
    plain_module,
    resolve_device,
    seed_from,
    torch_threads,
    training_callbacks,
)
from .._validation import check_matrix_batch
from ..pca._base import check_bool, check_int, check_training_params
from ._constructions import ih2_transformer, ihn_transformer
from ._dynamics import detect_phases
from ._model import InductionTransformer, ReparameterizedInduction, initialize_weights

__all__ = ["InductionHeadRegressor"]

_CHUNK = 4096


_MONITOR_SIZE = 1000  # offline training: sequences evaluated for history_ every epoch


class _InductionNet(LoopNet):
    """skorch net with the paper's loss ½ E‖TF(X) − y‖² (summed over outputs)."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(device=y_pred.device, dtype=y_pred.dtype)
        return 0.5 * ((y_pred - y_true) ** 2).sum(-1).mean()


class _Resample(Callback):
    """Online training: a fresh training set from the sampler at the start of every epoch."""

    def __init__(self, sampler, seed):
        self.sampler = sampler
        self.seed = seed

    def initialize(self):
        self.rng_ = np.random.RandomState(self.seed)
        return self

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        X, y = self.sampler(len(dataset_train), random_state=self.rng_)
        dataset_train.X.copy_(torch.as_tensor(X).reshape(dataset_train.X.shape))
        dataset_train.y.copy_(torch.as_tensor(y).reshape(dataset_train.y.shape))


class _RecordDynamics(Callback):
    """Per epoch, on fixed evaluation data: iteration, gradient-flow time, total and partial
    losses, and the parameters (6-parameter model) or slope / W_K, W_Q norms per layer."""

    def __init__(self, X, y, output_groups):
        self.X, self.y = X, y
        self.output_groups = output_groups  # name -> the target columns it covers

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
        if isinstance(module, ReparameterizedInduction):
            for name in ("p_tilde", "g", "p", "w_K", "w_Q", "h"):
                param = getattr(module, name)  # w_K, w_Q of the lifted model: Frobenius norms
                values[name] = param.item() if param.ndim == 0 else param.norm().item()
            return values
        for u, attention in enumerate(module.attention):
            values[f"slope_norm_{u}"] = attention.slopes.norm().item()
            values[f"qk_norm_{u}"] = torch.cat([attention.W_Q.flatten(),
                                                attention.W_K.flatten()]).norm().item()
        return values

    def on_epoch_end(self, net, **kwargs):
        self.iteration_ += net.history[-1, "train_batch_count"]
        for key, value in self._evaluate(net).items():
            net.history.record(key, value)


class _StopAtSlope(Callback):
    """Stage I: stop once the first-layer slope p̃ reaches a target."""

    def __init__(self, target):
        self.target = target
        self.active = False

    def on_epoch_end(self, net, **kwargs):
        if (self.active and self.target is not None
                and plain_module(net).p_tilde.item() >= self.target):
            raise KeyboardInterrupt  # skorch ends the fit loop cleanly on this signal


def _check_sequences(X, dtype: str, name="X") -> np.ndarray:
    batch = check_matrix_batch(X, name=name)
    if batch.ragged:
        raise ValueError(f"{name} must hold sequences of equal length; got a ragged list.")
    largest = float(np.max(np.abs(batch.data)))
    if largest**2 >= float(np.finfo(dtype).max):
        raise ValueError(
            f"{name} has values up to {largest:.3g}, whose squares (attention scores) "
            f"overflow {dtype}; rescale {name} or use dtype='float64'."
        )
    return batch.data


class InductionHeadRegressor(PersistenceMixin, RegressorMixin, BaseEstimator):
    """A two-layer multi-head ALiBi transformer regressing a target from a token sequence.

    The paper's model (Wang, Yu, E & Wu, eqs. 1–2): a linear embedding, layers of multi-head
    attention where every head has its own query/key/value matrices and a learnable ALiBi
    slope with strict causality, optional ReLU feed-forward blocks, residuals, and a linear
    read-out of the last token. Trained through skorch on ½ MSE; it learns induction heads
    from the targets of :func:`skloop.datasets.make_induction_head_task`.

    Parameters
    ----------
    n_heads : int or tuple of int, default=2
        Heads per layer (an int: the same in every layer).
    d_model : int or None, default=None
        Width ``D``; ``None`` uses ``max(8, 2 n_features)``.
    architecture : {"standard", "reparameterized"}, default="standard"
        ``"standard"``: the transformer of eqs. (1)–(2); ``"reparameterized"``: the
        6-parameter model of eqs. (16)–(17) (``d = 1``, two outputs: the mixed 4-gram +
        in-context 2-gram target), all six parameters initialised at ``init_scale``; with
        ``d > 1`` tokens (``2 d`` outputs), its Fig 10 lift: ``W_K, W_Q`` become ``d × d``
        matrices with ``‖·‖_F = init_scale`` in random directions.
    training : {"joint", "layerwise"}, default="joint"
        ``"layerwise"`` (reparameterized only): Stage I trains the first-layer slope ``p̃``
        alone, Stage II the five second-layer parameters with ``p̃`` frozen (the paper's
        recipe); ``"joint"`` trains everything together.
    stage1 : {"oracle", "train"}, default="oracle"
        Reparameterized first layer: ``"oracle"`` uses ``y_s = x_{s−1}`` exactly (``p̃ = ∞``,
        the regime Theorem 4.5 analyses); ``"train"`` learns ``p̃`` (Stage I as the paper
        specifies it leaves ``p̃ ≈ 0.94`` and floors the 4-gram loss, math note §5.7).
    stage1_epochs : int, default=10
        Epochs of Stage I (``training="layerwise"``, ``stage1="train"``).
    stage1_lr : float or None, default=None
        Stage I learning rate (``None``: ``lr``).
    stage1_target_p : float or None, default=None
        End Stage I early once ``p̃`` reaches this value.
    sampler : callable or None, default=None
        Online training: ``sampler(n, random_state) -> (X, y)`` draws a fresh training set of
        ``steps_per_epoch × batch_size`` sequences at every epoch (e.g.
        :class:`~skloop.datasets.InductionTaskSampler`); the ``(X, y)`` given to ``fit`` are
        then the fixed evaluation set of ``history_``.
    steps_per_epoch : int, default=100
        Optimizer steps per epoch in online training (the ``history_`` resolution).
    n_layers : int, default=2
        Number of layers ``U`` (ignored when ``n_heads`` is a tuple).
    head_dim : int or None, default=None
        ``None``: full ``D × D`` matrices per head (the paper); an int splits them.
    ffn_width : int, default=0
        ReLU feed-forward width after each attention; 0 is attention-only.
    positional : {"alibi", "none"}, default="alibi"
        Learnable ALiBi slopes (initialised at 0) or no positional bias.
    causal : {"strict", "standard"}, default="strict"
        No self-attention (the paper's), or the usual diagonal-allowed mask.
    scale_attention : bool, default=False
        ``1/√dim`` score scaling (off in the paper).
    residual : tuple of bool or None, default=None
        Residual per layer; ``None`` means all layers.
    key_start : int, default=0
        Keys before this position are excluded in the last layer (``n − 1`` makes the IH_n
        constructions exact, math note §1.1).
    optimizer : {"adam", "sgd"}, default="adam"
        Optimizer.
    lr : float, default=2e-3
        Learning rate (the math note's CPU recipe for Fig 2/7).
    batch_size : int, default=100
        Sequences per step.
    max_epochs : int, default=20
        Passes over the training sequences.
    init_scale : "auto" or float, default="auto"
        ``"auto"``: ``N(0, 1/D)`` attention and read-out weights, ``N(0, 1/d)`` embedding; a
        float ``σ``: every weight ``N(0, σ²)``. Slopes start at 0.
    dtype : {"float32", "float64"}, default="float32"
        Parameter dtype.
    device : str, default="auto"
        Torch device; ``"auto"`` picks CUDA when available.
    compile : bool, default=False
        Train the module under ``torch.compile`` (skorch's ``compile=True``): about 1.5x the
        training throughput on CPU for these small models, after a one-off compilation of a
        few seconds (``benchmarks/fit.py --compile``). Needs a C++ compiler on CPU.
    n_threads : int or None, default=1
        Torch CPU threads during fit/predict.
    random_state : int, RandomState instance or None, default=None
        Seeds the init and the shuffling.
    verbose : int, default=0
        ``1``: skorch's epoch log and a progress bar.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained net (``net_.module_`` is the torch module).
    n_features_in_ : int
        Token dimension seen in ``fit``.
    n_outputs_ : int
        Number of target columns.
    history_ : skorch.History
        Per epoch: ``train_loss``, and on the evaluation data (online: the ``X, y`` given to
        ``fit``; offline: a fixed, evenly spaced subset of at most 1000 training sequences)
        ``iteration``, ``stage``, ``time``
        (gradient-flow time ``lr × iterations`` since the stage began), ``loss``, one partial
        loss ``½ E‖·‖²`` per output (``"G4"``, ``"IH2"`` for two outputs or the two output
        groups of the reparameterized model, else ``"output_k"``), and the
        six parameters (reparameterized; ``w_K``, ``w_Q`` are Frobenius norms for ``d > 1``)
        or ``slope_norm_u``, ``qk_norm_u`` per layer (standard).
    stage_starts_ : dict
        The evaluation of ``history_``'s quantities at the start (t = 0) of each stage.
    phases_ : dict
        Reparameterized model only: the phase markers ``T_I, T_o, T_w, T_II, T_half, T_III``
        and the plateau ``L_IH2(T_o)`` on the Stage II time axis (see
        :func:`skloop.induction.detect_phases`), with ``α*``, ``w*`` from the sampler when it
        has them, else ``α*`` fitted from the data and ``w*`` from the learned ``w_K w_Q``.

    References
    ----------
    M. Wang, R. Yu, W. E, L. Wu, *How Transformers Implement Induction Heads: Approximation
    and Optimization Analysis*, arXiv:2410.11474.

    Examples
    --------
    >>> from skloop import InductionHeadRegressor
    >>> from skloop.datasets import make_induction_head_task
    >>> X, y = make_induction_head_task("ih2", 400, seq_len=10, random_state=0)
    >>> model = InductionHeadRegressor(max_epochs=2, random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (400, 1)
    """

    def __init__(
        self,
        n_heads=2,
        d_model=None,
        *,
        architecture="standard",
        training="joint",
        stage1="oracle",
        stage1_epochs=10,
        stage1_lr=None,
        stage1_target_p=None,
        sampler=None,
        steps_per_epoch=100,
        n_layers=2,
        head_dim=None,
        ffn_width=0,
        positional="alibi",
        causal="strict",
        scale_attention=False,
        residual=None,
        key_start=0,
        optimizer="adam",
        lr=2e-3,
        batch_size=100,
        max_epochs=20,
        init_scale="auto",
        dtype="float32",
        device="auto",
        compile=False,
        n_threads=1,
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.n_heads = n_heads
        self.d_model = d_model
        self.architecture = architecture
        self.training = training
        self.stage1 = stage1
        self.stage1_epochs = stage1_epochs
        self.stage1_lr = stage1_lr
        self.stage1_target_p = stage1_target_p
        self.sampler = sampler
        self.steps_per_epoch = steps_per_epoch
        self.n_layers = n_layers
        self.head_dim = head_dim
        self.ffn_width = ffn_width
        self.positional = positional
        self.causal = causal
        self.scale_attention = scale_attention
        self.residual = residual
        self.key_start = key_start
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.init_scale = init_scale
        self.dtype = dtype
        self.device = device
        self.compile = compile
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    # ------------------------------------------------------------------ configuration
    def _heads(self) -> tuple:
        if isinstance(self.n_heads, (tuple, list)):
            heads = tuple(self.n_heads)
        else:
            check_int(self.n_layers, "n_layers", 1)
            heads = (self.n_heads,) * self.n_layers
        for h in heads:
            check_int(h, "n_heads", 1)
        return heads

    def _check_params(self):
        heads = self._heads()
        if self.d_model is not None:
            check_int(self.d_model, "d_model", 1)
        if self.head_dim is not None:
            check_int(self.head_dim, "head_dim", 1)
        check_int(self.ffn_width, "ffn_width", 0)
        check_int(self.key_start, "key_start", 0)
        check_training_params(self)
        check_bool(self.scale_attention, "scale_attention")
        check_int(self.stage1_epochs, "stage1_epochs", 1)
        check_int(self.steps_per_epoch, "steps_per_epoch", 1)
        for name in ("stage1_lr", "stage1_target_p"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, numbers.Real) and value > 0):
                raise ValueError(f"{name} must be None or a float > 0; got {value!r}.")
        if self.sampler is not None and not callable(self.sampler):
            raise TypeError(f"sampler must be None or callable; got {self.sampler!r}.")
        choices = {"positional": ("alibi", "none"), "causal": ("strict", "standard"),
                   "optimizer": tuple(OPTIMIZERS), "dtype": tuple(DTYPES),
                   "architecture": ("standard", "reparameterized"),
                   "training": ("joint", "layerwise"), "stage1": ("oracle", "train")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}.")
        if self.training == "layerwise" and self.architecture != "reparameterized":
            raise ValueError("training='layerwise' is defined for architecture='reparameterized'.")
        if self.residual is not None and (
            len(self.residual) != len(heads)
            or not all(isinstance(r, (bool, np.bool_)) for r in self.residual)
        ):
            raise ValueError(f"residual must be None or {len(heads)} bools; got {self.residual!r}.")
        if not (isinstance(self.lr, numbers.Real) and np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite float > 0; got {self.lr!r}.")
        if not (self.init_scale == "auto" or (
            isinstance(self.init_scale, numbers.Real) and self.init_scale > 0
        )):
            raise ValueError(f"init_scale must be 'auto' or a float > 0; got {self.init_scale!r}.")

    def _build_net(self, n_features: int, n_outputs: int, callbacks=()) -> _InductionNet:
        common = dict(
            optimizer=OPTIMIZERS[self.optimizer],
            lr=self.lr,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            iterator_train__shuffle=True,
            callbacks=list(callbacks) + training_callbacks(self.verbose, self.callbacks),
            device=resolve_device(self.device),
            compile=self.compile,
            verbose=self.verbose,
        )
        if self.architecture == "reparameterized":
            if n_outputs != 2 * n_features:
                raise ValueError(
                    "architecture='reparameterized' needs 2 n_features outputs (the mixed "
                    f"4-gram + induction target); got {n_features} features, {n_outputs} outputs."
                )
            return _InductionNet(
                ReparameterizedInduction,
                module__init_scale=0.01 if self.init_scale == "auto" else float(self.init_scale),
                module__oracle_first_layer=self.stage1 == "oracle",
                module__n_features=n_features,
                **common,
            )
        heads = self._heads()
        return _InductionNet(
            InductionTransformer,
            module__n_features=n_features,
            module__n_outputs=n_outputs,
            module__d_model=self.d_model or max(8, 2 * n_features),
            module__n_heads=heads,
            module__head_dim=self.head_dim,
            module__ffn_width=self.ffn_width,
            module__positional=self.positional,
            module__causal=self.causal,
            module__scale=self.scale_attention,
            module__residual=tuple(self.residual) if self.residual else (True,) * len(heads),
            module__key_start=self.key_start,
            **common,
        )

    # ------------------------------------------------------------------ training
    def fit(self, X, y):
        """Train the transformer on sequences ``X`` and targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n_sequences, seq_len, n_features)
            Token sequences.
        y : array-like of shape (n_sequences,) or (n_sequences, n_outputs)
            Targets (e.g. an induction-head target of the last position).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_params()
        X = _check_sequences(X, self.dtype)
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must have shape (n_sequences,) or (n_sequences, n_outputs) with "
                f"n_sequences={X.shape[0]}; got {y.shape}."
            )
        self._y_was_1d = y.ndim == 1
        y = y.reshape(len(y), -1)
        self.n_features_in_, self.n_outputs_ = X.shape[2], y.shape[1]
        rng = check_random_state(self.random_state)
        init_seed, shuffle_seed, sample_seed = (seed_from(rng) for _ in range(3))
        dtype = DTYPES[self.dtype]
        # Offline, the evaluation data is the training set: a fixed spread-out subset keeps the
        # per-epoch evaluation a small fraction of an epoch (it was 30% at 4096 sequences).
        monitored = (slice(None) if self.sampler is not None or len(X) <= _MONITOR_SIZE
                     else np.linspace(0, len(X) - 1, _MONITOR_SIZE).astype(int))
        dynamics = _RecordDynamics(torch.tensor(X[monitored]), torch.tensor(y[monitored]),
                                   self._output_groups())
        stop_at_slope = _StopAtSlope(self.stage1_target_p)
        callbacks = [("dynamics", dynamics), ("stop_at_slope", stop_at_slope)]
        X_train, y_train = X, y
        if self.sampler is not None:
            callbacks.append(("resample", _Resample(self.sampler, sample_seed)))
            X_train, y_train = self.sampler(self.steps_per_epoch * self.batch_size,
                                            random_state=sample_seed)
            y_train = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
        net = self._build_net(self.n_features_in_, self.n_outputs_, callbacks)
        net.set_params(iterator_train__seed=shuffle_seed)
        if self.architecture == "reparameterized":
            net.set_params(module__seed=init_seed)
        # Training data on the net's device: batches are slices, no per-step host copies.
        inputs = (torch.tensor(np.asarray(X_train), dtype=dtype, device=net.device),
                  torch.tensor(y_train, dtype=dtype, device=net.device))
        with torch_threads(self.n_threads):
            net.initialize()
            plain_module(net).to(dtype)
            if self.architecture == "standard":
                initialize_weights(plain_module(net), self.init_scale,
                                   torch.Generator().manual_seed(init_seed))
            if self.training == "layerwise":
                self._train_layerwise(net, inputs, dynamics, stop_at_slope)
            else:
                dynamics.start_stage(net, 2 if self.architecture == "reparameterized" else 1)
                net.partial_fit(*inputs)
        self.net_ = net
        self.history_ = net.history
        self.stage_starts_ = dynamics.stage_starts_
        if self.architecture == "reparameterized":
            self.phases_ = self._phases(X, y)
        return self

    def _output_groups(self) -> dict:
        """Target columns of each partial loss of ``history_``."""
        if self.architecture == "reparameterized" or self.n_outputs_ == 2:
            half = self.n_outputs_ // 2
            return {"G4": slice(0, half), "IH2": slice(half, self.n_outputs_)}
        return {f"output_{k}": slice(k, k + 1) for k in range(self.n_outputs_)}

    def _train_layerwise(self, net, inputs, dynamics, stop_at_slope):
        """Stage I (p̃ alone, unless the oracle replaces it), then Stage II (p̃ frozen)."""
        module = plain_module(net)
        second_layer = [module.g, module.p, module.w_K, module.w_Q, module.h]
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

    @classmethod
    def from_construction(cls, kind="ih2", *, W_star=None, n_features=1, n_gram=2, p=20.0,
                          eps=0.01, dtype="float64"):
        """A fitted estimator holding a hand-built transformer (no training).

        Parameters
        ----------
        kind : {"ih2", "ihn"}, default="ih2"
            ``"ih2"``: Theorem 3.1's single-head two-layer transformer, ``D = 2d``, error
            ``∝ e^{−p}`` uniformly in ``L``; ``"ihn"``: ``n_gram − 1`` previous-token heads
            (Vandermonde variant of Theorem 3.3), ``D = n d``, error ``O(eps)``.
        W_star : array-like or None
            Similarity matrix (``d × d`` or ``(n−1)d × (n−1)d``); identity when None.
        n_features : int, default=1
            Token dimension ``d`` (used when ``W_star`` is None).
        n_gram : int, default=2
            ``n`` of ``"ihn"``.
        p : float, default=20.0
            Previous-token slope of ``"ih2"``.
        eps : float, default=0.01
            Head-ratio spacing of ``"ihn"``.
        dtype : {"float64", "float32"}, default="float64"
            Parameter dtype.

        Returns
        -------
        model : InductionHeadRegressor
            Ready to ``predict``; ``fit`` would retrain it from a random init.
        """
        if kind == "ih2":
            W = np.eye(n_features) if W_star is None else np.atleast_2d(W_star)
            module = ih2_transformer(W, p)
        elif kind == "ihn":
            check_int(n_gram, "n_gram", 2)
            W = np.eye((n_gram - 1) * n_features) if W_star is None else np.atleast_2d(W_star)
            module = ihn_transformer(n_gram, W, eps)
        else:
            raise ValueError(f"kind must be 'ih2' or 'ihn'; got {kind!r}.")
        heads = tuple(a.n_heads for a in module.attention)
        model = cls(n_heads=heads, d_model=module.embed.out_features, residual=module.residual,
                    key_start=module.key_start, dtype=dtype, device="cpu")
        model._check_params()
        net = model._build_net(module.embed.in_features, module.readout.out_features)
        net.initialize()
        plain_module(net).load_state_dict(module.state_dict())
        plain_module(net).to(DTYPES[dtype])
        model.net_ = net
        model.n_features_in_ = module.embed.in_features
        model.n_outputs_ = module.readout.out_features
        model._y_was_1d = False
        model.history_ = net.history
        return model

    def _fitted_state(self) -> dict:
        return {"n_features_in_": self.n_features_in_, "n_outputs_": self.n_outputs_,
                "y_was_1d": bool(self._y_was_1d)}

    def _restore(self, fitted: dict, state: dict, history: list) -> None:
        self._check_params()
        self.n_features_in_ = int(fitted["n_features_in_"])
        self.n_outputs_ = int(fitted["n_outputs_"])
        self._y_was_1d = bool(fitted["y_was_1d"])
        net = self._build_net(self.n_features_in_, self.n_outputs_)
        self.net_ = restore_net(net, state, history, dtype=DTYPES[self.dtype])
        self.history_ = self.net_.history

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    # ------------------------------------------------------------------ inference
    def _prepare(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = _check_sequences(X, self.dtype)
        if X.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[2]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X

    def _run(self, X: np.ndarray):
        """Hidden states and attention weights (numpy) of every layer."""
        module = plain_module(self.net_)
        dtype = next(module.parameters()).dtype
        hidden, attention = [], []
        with torch.no_grad(), torch_threads(self.n_threads):
            for start in range(0, len(X), _CHUNK):
                part = torch.tensor(X[start : start + _CHUNK], dtype=dtype, device=self.net_.device)
                h, a = module.run(part)
                hidden.append([t.cpu().numpy() for t in h])
                attention.append([t.cpu().numpy() for t in a])
        stack = lambda parts: [np.concatenate(layer) for layer in zip(*parts, strict=True)]  # noqa: E731
        return stack(hidden), stack(attention)

    def _readout(self, hidden_last: np.ndarray) -> np.ndarray:
        W = plain_module(self.net_).readout.weight.detach().cpu().numpy()
        return hidden_last @ W.T.astype(hidden_last.dtype)

    def predict(self, X):
        """Predict the target of each sequence (read-out of the last token).

        Parameters
        ----------
        X : array-like of shape (n_sequences, seq_len, n_features)
            Token sequences (any length: ALiBi is relative).

        Returns
        -------
        y : ndarray of shape (n_sequences,) or (n_sequences, n_outputs)
        """
        hidden, _ = self._run(self._prepare(X))
        y = self._readout(hidden[-1][:, -1]).astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise FloatingPointError(
                "The predictions are not finite: the inputs are too large for the model's "
                f"{self.dtype} arithmetic (or the weights diverged); rescale X."
            )
        return y[:, 0] if self._y_was_1d else y

    def transform(self, X):
        """Layer-1 output at the last position, shape ``(n_sequences, d_model)``."""
        return self._run(self._prepare(X))[0][1][:, -1]

    def hidden_states(self, X) -> list:
        """The embedding and every layer's output at all positions, each ``(n, L, D)``."""
        return self._run(self._prepare(X))[0]

    def attention_maps(self, X) -> list:
        """Attention weights of every layer, each ``(n_sequences, n_heads, L, L)``."""
        return self._run(self._prepare(X))[1]

    def previous_token_score(self, X, layer=0) -> np.ndarray:
        """Attention mass each head of ``layer`` puts on the previous token (lag 1).

        Averaged over sequences and over the queries that have a previous token. 1 for a
        perfect previous-token head; uniform attention over the admissible keys gives the
        mean of ``1/i``.

        Returns
        -------
        score : ndarray of shape (n_heads,)
        """
        weights = self.attention_maps(X)[layer]  # (n, H, L, L)
        L = weights.shape[-1]
        lag_one = weights[:, :, np.arange(1, L), np.arange(0, L - 1)]  # (n, H, L-1)
        return lag_one.mean(axis=(0, 2))

    def induction_score(self, X) -> dict:
        """Induction behaviour on twice-repeated random sequences (``make_repeated_tokens``).

        Parameters
        ----------
        X : array-like of shape (n_sequences, 2R, n_features)
            Each sequence is a random block of length ``R`` repeated twice.

        Returns
        -------
        scores : dict
            ``attention``: per head of the last layer, the mean weight a query ``t`` of the
            second copy puts on key ``t − R + 1`` (the token after the previous occurrence of
            the current token); ``copy1_error``, ``copy2_error``: mean squared error of the
            per-position prediction (read-out at every position) against the next token, in
            the first and the second copy, and their ratio ``error_ratio`` (< 1: the model
            uses the earlier occurrence). The errors need ``n_outputs_ == n_features_in_``.
        """
        X = self._prepare(X)
        R = X.shape[1] // 2
        if X.shape[1] != 2 * R or R < 2 or not np.array_equal(X[:, :R], X[:, R:]):
            raise ValueError("X must be sequences of a random block repeated twice (length 2R).")
        hidden, attention = self._run(X)
        t = np.arange(R, 2 * R)
        scores = {"attention": attention[-1][:, :, t, t - R + 1].mean(axis=(0, 2))}
        if self.n_outputs_ == self.n_features_in_:
            predictions = self._readout(hidden[-1])  # (n, L, d): prediction at every prefix
            error = ((predictions[:, :-1] - X[:, 1:]) ** 2).sum(-1)  # vs the next token
            scores["copy1_error"] = float(error[:, : R - 1].mean())
            scores["copy2_error"] = float(error[:, R:].mean())
            scores["error_ratio"] = scores["copy2_error"] / scores["copy1_error"]
        return scores

    def probe(self, X, n_gram: int) -> dict:
        """Linear probe of layer-1 outputs for the last ``n_gram`` tokens (the paper's Fig 6).

        One affine map (least squares, :class:`sklearn.linear_model.LinearRegression`) from the
        layer-1 output at position ``s`` to ``X_{s−n+1:s}``, shared by all positions
        ``s = n..L`` and sequences.

        Returns
        -------
        probe : dict
            ``dist``: residual squared norm summed over positions, averaged over sequences;
            ``fvu``: fraction of variance unexplained; ``lag_mse``: per-coordinate MSE of each
            lag ``n−1, …, 0`` (lag 0 is the current token, which the residual stream keeps).
        """
        check_int(n_gram, "n_gram", 1)
        X = self._prepare(X)
        n, L, d = X.shape
        if L < n_gram:
            raise ValueError(f"sequences of length {L} are shorter than n_gram={n_gram}.")
        layer1 = self._run(X)[0][1][:, n_gram - 1 :]  # positions s−1 = n−1..L−1
        windows = np.lib.stride_tricks.sliding_window_view(X, n_gram, axis=1)  # (n, L−n+1, d, n)
        targets = np.swapaxes(windows, 2, 3).reshape(n, L - n_gram + 1, n_gram * d)
        features = layer1.reshape(-1, layer1.shape[-1]).astype(np.float64)
        flat_targets = targets.reshape(-1, n_gram * d)
        residual = flat_targets - LinearRegression().fit(features, flat_targets).predict(features)
        per_lag = (residual**2).reshape(-1, n_gram, d).mean(axis=(0, 2))
        return {
            "dist": float((residual**2).sum() / n),
            "fvu": float((residual**2).sum() / ((flat_targets - flat_targets.mean(0)) ** 2).sum()),
            "lag_mse": per_lag,
        }
