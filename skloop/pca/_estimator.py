"""LoopedTransformerPCA: the looped transformer of the power-method paper as an estimator."""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback
from skorch.utils import to_tensor

from .._persistence import restore_net
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
from .._validation import MatrixBatch
from ..metrics import angular_error, subspace_of_batch
from ._algorithms import (
    deflate_points,
    flip_signs,
    iterate_power,
    last,
    random_query_vectors,
)
from ._base import BaseMatrixPCA, check_bool, check_int, check_training_params
from ._diagnostics import (
    PREDICTED_GROWTH,
    active_scalars,
    growth_exponent,
    measured_contraction,
    predicted_contraction,
    structure_metrics,
)
from ._model import INITS, LoopedLinearAttention, power_method_weights
from ._objectives import layerwise_loss, one_step_target, subspace_loss

__all__ = ["LoopedTransformerPCA", "WeightSnapshots"]

# lr="auto" for SGD, times d (the scalars move by ~lr/d per step). Measured at d = 8, 13 on
# Task 1/2 and wine (2000 matrices, 40 epochs): the LN layerwise manifold is stable and takes
# large steps; the end-to-end manifold is a saddle that large steps leave (wine, lr = d: ρ → −965);
# the no-LN unnormalized quadratic has curvature ~ n E[tr Σ²], and wine diverges at 0.5 d.
_AUTO_LR_PER_FEATURE = {
    ("layerwise", "rms", "normalized"): 2.0,
    ("layerwise", None, "unnormalized"): 0.25,
}
# Data entries per forward pass at predict time: bounds memory (the general path's tokens are
# twice this), while a whole typical batch runs in one pass (no per-chunk loop overhead).
_PREDICT_ELEMENTS = 2**23


def _weights(net, d: int) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        W_pv, W_kq = plain_module(net).weights(d)
    return (W_pv.detach().cpu().numpy().astype(np.float64),
            W_kq.detach().cpu().numpy().astype(np.float64))


class _RecordActiveScalars(Callback):
    """Log ``u``, ``w`` and ``ρ = u·w`` of the power-method blocks after every epoch."""

    def on_epoch_end(self, net, **kwargs):
        u, w = active_scalars(*_weights(net, plain_module(net).n_features))
        net.history.record("u", u)
        net.history.record("w", w)
        net.history.record("rho", u * w)


class WeightSnapshots(Callback):
    """Keep copies of the looped layer's weights during training.

    Pass an instance in ``LoopedTransformerPCA(callbacks=[...])``; after ``fit`` its
    ``snapshots_`` list holds one dict per recorded epoch with ``epoch``, ``step`` (SGD steps
    so far), ``W_pv`` and ``W_kq``. Turn one back into a model with
    ``model.with_weights(s["W_pv"], s["W_kq"])``.

    Parameters
    ----------
    epochs : iterable of int or None, default=None
        Epochs (1-based) to record; ``None`` records every epoch.
    """

    def __init__(self, epochs=None):
        self.epochs = epochs

    def initialize(self):
        self.snapshots_ = []
        self._steps = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        self._steps += net.history[-1, "train_batch_count"]
        if self.epochs is None or epoch in set(self.epochs):
            W_pv, W_kq = _weights(net, plain_module(net).n_features)
            self.snapshots_.append({"epoch": epoch, "step": self._steps, "W_pv": W_pv,
                                    "W_kq": W_kq})


class _RedrawQueries(Callback):
    """Online training: fresh query vectors for every matrix at the start of each epoch."""

    def __init__(self, seed):
        self.seed = seed

    def initialize(self):
        self.rng_ = np.random.RandomState(self.seed)
        return self

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if len(net.history) <= 1:  # the first epoch keeps the queries drawn in fit
            return
        v = dataset_train.X["v"]
        fresh = random_query_vectors(self.rng_, v.shape[0], v.shape[1])[:, :, 0]
        v.copy_(torch.from_numpy(fresh))


class _LoopedPCANet(LoopNet):
    """skorch net whose loss is one of the paper's objectives (target derived from X)."""

    def __init__(self, *args, objective="end_to_end", target="normalized",
                 normalize_output_in_loss=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.objective = objective
        self.target = target
        self.normalize_output_in_loss = normalize_output_in_loss

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if self.objective == "end_to_end":
            projector = to_tensor(y_true, device=self.device)
            return subspace_loss(y_pred, projector, self.normalize_output_in_loss)
        inputs = to_tensor(X, device=self.device)
        target = one_step_target(inputs["X"], inputs["n_points"], inputs["v"], self.target)
        return layerwise_loss(y_pred, target)


class LoopedTransformerPCA(BaseMatrixPCA):
    """A looped linear-attention transformer trained to predict the leading principal component.

    Each data matrix ``A`` (rows are points) and a query vector ``v`` are embedded as the
    tokens ``Z = [[Aᵀ, 0], [0, v]]``; one layer ``Norm(Z + (1/n) W_pv Z Zᵀ W_kq Z)`` with
    trainable ``2d × 2d`` matrices is applied ``n_loops`` times with shared weights, and the
    prediction is the bottom half of the query token. With the column normalization (LN) the
    trained layer provably becomes one shifted power iteration ``v ← (I + ρΣ)v / ||·||``
    (Wu, Zhang & Cao, 2026). Training runs through skorch, on CUDA when available.

    Parameters
    ----------
    n_loops : int, default=3
        Training depth ``L`` of the end-to-end objective, and the default inference depth.
    normalization : {"rms", None}, default="rms"
        ``"rms"``: every token divided by its norm after each layer (the paper's LN, an
        RMSNorm without scale constant, gain or bias); ``None``: no normalization.
    objective : {"end_to_end", "layerwise"}, default="end_to_end"
        ``"end_to_end"``: the looped model's squared distance to the leading principal
        subspace (Thm 4.1; without LN outside the paper's analysis). ``"layerwise"``: one layer
        trained on one power step from ``v`` (Thms 4.2, 4.3), looped at inference.
    target : {"normalized", "unnormalized"}, default="normalized"
        Layerwise target: ``Σv/||Σv||`` or, without LN only, ``AᵀA v`` (no ``1/n``).
    inference_loops : int or None, default=None
        Loops at ``predict``/``transform``/``score``; ``None`` uses ``n_loops``. Looping deeper
        than the training depth is what Thms 4.6–4.7 analyse.
    n_components : int, default=1
        Number of components; the further ones come by deflation with the same learned layer
        (outside the paper), see ``deflation``.
    deflation : {"query", "points"}, default="query"
        How component ``j + 1`` is found. ``"query"``: loop on the same points from a query
        orthogonal to the found components, projecting them out of the query after every loop
        (the power iteration on ``PΣP``: exact eigenvectors on the power-method manifold).
        ``"points"``: project the found components out of the points, rescale them to unit
        norm and loop again. The rescaling reweights the points, so its components differ from
        the eigenvectors of ``Σ`` unless every point lies along an eigenvector (Task 2), and an
        inexact first component leaves short residuals of the points along it that the
        rescaling blows up (measured: 51° median error on the second component of Task 2
        matrices for a model 0.5° off on the first, vs 0.5° with ``"query"``).
    init : {"paper", "paper_swap", "random"}, default="paper"
        ``"paper"``: ``W_pv = 0``, ``W_kq[12] = I`` (the theory's init); ``"paper_swap"``:
        ``W_pv[21] = I``, ``W_kq = 0``; ``"random"``: i.i.d. ``N(0, init_scale²)`` entries (outside
        the theory; warns).
    init_scale : float, default=0.01
        Standard deviation of the ``"random"`` init.
    parametrization : {"full", "scalar"}, default="full"
        ``"full"`` trains both ``2d × 2d`` matrices (the paper's model); ``"scalar"`` trains only
        the active scalars ``u, w`` (an exact shifted power method, usable at any feature count
        at predict time), with the step divided by ``d`` so that it follows the full model's
        trajectory.
    normalize_output_in_loss : bool, default=True
        End-to-end loss on ``y/||y||``. ``False`` is the literal loss, whose degenerate minimum
        ``y → 0`` random or perturbed inits reach at large angles.
    mask_query : bool, default=False
        Exclude the query token from ``ZZᵀ`` (irrelevant on the power-method manifold).
    online : bool, default=False
        Draw fresh query vectors for every training matrix at each epoch.
    lr : float or "auto", default="auto"
        Learning rate. The active scalars move by about ``lr/d`` per step, so the paper's
        ``lr=0.1`` needs ~10⁵ steps; ``"auto"`` scales with ``d`` for SGD so that a few hundred
        steps give a useful model: ``2d`` for the LN layerwise objective (a stable manifold),
        ``0.25d`` for the no-LN unnormalized target (a stiff quadratic), ``0.5d`` otherwise;
        ``0.03`` for Adam. ``lr=0.1`` with ``max_epochs=2000`` is the paper's
        setting.
    batch_size : int, default=128
        Matrices per SGD step (the paper's value).
    max_epochs : int, default=50
        Passes over the training matrices.
    optimizer : {"sgd", "adam"}, default="sgd"
        Plain SGD as in the paper, or Adam.
    center : bool, default=False
        Center each matrix first (sklearn ``PCA``'s convention; the paper does not).
    normalize_points : bool, default=True
        Scale every point to unit norm (the paper's assumption).
    dtype : {"float32", "float64"}, default="float32"
        Parameter and compute dtype of the transformer. float32 is faster; float64 resolves
        angles below ~1e-3 degrees (exact agreement with the power method, projected weights
        on well-separated spectra). Inputs are validated and preprocessed in float64 either
        way, and predictions are returned as float64.
    device : str, default="auto"
        Torch device; ``"auto"`` picks CUDA when available.
    compile : bool, default=False
        Train the module under ``torch.compile`` (skorch's ``compile=True``): about 1.5x the
        training throughput on CPU for these small models, after a one-off compilation of a
        few seconds (``benchmarks/fit.py --compile``). Needs a C++ compiler on CPU.
    n_threads : int or None, default=1
        Torch CPU threads during ``fit``/``predict`` (restored afterwards). One thread is the
        fastest for these small batched products on few cores; ``None`` leaves torch's setting.
    random_state : int, RandomState instance or None, default=None
        Seeds the random init, the shuffling, the training query vectors and the query vectors
        drawn at each ``predict`` (the same as :class:`PowerIterationPCA`'s with that seed).
    verbose : int, default=0
        ``1`` prints skorch's epoch log with a progress bar.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks (checkpoints, early stopping on ``train_loss``, LR schedules, ...).

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained net; ``net_.module_`` is the torch module.
    W_pv_, W_kq_ : ndarray of shape (2 n_features, 2 n_features)
        Learned weights (``2d × 2d``; built from ``u, w`` for the scalar parametrization).
    u_, w_ : float
        Mean diagonals of the active blocks ``W_pv[21]`` and ``W_kq[12]``.
    rho_ : float
        Learned gain ``u_ · w_`` of the shifted power iteration.
    history_ : skorch.History
        Per epoch: ``train_loss`` and the active scalars ``u``, ``w``, ``rho``.
    n_features_in_ : int
        Feature count seen in ``fit``.

    Notes
    -----
    Measured on CPU (float64, 2000 training matrices, 40 epochs, ``lr="auto"``, median angles on
    500 held-out matrices after 20 loops; power method with the same loops in brackets):

    - LN layerwise: Task 1 1.0° [0.37°], Task 2 1.9° [0.06°], wine 0.48° [1e-14°];
    - end-to-end (default, L = 3): wine 0.65°, but Task 1 19° and Task 2 29°: the end-to-end
      power-method manifold is a saddle, and SGD grows the off-diagonal of the active blocks
      (math note §1.1–1.2), so prefer ``objective="layerwise"`` to loop far beyond training;
    - no LN, unnormalized target: ρ → ρ* = n − nd/(n+d−1) (Task 1: 10.4), 5.0° on Task 1.

    A model trained by SGD on finite data has an *error floor* when looped: its active blocks
    are not exactly multiples of ``I``, so the loop converges to a slightly wrong fixed point.
    On wine matrices (d = 13, n = 16) the floor is 1.8° at ρ ≈ 21, 0.62° at ρ ≈ 72 and 0.48° at
    ρ ≈ 156, while the shifted power method with the same ρ reaches 1e-14°.

    See Also
    --------
    PowerIterationPCA : the algorithm the model learns (``shift=rho_`` with LN).
    ExactPCA : the exact components.

    References
    ----------
    L. Wu, C. Zhang, Y. Cao, *Looped Transformers with Layer Normalization Provably Learn the
    Power Method*, arXiv:2606.00605, 2026.

    Examples
    --------
    >>> from skloop import LoopedTransformerPCA
    >>> from skloop.datasets import make_sphere_matrices
    >>> X = make_sphere_matrices(256, n_points=16, n_features=4, random_state=0)
    >>> model = LoopedTransformerPCA(n_loops=2, max_epochs=5, random_state=0).fit(X)
    >>> model.predict(X).shape
    (256, 4)
    >>> bool(model.rho_ > 0)
    True
    """

    def __init__(
        self,
        n_loops=3,
        *,
        normalization="rms",
        objective="end_to_end",
        target="normalized",
        inference_loops=None,
        n_components=1,
        deflation="query",
        init="paper",
        init_scale=0.01,
        parametrization="full",
        normalize_output_in_loss=True,
        mask_query=False,
        online=False,
        lr="auto",
        batch_size=128,
        max_epochs=50,
        optimizer="sgd",
        center=False,
        normalize_points=True,
        dtype="float32",
        device="auto",
        compile=False,
        n_threads=1,
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.n_loops = n_loops
        self.normalization = normalization
        self.objective = objective
        self.target = target
        self.inference_loops = inference_loops
        self.n_components = n_components
        self.deflation = deflation
        self.init = init
        self.init_scale = init_scale
        self.parametrization = parametrization
        self.normalize_output_in_loss = normalize_output_in_loss
        self.mask_query = mask_query
        self.online = online
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.center = center
        self.normalize_points = normalize_points
        self.dtype = dtype
        self.device = device
        self.compile = compile
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        check_int(self.n_loops, "n_loops", 1)
        if self.inference_loops is not None:
            check_int(self.inference_loops, "inference_loops", 1)
        choices = {
            "normalization": ("rms", None),
            "objective": ("end_to_end", "layerwise"),
            "target": ("normalized", "unnormalized"),
            "init": INITS,
            "parametrization": ("full", "scalar"),
            "deflation": ("query", "points"),
            "optimizer": tuple(OPTIMIZERS),
            "dtype": tuple(DTYPES),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}.")
        if (self.objective, self.normalization, self.target) == (
            "layerwise", "rms", "unnormalized"
        ):
            raise ValueError(
                "target='unnormalized' needs normalization=None: an LN layer outputs unit "
                "vectors and cannot match AᵀAv, whose norm grows with n."
            )
        for name in ("normalize_output_in_loss", "mask_query", "online"):
            check_bool(getattr(self, name), name)
        if not (isinstance(self.init_scale, numbers.Real) and self.init_scale > 0):
            raise ValueError(f"init_scale must be a float > 0; got {self.init_scale!r}.")
        if not (self.lr == "auto" or (
            isinstance(self.lr, numbers.Real) and not isinstance(self.lr, bool)
            and np.isfinite(self.lr) and self.lr > 0
        )):
            raise ValueError(f"lr must be 'auto' or a finite float > 0; got {self.lr!r}.")
        check_training_params(self)
        if self.init == "random":
            warnings.warn(
                "init='random' is outside the paper's theory: the learned layer need not be a "
                "power iteration (and the literal end-to-end loss can collapse to y -> 0).",
                UserWarning,
                stacklevel=3,
            )

    def _fixed_n_features(self):
        return self.parametrization == "full"

    def _learning_rate(self, n_features: int) -> float:
        if self.lr == "auto":
            lr = 0.03 if self.optimizer == "adam" else _AUTO_LR_PER_FEATURE.get(
                (self.objective, self.normalization, self.target), 0.5
            ) * n_features
        else:
            lr = float(self.lr)
        # The scalar model's gradient in u is d times that of each diagonal entry of the full
        # model's block (math note §3.3): dividing by d follows the same trajectory.
        return lr / n_features if self.parametrization == "scalar" else lr

    # ------------------------------------------------------------------ training
    def _fit(self, batch: MatrixBatch):
        d = batch.n_features
        if np.any(batch.n_points < d):
            raise ValueError(
                f"Training needs n_points >= n_features (got matrices with "
                f"{int(batch.n_points.min())} points in {d} dimensions): the paper's "
                "Assumption 3.2 asks for a full-rank second moment. Any n_points works at "
                "predict time."
            )
        rng = check_random_state(self.random_state)
        module_seed, shuffle_seed, online_seed = (seed_from(rng) for _ in range(3))
        inputs, projector = self._objective_inputs(batch, rng)
        net = self._build_net(d, module_seed, shuffle_seed, online_seed)
        with torch_threads(self.n_threads):
            # The training set lives on the net's device: batches are slices of it, with no
            # host-to-device copy per step (on a GPU the copies dominated small models).
            device = net.device
            inputs = {key: value.to(device) for key, value in inputs.items()}
            net.fit(inputs, None if projector is None else projector.to(device))
        self.net_ = net
        self.history_ = net.history
        self._read_weights()

    def _objective_inputs(self, batch: MatrixBatch, rng):
        """The net's inputs (points, counts, query vectors) and target (projectors or None)."""
        v = random_query_vectors(rng, batch.n_matrices, batch.n_features)[:, :, 0]
        dtype = DTYPES[self.dtype]
        inputs = {
            "X": torch.from_numpy(batch.data).to(dtype),
            "n_points": torch.from_numpy(batch.n_points),
            "v": torch.from_numpy(v).to(dtype),
        }
        projector = None
        if self.objective == "end_to_end":  # projectors computed in float64, then cast
            projector = torch.from_numpy(subspace_of_batch(batch).projector).to(dtype)
        return inputs, projector

    def training_loss(self, X) -> float:
        """The training objective evaluated on ``X`` (e.g. a held-out test loss).

        Query vectors are drawn from ``random_state`` as at ``predict``; the depth is the
        training depth (``n_loops`` end-to-end, one layer layerwise).

        Parameters
        ----------
        X : array-like of shape (n_matrices, n_points, n_features) or list of 2-D arrays
            Data matrices.

        Returns
        -------
        loss : float
        """
        batch = self._prepare(X, reset=False)
        inputs, projector = self._objective_inputs(batch, check_random_state(self.random_state))
        with torch.no_grad(), torch_threads(self.n_threads):
            y = self.net_.infer(inputs)
            return float(self.net_.get_loss(y, projector, X=inputs))

    def _build_net(self, d: int, module_seed=0, shuffle_seed=0, online_seed=0):
        """The skorch net for points of dimension ``d`` with this estimator's settings."""
        callbacks = [("active_scalars", _RecordActiveScalars())]
        if self.online:
            callbacks.append(("redraw_queries", _RedrawQueries(online_seed)))
        return _LoopedPCANet(
            LoopedLinearAttention,
            module__n_features=d,
            module__normalization=self.normalization,
            module__parametrization=self.parametrization,
            module__init=self.init,
            module__init_scale=float(self.init_scale),
            module__mask_query=self.mask_query,
            module__n_loops=self.n_loops if self.objective == "end_to_end" else 1,
            module__seed=module_seed,
            module__dtype=DTYPES[self.dtype],
            objective=self.objective,
            target=self.target,
            normalize_output_in_loss=self.normalize_output_in_loss,
            optimizer=OPTIMIZERS[self.optimizer],
            lr=self._learning_rate(d),
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            iterator_train__shuffle=True,
            iterator_train__seed=shuffle_seed,
            callbacks=callbacks + training_callbacks(self.verbose, self.callbacks),
            device=resolve_device(self.device),
            compile=self.compile,
            verbose=self.verbose,
        )

    def _restore(self, fitted: dict, state: dict, history: list) -> None:
        self.n_features_in_ = int(fitted["n_features_in_"])
        self.net_ = restore_net(self._build_net(self.n_features_in_), state, history)
        self.history_ = self.net_.history
        self._read_weights()

    def _read_weights(self):
        """Refresh the fitted weight attributes from the trained module."""
        self.W_pv_, self.W_kq_ = _weights(self.net_, self.n_features_in_)
        self.u_, self.w_ = active_scalars(self.W_pv_, self.W_kq_)
        self.rho_ = self.u_ * self.w_

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
        if self.parametrization != "full":
            raise ValueError("Replacing the weights needs parametrization='full'.")
        model = copy.deepcopy(self)
        module = plain_module(model.net_)
        with torch.no_grad():
            module.W_pv.copy_(torch.as_tensor(np.asarray(W_pv), dtype=module.W_pv.dtype))
            module.W_kq.copy_(torch.as_tensor(np.asarray(W_kq), dtype=module.W_kq.dtype))
        model._read_weights()
        return model

    # ------------------------------------------------------------------ inference
    def _loops(self) -> int:
        return self.n_loops if self.inference_loops is None else self.inference_loops

    def _query_vectors(self, batch: MatrixBatch) -> np.ndarray:
        """Orthonormal query vectors ``(N, d, n_components)`` drawn from ``random_state``."""
        rng = check_random_state(self.random_state)
        return random_query_vectors(rng, batch.n_matrices, batch.n_features, self.n_components)

    def _loop_outputs(self, data, n_points, v, n_loops, every_loop=False, orthogonal_to=None):
        """Raw read-outs ``(N, d)`` after ``n_loops`` loops, or ``(n_loops, N, d)`` per loop."""
        module, device = plain_module(self.net_), self.net_.device

        def tensor(array, part):
            values = torch.from_numpy(np.ascontiguousarray(array[part]))
            if values.is_floating_point():
                return values.to(device, DTYPES[self.dtype])
            return values.to(device)

        outputs = []
        with torch.no_grad(), torch_threads(self.n_threads):
            rows = max(1, _PREDICT_ELEMENTS // (data.shape[1] * data.shape[2]))
            for start in range(0, len(data), rows):
                part = slice(start, start + rows)
                steps = module.iterate(
                    tensor(data, part), tensor(n_points, part), tensor(v, part), n_loops,
                    None if orthogonal_to is None else tensor(orthogonal_to, part),
                )
                if every_loop:
                    outputs.append(torch.stack(list(steps)).cpu().numpy())
                else:
                    outputs.append(last(steps).cpu().numpy())
        return np.concatenate(outputs, axis=1 if every_loop else 0).astype(np.float64)

    def _normalized(self, y: np.ndarray, n_loops: int) -> np.ndarray:
        norms = np.linalg.norm(y, axis=-1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise FloatingPointError(
                f"The looped output is {'zero' if np.all(np.isfinite(norms)) else 'not finite'}"
                f" for some matrices after {n_loops} loops (without LN its norm grows "
                "like (1 + ρλ₁)^K); use fewer inference_loops or normalization='rms'."
            )
        return y / norms

    def _components(self, batch: MatrixBatch) -> np.ndarray:
        """Leading component by the learned loop, further ones by deflation (see ``deflation``)."""
        n_loops = self._loops()
        queries = self._query_vectors(batch)
        data, n_points = batch.data, batch.n_points
        found = []
        for j in range(self.n_components):
            orthogonal_to = None
            if j > 0 and self.deflation == "points":
                data, n_points = deflate_points(data, found[-1])
                if np.any(n_points == 0):
                    raise ValueError(
                        f"{int(np.sum(n_points == 0))} matrix(es) have rank < n_components="
                        f"{self.n_components}: nothing is left to deflate."
                    )
            elif j > 0:
                orthogonal_to = np.stack(found, axis=2)
            v = _orthogonal_to(queries[:, :, j], found)
            y = self._loop_outputs(data, n_points, v, n_loops, orthogonal_to=orthogonal_to)
            found.append(self._normalized(_orthogonal_to(y, found), n_loops))
        return np.stack(found, axis=2)

    # ------------------------------------------------------------------ diagnostics
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
        if self.parametrization == "scalar":
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
        report["predicted_growth_exponent"] = PREDICTED_GROWTH.get(
            (self.objective, self.normalization)
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
        check_int(max_loops, "max_loops", 1)
        batch = self._prepare(X, reset=False)
        v = self._query_vectors(batch)[:, :, 0]
        outputs = self._loop_outputs(batch.data, batch.n_points, v, max_loops, every_loop=True)
        components = flip_signs(self._normalized(outputs, max_loops))
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
            "shifted_errors": power_errors(float(self.rho_)),
        }

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


def _orthogonal_to(vectors: np.ndarray, found: list) -> np.ndarray:
    """Remove the components along the unit vectors already found (Gram–Schmidt), rescale."""
    for c in found:
        vectors = vectors - np.sum(vectors * c, axis=1, keepdims=True) * c
    if found:
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-300)
    return vectors
