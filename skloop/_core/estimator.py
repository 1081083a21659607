"""What every skloop estimator shares: atomic fit, seeding, threads, and for the torch
estimators the training parameters, their checks and documentation, the net's arguments and
inference chunked by a data-size budget.

A new estimator family reuses this module: it declares its own parameters next to the class,
adds :data:`TRAINING_PARAMETER_CONSTRAINTS` to its constraint table, builds its net with
:meth:`TorchEstimatorMixin._net_arguments` and trains it with
:meth:`TorchEstimatorMixin._train`.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch.dataset import ValidSplit

from .params import HasMethods, Integral, Number, Real, StrOptions, validate_params
from .skorch import (
    DTYPES,
    OPTIMIZERS,
    TrainingInterrupted,
    check_finite_parameters,
    plain_module,
    resolve_device,
    resolve_dtype,
    training_callbacks,
)

__all__ = [
    "AtomicFitMixin",
    "PREDICT_BUDGET",
    "TRAINING_PARAMETERS_DOC",
    "TRAINING_PARAMETER_CONSTRAINTS",
    "TorchEstimatorMixin",
    "document_training_parameters",
    "fitted_attributes",
    "random_state_for",
    "rows_per_chunk",
    "seed_from",
    "torch_threads",
]

# Values held by one forward pass at predict time: bounds memory whatever the input size, while
# a typical batch still runs in one pass (no per-chunk loop overhead).
PREDICT_BUDGET = 2**23

class _OptimizerClass(HasMethods):
    """A ``torch.optim.Optimizer`` subclass (the class, as skorch takes it)."""

    def __init__(self):
        super().__init__(["step", "zero_grad"])

    def is_satisfied_by(self, val):
        return isinstance(val, type) and issubclass(val, torch.optim.Optimizer)

    def __str__(self):
        return "a torch.optim.Optimizer subclass (e.g. torch.optim.AdamW)"


class _FloatDtype(HasMethods):
    """A numpy or torch float32/float64 dtype (the strings are a ``StrOptions``)."""

    def __init__(self):
        super().__init__([])

    def is_satisfied_by(self, val):
        if isinstance(val, str):
            return False
        try:
            resolve_dtype(val)
        except ValueError:
            return False
        return True

    def __str__(self):
        return "numpy's or torch's float32 or float64"


TRAINING_PARAMETER_CONSTRAINTS = {
    "optimizer": [StrOptions(set(OPTIMIZERS)), _OptimizerClass()],
    "lr": [Number(Real, 0, None, closed="neither")],
    "batch_size": [Number(Integral, 1, None, closed="left")],
    "max_epochs": [Number(Integral, 1, None, closed="left")],
    "train_split": [None, Number(Real, 0, 1, closed="neither"),
                    Number(Integral, 2, None, closed="left"), callable],
    "warm_start": ["boolean"],
    "dtype": [StrOptions(set(DTYPES)), _FloatDtype()],
    "device": [str, torch.device],
    "compile": ["boolean"],
    "n_threads": [Number(Integral, 1, None, closed="left"), None],
    "random_state": ["random_state"],
    "verbose": [Number(Integral, 0, None, closed="left")],
    "callbacks": [list, None],
}
# skorch's parameter routing: ``<prefix>__<name>`` keyword arguments reach the net unchanged.
ROUTED_PREFIXES = ("optimizer", "iterator_train", "iterator_valid", "callbacks")

# The numpydoc text of the training parameters every torch estimator shares, substituted for
# ``%(training_parameters)s`` in the class docstrings (written once, so it cannot drift).
TRAINING_PARAMETERS_DOC = """\
train_split : None, float, int or callable, default=None
        skorch's validation split, holding out whole matrices (sequences): a float is the
        held-out fraction (a seeded ``skorch.dataset.ValidSplit``), an int ``k`` holds out one
        fold of ``k``, a callable is used as skorch uses it (``ValidSplit(...)``). With a split
        the history records ``valid_loss`` and skorch callbacks (``EarlyStopping``,
        ``Checkpoint``, ``LRScheduler``, ``EpochScoring``) work with their defaults.
    warm_start : bool, default=False
        ``fit`` continues from the fitted weights (history continues) instead of starting
        again; :meth:`partial_fit` always continues.
    dtype : {"float32", "float64"} or numpy/torch dtype, default="float32"
        Parameter and compute dtype of the torch module. float32 is faster; float64 agrees with
        exact references to ~1e-12 (angles below ~1e-3 degrees need it). Inputs are validated
        in float64 and predictions returned as float64 either way; inference runs in the dtype
        the model was fitted with.
    device : str or torch.device, default="auto"
        Torch device: ``"auto"`` picks CUDA, then Apple's MPS, then the CPU; ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``, ``"mps"``. An unavailable device raises a ``ValueError``
        listing the available ones, at ``fit`` and at ``load``.
    compile : bool, default=False
        Train the module under ``torch.compile`` (skorch's ``compile=True``): about 1.5x the
        training throughput on CPU for these small models, after a one-off compilation of a
        few seconds to a minute (``skloop bench fit --compile``). Needs a C++ compiler on CPU.
    n_threads : int or None, default=1
        Torch CPU threads during ``fit`` and inference (restored afterwards). One thread is
        the fastest for these small batched products on few cores; ``None`` leaves torch's
        setting.
    random_state : int, RandomState instance or None, default=None
        Seeds everything random in ``fit`` (initialization, shuffling, data drawn online) from
        its own generators: torch's and numpy's global random states are never touched.
        ``None`` draws fresh entropy at each ``fit``.
    verbose : int, default=0
        ``1`` prints skorch's epoch log with a progress bar.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks (checkpoints, early stopping, LR schedules, scoring), as
        ``Callback`` objects or ``(name, Callback)`` pairs; without ``train_split`` they can
        monitor ``"train_loss"``.
    **skorch_params
        skorch's routed parameters, as on a ``NeuralNet``: ``optimizer__*`` (e.g.
        ``optimizer__weight_decay``, ``optimizer__momentum``), ``iterator_train__*``,
        ``iterator_valid__*``, ``callbacks__<name>__*``. ``get_params``, ``set_params``,
        ``clone`` and grid searches see them."""


def document_training_parameters(cls):
    """Class decorator: put :data:`TRAINING_PARAMETERS_DOC` in place of the line
    ``%(training_parameters)s`` of the class docstring."""
    cls.__doc__ = cls.__doc__.replace("%(training_parameters)s", TRAINING_PARAMETERS_DOC)
    return cls


def seed_from(rng: np.random.RandomState) -> int:
    """A 31-bit seed drawn from a numpy ``RandomState`` (for torch generators)."""
    return int(rng.randint(0, 2**31 - 1))


def random_state_for(random_state) -> np.random.RandomState:
    """``check_random_state``, except that ``None`` gives a generator seeded from fresh OS
    entropy instead of numpy's global one, which skloop never advances."""
    if random_state is None:
        return np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])
    return check_random_state(random_state)


def rows_per_chunk(values_per_row: int, budget: int | None = None) -> int:
    """Rows of a batch that one inference pass may take: ``budget`` values (default
    :data:`PREDICT_BUDGET`), at least one row."""
    budget = PREDICT_BUDGET if budget is None else budget
    return max(1, budget // max(1, int(values_per_row)))


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``torch.set_num_threads(n_threads)`` (``None``: leave as is)."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def torch_context(n_threads):
    """Threads set as asked, and torch's global RNG (CPU, and CUDA once in use) restored on
    exit: skorch's ``initialize`` runs torch's default initializers, which draw from it."""
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    with torch.random.fork_rng(devices=devices), torch_threads(n_threads):
        yield


def fitted_attributes(estimator) -> dict:
    """The fitted state: instance attributes ending in ``_`` (scikit-learn's convention)."""
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") and not k.startswith("__")}


class AtomicFitMixin:
    """``fit`` replaces the fitted attributes only when it succeeds.

    The fit runs on a shallow copy with no fitted state; on success its fitted attributes
    replace this estimator's, so a fit that raises (bad data, an exception in a callback,
    divergence, an interruption) leaves a previously fitted estimator exactly as it was.
    Subclasses implement ``_fit(X, y)`` and call :meth:`_atomic_fit` from their ``fit``.
    """

    def _atomic_fit(self, X, y=None, *, warm=False):
        """Run ``_fit(X, y)`` (or, ``warm``, ``_continue_fit(X, y)`` from a copy of the fitted
        state) on a staged copy; commit its fitted attributes only if it succeeds."""
        staged = copy.copy(self)
        for name in fitted_attributes(staged):
            delattr(staged, name)
        if warm:  # one deepcopy, so shared references (net_.history is history_) stay shared
            vars(staged).update(copy.deepcopy(fitted_attributes(self)))
        # skorch initializes the user's callback objects in place: keep their state to put
        # back if the fit fails (they belong to the fitted model's net too).
        callbacks = [c[1] if isinstance(c, tuple) else c for c in getattr(self, "callbacks", None)
                     or []]
        saved = [(callback, copy.deepcopy(vars(callback))) for callback in callbacks]
        try:
            staged._continue_fit(X, y) if warm else staged._fit(X, y)
        except BaseException as exc:
            for callback, state in saved:
                vars(callback).clear()
                vars(callback).update(state)
            if isinstance(exc, TrainingInterrupted):
                raise KeyboardInterrupt(
                    f"{type(self).__name__}.fit was interrupted; the estimator keeps its "
                    "previous state."
                ) from None
            raise
        for name in fitted_attributes(self):
            delattr(self, name)
        vars(self).update(fitted_attributes(staged))
        return self

    def _validate_params(self, names=None):
        validate_params(self, names)


class TorchEstimatorMixin:
    """Training parameters, net arguments, seeding and inference chunking of torch estimators.

    Subclasses take the parameters of :data:`TRAINING_PARAMETER_CONSTRAINTS` in their
    ``__init__`` and document them with ``%(training_parameters)s``.
    """

    def _store_routed(self, routed: dict) -> None:
        """Store skorch's ``<prefix>__<name>`` keyword arguments (from ``__init__``; checked at
        ``fit``, as scikit-learn checks parameters)."""
        vars(self).update(routed)

    def _routed_params(self) -> dict:
        """The keyword arguments beyond the signature's parameters."""
        named = set(self._get_param_names())
        return {k: v for k, v in vars(self).items()
                if k not in named and not k.startswith("_") and not k.endswith("_")}

    def _validate_params(self, names=None):
        super()._validate_params(names)
        unknown = [k for k in self._routed_params()
                   if "__" not in k or k.partition("__")[0] not in ROUTED_PREFIXES]
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameters {unknown}; skorch's routed "
                f"parameters start with {', '.join(p + '__' for p in ROUTED_PREFIXES)}."
            )

    def get_params(self, deep=True):
        """Parameters of this estimator, skorch's routed ``<prefix>__<name>`` ones included.

        Parameters
        ----------
        deep : bool, default=True
            Also the parameters of contained estimators.

        Returns
        -------
        params : dict
        """
        return {**super().get_params(deep=deep), **self._routed_params()}

    def set_params(self, **params):
        """Set parameters; skorch's routed ``<prefix>__<name>`` ones are stored as given.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
        """
        routed = {k: v for k, v in params.items()
                  if "__" in k and k.partition("__")[0] in ROUTED_PREFIXES}
        vars(self).update(routed)
        rest = {k: v for k, v in params.items() if k not in routed}
        return super().set_params(**rest) if rest else self

    def _record_architecture(self) -> None:
        """Keep the parameters that define the fitted model (``_architecture_parameters``)."""
        params = self.get_params(deep=False)
        self._architecture_ = {name: params[name] for name in self._architecture_parameters}

    def _check_same_architecture(self) -> None:
        """Before continuing a fit: the model-defining parameters must be those of the fit."""
        params = self.get_params(deep=False)
        changed = [f"{name}={params[name]!r} (fitted with {value!r})"
                   for name, value in self._architecture_.items()
                   if repr(params[name]) != repr(value)]
        if changed:
            raise ValueError(
                f"warm_start/partial_fit continue the fitted model, but {', '.join(changed)}; "
                "set them back, or fit from scratch with warm_start=False to change them."
            )

    def _optimizer_class(self):
        return OPTIMIZERS.get(self.optimizer) if isinstance(self.optimizer, str) else (
            self.optimizer)

    def _uses_sgd(self) -> bool:
        return self._optimizer_class() is torch.optim.SGD

    def _split(self, seed: int):
        """skorch's ``train_split`` for this estimator's ``train_split``."""
        if self.train_split is None or callable(self.train_split):
            return self.train_split
        if isinstance(self.train_split, Real) and not isinstance(self.train_split, Integral):
            return ValidSplit(float(self.train_split), random_state=seed)
        return ValidSplit(int(self.train_split))

    def _seeds(self, count: int) -> list[int]:
        """``count`` seeds for the generators of one fit, from ``random_state``."""
        rng = random_state_for(self.random_state)
        return [seed_from(rng) for _ in range(count)]

    def _net_arguments(self, *, lr, shuffle_seed=0, callbacks=()) -> dict:
        """skorch ``NeuralNet`` keyword arguments of the shared training parameters, then the
        user's routed ones (which win: ``iterator_train__shuffle=False`` is honoured)."""
        arguments = dict(
            optimizer=self._optimizer_class(),
            lr=lr,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            train_split=self._split(shuffle_seed),
            iterator_train__shuffle=True,
            # One generator for the net's life: partial_fit continues its shuffling sequence.
            iterator_train__generator=torch.Generator().manual_seed(shuffle_seed),
            callbacks=list(callbacks) + training_callbacks(self.verbose, self.callbacks),
            device=resolve_device(self.device),
            compile=self.compile,
            verbose=self.verbose,
        )
        return {**arguments, **self._routed_params()}

    def _dtype(self) -> torch.dtype:
        """The torch dtype of ``dtype``."""
        return resolve_dtype(self.dtype)

    def _torch_context(self):
        """Threads and global-RNG protection for a fit or an inference pass."""
        return torch_context(self.n_threads)

    @staticmethod
    def _check_trained(net) -> None:
        """After training: every parameter finite, else a clear error (the fit is discarded)."""
        check_finite_parameters(net)

    def _module(self) -> torch.nn.Module:
        """The fitted torch module (without a ``torch.compile`` wrapper)."""
        return plain_module(self.net_)

    def _module_dtype(self) -> torch.dtype:
        """The dtype the model was fitted with (``dtype`` may have been changed since)."""
        return next(self._module().parameters()).dtype

