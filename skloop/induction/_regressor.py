"""InductionHeadRegressor: the ALiBi transformer of the induction-head paper as an estimator."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions

from .._core.estimator import document_training_parameters
from .._core.params import (
    AppliesWhen,
    Integral,
    InvalidParameterError,
    Number,
    Real,
)
from .._core.skorch import plain_module
from ._base import BaseInductionRegressor, document_online_parameters
from ._constructions import ih2_transformer, ihn_transformer
from ._mechanism import (
    InductionScore,
    copy_errors,
    induction_attention,
    previous_token_attention,
    probe_windows,
    repeated_block_length,
)
from ._model import InductionTransformer, initialize_weights
from ._net import InductionNet

__all__ = ["InductionHeadRegressor"]

_POSITIVE_INT = Number(Integral, 1, None, closed="left")


@document_online_parameters
@document_training_parameters
class InductionHeadRegressor(BaseInductionRegressor):
    """A multi-head ALiBi transformer regressing a target from a token sequence.

    The paper's model (Wang, Yu, E & Wu, eqs. 1–2): a linear embedding, layers of multi-head
    attention where every head has its own query/key/value matrices and a learnable ALiBi
    slope with strict causality, optional ReLU feed-forward blocks, residuals, and a linear
    read-out of the last token. Trained through skorch on ½ MSE; it learns induction heads
    from the targets of :func:`skloop.datasets.make_induction_head_task`. The paper's
    6-parameter model is :class:`InductionDynamicsRegressor`.

    Parameters
    ----------
    n_heads : int or tuple of int, default=2
        Heads per layer (an int: the same in every layer, ``n_layers`` layers; a tuple: one
        entry per layer).
    d_model : int or None, default=None
        Width ``D``; ``None`` uses ``max(8, 2 n_features)``.
    architecture : {"standard"}, default="standard"
        The transformer of eqs. (1)–(2). ``"reparameterized"`` (the 6-parameter model) moved
        to :class:`InductionDynamicsRegressor`; asking for it here raises an error that says
        so.
    %(online_parameters)s
    n_layers : int, default=2
        Number of layers ``U`` when ``n_heads`` is an int.
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
    %(training_parameters)s

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
        ``iteration``, ``stage``, ``time`` (gradient-flow time ``lr × iterations``), ``loss``,
        one partial loss ``½ E‖·‖²`` per output (``"G4"``, ``"IH2"`` for two outputs, else
        ``"output_k"``), and ``slope_norm_u``, ``qk_norm_u`` per layer.
    stage_starts_ : dict
        The evaluation of ``history_``'s quantities before training (key 1).

    See Also
    --------
    InductionDynamicsRegressor : the 6-parameter model and its training dynamics.

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

    _parameter_constraints = {
        **BaseInductionRegressor._parameter_constraints,
        "n_heads": [_POSITIVE_INT, tuple, list],
        "d_model": [_POSITIVE_INT, None],
        "architecture": [StrOptions({"standard", "reparameterized"})],
        "n_layers": [_POSITIVE_INT],
        "head_dim": [_POSITIVE_INT, None],
        "ffn_width": [Number(Integral, 0, None, closed="left")],
        "positional": [StrOptions({"alibi", "none"})],
        "causal": [StrOptions({"strict", "standard"})],
        "scale_attention": ["boolean"],
        "residual": [tuple, list, None],
        "key_start": [Number(Integral, 0, None, closed="left")],
        "init_scale": [StrOptions({"auto"}), Number(Real, 0, None, closed="neither")],
    }
    _architecture_parameters = ("n_heads", "d_model", "n_layers", "head_dim", "ffn_width",
                                "positional", "causal", "scale_attention", "residual",
                                "key_start", "init_scale", "dtype")
    _parameter_applies = {
        **BaseInductionRegressor._parameter_applies,
        "n_layers": AppliesWhen(lambda p: not isinstance(p["n_heads"], (tuple, list)),
                                "n_heads is an int (a tuple gives one entry per layer)"),
    }

    def __init__(
        self,
        n_heads=2,
        d_model=None,
        *,
        architecture="standard",
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
        self.n_heads = n_heads
        self.d_model = d_model
        self.architecture = architecture
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
        self.train_split = train_split
        self.warm_start = warm_start
        self._store_routed(skorch_params)

    # Parameters of the 0.1 layout, when InductionHeadRegressor also held the 6-parameter model.
    _STAGE_PARAMETERS = ("training", "stage1", "stage1_epochs", "stage1_lr", "stage1_target_p")

    @classmethod
    def _upgrade_saved_params(cls, params: dict) -> tuple[str, dict]:
        """Read a file written before the 6-parameter model had its own estimator: its
        ``architecture="reparameterized"`` models load as :class:`InductionDynamicsRegressor`,
        the others without the stage parameters (which the transformer never used)."""
        if params.get("architecture") != "reparameterized":
            return cls.__name__, {k: v for k, v in params.items()
                                  if k not in cls._STAGE_PARAMETERS}
        kept = (*cls._STAGE_PARAMETERS, "sampler", "steps_per_epoch", "optimizer", "lr",
                "batch_size", "max_epochs", "dtype", "device", "compile", "n_threads",
                "random_state", "verbose")
        upgraded = {k: v for k, v in params.items() if k in kept}
        scale = params.get("init_scale", "auto")
        upgraded["init_scale"] = 0.01 if scale == "auto" else scale
        for name, old_default in (("training", "joint"), ("optimizer", "adam"), ("lr", 2e-3),
                                  ("batch_size", 100)):
            upgraded.setdefault(name, old_default)
        return "InductionDynamicsRegressor", upgraded

    # ------------------------------------------------------------------ configuration
    def _heads(self) -> tuple:
        if isinstance(self.n_heads, (tuple, list)):
            return tuple(self.n_heads)
        return (self.n_heads,) * self.n_layers

    def _check_param_combinations(self, params):
        if params.get("architecture") == "reparameterized":
            raise InvalidParameterError(
                "architecture='reparameterized' (the 6-parameter model) is now its own "
                "estimator: use skloop.InductionDynamicsRegressor(training=..., stage1=...)."
            )
        if "n_heads" not in params:
            return
        heads = self._heads()
        if len(heads) == 0 or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in heads
        ):
            raise InvalidParameterError(
                f"n_heads must be an int >= 1 or a non-empty tuple of ints >= 1 (one per "
                f"layer); got {self.n_heads!r}."
            )
        if self.residual is not None and (
            len(self.residual) != len(heads)
            or not all(isinstance(r, (bool, np.bool_)) for r in self.residual)
        ):
            raise InvalidParameterError(
                f"residual must be None or {len(heads)} bools (one per layer); got "
                f"{self.residual!r}."
            )

    def _build_net(self, n_features, n_outputs, *, callbacks=(), shuffle_seed=0, init_seed=0):
        heads = self._heads()
        return InductionNet(
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
            **self._net_arguments(lr=self.lr, shuffle_seed=shuffle_seed, callbacks=callbacks),
        )

    def _initialize_module(self, net, init_seed):
        initialize_weights(plain_module(net), self.init_scale,
                           torch.Generator().manual_seed(init_seed))

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
        if kind not in ("ih2", "ihn"):
            raise ValueError(f"kind must be 'ih2' or 'ihn'; got {kind!r}.")
        if not (isinstance(n_gram, Integral) and not isinstance(n_gram, bool) and n_gram >= 2):
            raise ValueError(f"n_gram must be an int >= 2; got {n_gram!r}.")
        for name, value in (("p", p), ("eps", eps)):
            if isinstance(value, bool) or not isinstance(value, Real) or not (
                    np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite float > 0; got {value!r}.")
        size = n_features if kind == "ih2" else (n_gram - 1) * n_features
        W = np.eye(size) if W_star is None else np.atleast_2d(np.asarray(W_star, dtype=float))
        if W.ndim != 2 or W.shape[0] != W.shape[1] or not np.all(np.isfinite(W)):
            raise ValueError(
                f"W_star must be a finite square matrix ({size} x {size} for kind={kind!r} "
                f"with n_features={n_features}); got shape {W.shape}."
            )
        with torch.random.fork_rng(devices=[]):  # nn.Linear's default init draws from it
            module = ih2_transformer(W, p) if kind == "ih2" else ihn_transformer(n_gram, W, eps)
        heads = tuple(a.n_heads for a in module.attention)
        model = cls(n_heads=heads, d_model=module.embed.out_features, residual=module.residual,
                    key_start=module.key_start, dtype=dtype, device="cpu")
        model._validate_params()
        net = model._build_net(module.embed.in_features, module.readout.out_features)
        with model._torch_context():
            net.initialize()
        plain_module(net).load_state_dict(module.state_dict())
        plain_module(net).to(model._dtype())
        model.net_ = net
        model.n_features_in_ = module.embed.in_features
        model.n_outputs_ = module.readout.out_features
        model._y_was_1d_ = False
        model.history_ = net.history
        model.stage_starts_ = {}
        model._record_architecture()
        return model

    # ------------------------------------------------------------------ mechanism
    def previous_token_score(self, X, layer=0) -> np.ndarray:
        """Attention mass each head of ``layer`` puts on the previous token (lag 1).

        Parameters
        ----------
        X : array-like of shape (n_sequences, seq_len, n_features)
            Token sequences.
        layer : int, default=0
            The layer.

        Returns
        -------
        score : ndarray of shape (n_heads,)
            See :func:`~skloop.induction._mechanism.previous_token_attention`.
        """
        return previous_token_attention(self.attention_maps(X)[layer])

    def induction_score(self, X) -> InductionScore:
        """Induction behaviour on twice-repeated random sequences (``make_repeated_tokens``).

        Parameters
        ----------
        X : array-like of shape (n_sequences, 2R, n_features)
            Each sequence is a random block of length ``R`` repeated twice.

        Returns
        -------
        scores : InductionScore
            ``attention``: the induction score of each head of the last layer (the mean
            weight a query ``t`` of the second copy puts on key ``t − R + 1``, the token after
            the previous occurrence of the current token); ``copy1_error``, ``copy2_error``,
            ``error_ratio``: next-token errors of the read-out at every position in each copy
            (need ``n_outputs_ == n_features_in_``, else None). It still reads as the dict it
            used to be (``scores["attention"]``). Every layer's scores:
            :func:`skloop.induction.induction_scores`.
        """
        X = self._prepare(X)
        R = repeated_block_length(X)
        hidden, attention = self._run(X)
        if self.n_outputs_ != self.n_features_in_:
            return InductionScore(induction_attention(attention[-1], R))
        W = self._module().readout.weight.detach().cpu().numpy()
        predictions = hidden[-1] @ W.T.astype(hidden[-1].dtype)  # read-out at every prefix
        return InductionScore(induction_attention(attention[-1], R),
                              **copy_errors(predictions, X, R))

    def probe(self, X, n_gram: int) -> dict:
        """Linear probe of layer-1 outputs for the last ``n_gram`` tokens (the paper's Fig 6).

        Parameters
        ----------
        X : array-like of shape (n_sequences, seq_len, n_features)
            Token sequences.
        n_gram : int
            Window length.

        Returns
        -------
        probe : dict
            ``dist``, ``fvu``, ``lag_mse``: see
            :func:`~skloop.induction._mechanism.probe_windows`.
        """
        if not isinstance(n_gram, Integral) or isinstance(n_gram, bool) or n_gram < 1:
            raise ValueError(f"n_gram must be an int >= 1; got {n_gram!r}.")
        X = self._prepare(X)
        if X.shape[1] < n_gram:
            raise ValueError(f"sequences of length {X.shape[1]} are shorter than "
                             f"n_gram={n_gram}.")
        layer1 = self._run(X)[0][1][:, n_gram - 1 :]  # positions s−1 = n−1..L−1
        return probe_windows(layer1, X, n_gram)
