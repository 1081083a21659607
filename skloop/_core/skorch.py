"""The skorch layer shared by skloop's torch estimators.

A slice-based batch iterator (tiny models are otherwise dominated by per-sample
``Dataset.__getitem__`` calls), reproducible shuffling, a divergence guard, in-place refresh of
online training data, a net that tells an interrupted fit from a callback's early stop, device
choice and the ``torch.compile`` unwrapping, so the estimators only write their model, their
loss and their API.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import threading

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, ProgressBar

__all__ = [
    "DTYPES",
    "OPTIMIZERS",
    "available_devices",
    "dataset_arrays",
    "resolve_dtype",
    "LoopNet",
    "RefreshTrainingData",
    "SliceIterator",
    "StopOnDivergence",
    "TrainingInterrupted",
    "check_finite_parameters",
    "plain_module",
    "resolve_device",
    "training_callbacks",
]


OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def plain_module(net) -> torch.nn.Module:
    """The net's torch module without the ``torch.compile`` wrapper (``compile=True``): its
    ``state_dict`` keys and its class are those of the module itself."""
    return getattr(net.module_, "_orig_mod", net.module_)


def available_devices() -> list[str]:
    """The torch devices this machine can use: ``"cpu"``, then ``"cuda:N"`` and ``"mps"``."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device) -> str:
    """``"auto"`` → CUDA, else MPS, else CPU; other devices are checked to exist.

    Parameters
    ----------
    device : str, torch.device or None
        ``"auto"`` (or None), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a
        ``torch.device``.

    Returns
    -------
    device : str

    Raises
    ------
    ValueError
        If the device is not a torch device or this machine cannot use it; the message lists
        the devices it can use.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device ({exc}).") from None
    usable = available_devices()
    index = 0 if parsed.index is None else parsed.index
    ok = (parsed.type == "cpu" or (parsed.type == "cuda" and f"cuda:{index}" in usable)
          or (parsed.type == "mps" and "mps" in usable))
    if not ok:
        raise ValueError(
            f"device={device!r} is not available on this machine; available: "
            f"{', '.join(repr(d) for d in usable)} (or 'auto')."
        )
    return str(parsed)


def resolve_dtype(dtype) -> torch.dtype:
    """The torch floating dtype named by ``dtype``: ``"float32"``/``"float64"``, a numpy
    dtype (``np.float32``) or a torch dtype (``torch.float64``).

    Raises
    ------
    ValueError
        For any other dtype.
    """
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        try:
            resolved = DTYPES.get(np.dtype(dtype).name)
        except TypeError:
            resolved = None
    if resolved not in DTYPES.values():
        raise ValueError(
            f"dtype={dtype!r} is not supported; use 'float32' or 'float64' (or the numpy / "
            "torch dtypes of those names)."
        )
    return resolved


def dataset_arrays(dataset):
    """``(X, y, rows)`` of a skorch ``Dataset`` or of a ``Subset`` of one (a validation split):
    the full tensors and the rows that belong to ``dataset`` (``None``: all of them)."""
    if isinstance(dataset, torch.utils.data.Subset):
        return dataset.dataset.X, dataset.dataset.y, torch.as_tensor(dataset.indices)
    return dataset.X, dataset.y, None


class SliceIterator:
    """Mini-batches of a skorch ``Dataset`` by slicing its tensors, not item by item.

    ``dataset.X`` may be a tensor or a dict of tensors (passed to the module as keyword
    arguments); ``dataset.y`` a tensor or None; a ``torch.utils.data.Subset`` of such a dataset
    (skorch's ``ValidSplit``) is read through its indices. Every pass (epoch) draws a new
    permutation from ``generator`` when ``shuffle`` is set, so runs are reproducible without
    touching torch's global RNG; a generator shared across calls continues its sequence (the
    second ``partial_fit`` shuffles as the second epoch of one ``fit``).

    Parameters
    ----------
    dataset : skorch.dataset.Dataset or torch.utils.data.Subset
        The data, held by reference (in-place updates between epochs are seen).
    batch_size : int
        Rows per batch; the last batch may be smaller.
    shuffle : bool, default=False
        Permute the rows at every pass.
    seed : int, default=0
        Seed of a new permutation generator (when ``generator`` is None).
    generator : torch.Generator or None, default=None
        The permutation generator to use (and advance).
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0, generator=None):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator or torch.Generator().manual_seed(int(seed))

    def __len__(self):
        return math.ceil(len(self.dataset) / self.batch_size)

    @staticmethod
    def _take(data, index):
        if data is None:
            return None
        if isinstance(data, dict):
            return {key: value[index] for key, value in data.items()}
        return data[index]

    def __iter__(self):
        X, y, rows = dataset_arrays(self.dataset)
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            index = slice(start, start + self.batch_size)
            if order is not None:
                index = order[index]
            if rows is not None:
                index = rows[index]
            yield self._take(X, index), self._take(y, index)


class StopOnDivergence(Callback):
    """Stop training with a clear error as soon as a batch loss is NaN or infinite."""

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if training and loss is not None and not torch.isfinite(loss).all():
            raise FloatingPointError(
                f"Training diverged at epoch {len(net.history)}: the training loss became "
                f"{loss.item()}. Lower the learning rate (lr) or use optimizer='adam'; if the "
                "data or targets are large (normalize_points=False, unscaled y) rescale them, "
                "and with a random init lower init_scale."
            )


def check_finite_parameters(net) -> None:
    """Raise when a parameter is not finite after training (a last step that diverged)."""
    for name, param in plain_module(net).named_parameters():
        if not torch.isfinite(param).all():
            raise FloatingPointError(
                f"Training diverged: the parameter {name!r} is not finite after the last step. "
                "Lower the learning rate (lr) or use optimizer='adam'; if the data or targets "
                "are large, rescale them."
            )


class RefreshTrainingData(Callback):
    """Online training: overwrite the training set in place at the start of each epoch.

    Parameters
    ----------
    draw : callable
        ``draw(n_rows, rng) -> dict`` with the fresh values: ``"X"`` (an array, or a dict of
        arrays for a dict input: only the keys given are replaced) and optionally ``"y"``.
    seed : int
        Seed of the ``numpy.random.RandomState`` passed to ``draw``.
    first_epoch : bool, default=True
        Refresh before the first epoch too; ``False`` keeps the data ``fit`` was given.
    """

    def __init__(self, draw, seed, first_epoch=True):
        self.draw = draw
        self.seed = seed
        self.first_epoch = first_epoch

    def initialize(self):
        self.rng_ = np.random.RandomState(self.seed)
        return self

    @staticmethod
    def _overwrite(target: torch.Tensor, rows, values) -> None:
        part = target if rows is None else target[rows]
        values = torch.as_tensor(np.asarray(values)).reshape(part.shape).to(target)
        if rows is None:
            target.copy_(values)
        else:  # a training split: only its rows are redrawn
            target[rows] = values

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if not self.first_epoch and len(net.history) <= 1:
            return
        X, y, rows = dataset_arrays(dataset_train)
        fresh = self.draw(len(dataset_train), self.rng_)
        if isinstance(X, dict):
            for key, values in fresh["X"].items():
                self._overwrite(X[key], rows, values)
        else:
            self._overwrite(X, rows, fresh["X"])
        if "y" in fresh:
            self._overwrite(y, rows, fresh["y"])


class TrainingInterrupted(Exception):  # noqa: N818 - it is the interruption, not an error
    """A fit interrupted from outside (Ctrl-C), as opposed to a callback's early stop."""


@contextlib.contextmanager
def _watch_sigint(flag: list):
    """While the block runs (main thread only), note a SIGINT in ``flag`` before handing it
    to the previous handler (Python's raises ``KeyboardInterrupt``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        flag.append(signum)
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class LoopNet(NeuralNet):
    """``NeuralNet`` with skloop's defaults: slice iterator, no validation split.

    skorch ends training quietly on a ``KeyboardInterrupt``, which is how callbacks such as
    ``EarlyStopping`` stop, and so does this net; but a real interruption (SIGINT, Ctrl-C)
    raises :class:`TrainingInterrupted` instead, so that the estimator keeps its previous
    fitted state rather than a half-trained model. A callback that needs ``valid_loss``
    without a validation split gets a message that says so.
    """

    def __init__(self, module, *args, criterion=torch.nn.MSELoss, train_split=None,
                 iterator_train=SliceIterator, iterator_valid=SliceIterator, **kwargs):
        super().__init__(module, *args, criterion=criterion, train_split=train_split,
                         iterator_train=iterator_train, iterator_valid=iterator_valid,
                         **kwargs)

    def notify(self, method_name, **cb_kwargs):
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyError as exc:
            key = re.search(r"valid_\w+", str(exc))
            if self.train_split is None and key:
                raise ValueError(
                    f"A callback reads {key.group()!r}, but there is no validation split "
                    "(train_split=None). Set train_split (e.g. 0.2: a fifth of the data held "
                    "out) or have the callback monitor 'train_loss'."
                ) from None
            raise

    def fit_loop(self, X, y=None, **fit_params):
        signals = []
        try:
            with _watch_sigint(signals):
                return super().fit_loop(X, y, **fit_params)
        except KeyboardInterrupt:
            if signals:
                raise TrainingInterrupted("training was interrupted") from None
            raise  # a callback's stop: skorch's partial_fit ends training normally


def training_callbacks(verbose: int, extra=None) -> list:
    """The callbacks every estimator trains with: divergence guard, progress bar, then the
    user's as given (skorch names a bare callback by its class, so ``callbacks__<Class>__*``
    and ``callbacks__<name>__*`` address them as in skorch)."""
    callbacks = [("stop_on_divergence", StopOnDivergence())]
    if verbose:
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks + list(extra or [])
