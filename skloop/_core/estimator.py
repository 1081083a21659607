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

from .params import Integral, Number, Real, StrOptions, validate_params
from .skorch import (
    DTYPES,
    OPTIMIZERS,
    TrainingInterrupted,
    check_finite_parameters,
    plain_module,
    resolve_device,
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

TRAINING_PARAMETER_CONSTRAINTS = {
    "optimizer": [StrOptions(set(OPTIMIZERS))],
    "lr": [Number(Real, 0, None, closed="neither")],
    "batch_size": [Number(Integral, 1, None, closed="left")],
    "max_epochs": [Number(Integral, 1, None, closed="left")],
    "dtype": [StrOptions(set(DTYPES))],
    "device": [str, torch.device],
    "compile": ["boolean"],
    "n_threads": [Number(Integral, 1, None, closed="left"), None],
    "random_state": ["random_state"],
    "verbose": [Number(Integral, 0, None, closed="left")],
    "callbacks": [list, None],
}

# The numpydoc text of the training parameters every torch estimator shares, substituted for
# ``%(training_parameters)s`` in the class docstrings (written once, so it cannot drift).
TRAINING_PARAMETERS_DOC = """\
dtype : {"float32", "float64"}, default="float32"
        Parameter and compute dtype of the torch module. float32 is faster; float64 agrees with
        exact references to ~1e-12 (angles below ~1e-3 degrees need it). Inputs are validated
        in float64 and predictions returned as float64 either way; inference runs in the dtype
        the model was fitted with.
    device : str or torch.device, default="auto"
        Torch device; ``"auto"`` picks CUDA when available. An unavailable device raises a
        ``ValueError`` at ``fit``.
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
        Extra skorch callbacks (checkpoints, early stopping on ``train_loss``, LR schedules,
        ...), as ``Callback`` objects or ``(name, Callback)`` pairs."""


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

    def _atomic_fit(self, X, y=None):
        staged = copy.copy(self)
        for name in fitted_attributes(staged):
            delattr(staged, name)
        try:
            staged._fit(X, y)
        except TrainingInterrupted:
            raise KeyboardInterrupt(
                f"{type(self).__name__}.fit was interrupted; the estimator keeps its previous "
                "state."
            ) from None
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

    def _seeds(self, count: int) -> list[int]:
        """``count`` seeds for the generators of one fit, from ``random_state``."""
        rng = random_state_for(self.random_state)
        return [seed_from(rng) for _ in range(count)]

    def _net_arguments(self, *, lr, shuffle_seed=0, callbacks=()) -> dict:
        """skorch ``NeuralNet`` keyword arguments of the shared training parameters."""
        return dict(
            optimizer=OPTIMIZERS[self.optimizer],
            lr=lr,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            iterator_train__shuffle=True,
            iterator_train__seed=shuffle_seed,
            callbacks=list(callbacks) + training_callbacks(self.verbose, self.callbacks),
            device=resolve_device(self.device),
            compile=self.compile,
            verbose=self.verbose,
        )

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

