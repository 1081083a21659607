"""The skorch foundation shared by skloop's estimators.

Device choice, a slice-based batch iterator (tiny models are otherwise dominated by per-sample
``Dataset.__getitem__`` calls), reproducible shuffling, a divergence guard, thread control and
the progress bar, so the estimators only write their model, their loss and their API.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, ProgressBar

__all__ = [
    "DTYPES",
    "plain_module",
    "OPTIMIZERS",
    "resolve_device",
    "SliceIterator",
    "StopOnDivergence",
    "LoopNet",
    "torch_threads",
    "seed_from",
    "training_callbacks",
]


OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def plain_module(net) -> torch.nn.Module:
    """The net's torch module without the ``torch.compile`` wrapper (``compile=True``): its
    ``state_dict`` keys and its class are those of the module itself."""
    return getattr(net.module_, "_orig_mod", net.module_)


def resolve_device(device) -> str:
    """``"auto"`` → ``"cuda"`` when available, else ``"cpu"``; other values pass through."""
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def seed_from(rng: np.random.RandomState) -> int:
    """A 31-bit seed drawn from a numpy ``RandomState`` (for torch generators)."""
    return int(rng.randint(0, 2**31 - 1))


class SliceIterator:
    """Mini-batches of a skorch ``Dataset`` by slicing its tensors, not item by item.

    ``dataset.X`` may be a tensor or a dict of tensors (passed to the module as keyword
    arguments); ``dataset.y`` a tensor or None. Re-iterable: every pass (epoch) draws a new
    permutation from ``generator`` when ``shuffle`` is set, so runs are reproducible without
    touching torch's global RNG.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        The data, held by reference (in-place updates between epochs are seen).
    batch_size : int
        Rows per batch; the last batch may be smaller.
    shuffle : bool, default=False
        Permute the rows at every pass.
    seed : int, default=0
        Seed of the permutation generator.
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(int(seed))

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
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            index = slice(start, start + self.batch_size)
            if order is not None:
                index = order[index]
            yield self._take(self.dataset.X, index), self._take(self.dataset.y, index)


class StopOnDivergence(Callback):
    """Stop training with a clear error as soon as a batch loss is NaN or infinite."""

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if training and loss is not None and not torch.isfinite(loss).all():
            raise FloatingPointError(
                f"Training diverged at epoch {len(net.history)}: the training loss became "
                f"{loss.item()}. Lower the learning rate (lr) or use optimizer='adam'."
            )


class LoopNet(NeuralNet):
    """``NeuralNet`` with skloop's defaults: slice iterator, no validation split."""

    def __init__(self, module, *args, criterion=torch.nn.MSELoss, train_split=None,
                 iterator_train=SliceIterator, iterator_valid=SliceIterator, **kwargs):
        super().__init__(module, *args, criterion=criterion, train_split=train_split,
                         iterator_train=iterator_train, iterator_valid=iterator_valid,
                         **kwargs)


def training_callbacks(verbose: int, extra=None) -> list:
    """The callbacks every estimator trains with: divergence guard, progress bar, user's."""
    callbacks = [("stop_on_divergence", StopOnDivergence())]
    if verbose:
        callbacks.append(("progress_bar", ProgressBar()))
    for i, callback in enumerate(extra or []):
        if isinstance(callback, tuple):
            callbacks.append(callback)
        else:
            callbacks.append((f"user_{i}_{type(callback).__name__}", callback))
    return callbacks


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
