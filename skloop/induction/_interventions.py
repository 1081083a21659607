"""Hooks, activation cache and interventions on a fitted induction estimator.

:class:`HookedEstimatorMixin` gives both induction estimators TransformerLens's workflow over
the named hook points of their modules (:mod:`skloop.induction._hooks`): ``run_with_cache``,
``run_with_hooks`` and the ``hooks`` context, ready-made head ablation (zero or mean) and
activation patching, each returning predictions and the loss change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._hooks import check_hook_names

__all__ = ["ActivationCache", "HookedEstimatorMixin", "InterventionResult"]


class ActivationCache(Mapping):
    """Activations of one run, as numpy arrays by hook name (only the names asked for).

    ``cache["blocks.0.attn.hook_pattern"]``, or TransformerLens's shorthand
    ``cache["pattern", 0]`` (``blocks.0.attn.hook_pattern``, else ``blocks.0.hook_pattern``).
    The names and shapes are those of :mod:`skloop.induction._hooks`; the first axis is the
    sequence.

    Parameters
    ----------
    arrays : dict of str to ndarray
        Activation of each hook point, over all sequences.
    predictions : ndarray of shape (n_sequences, n_outputs)
        The model's outputs in the same run.

    Attributes
    ----------
    predictions : ndarray of shape (n_sequences, n_outputs)
    """

    def __init__(self, arrays: dict, predictions: np.ndarray):
        self._arrays = dict(arrays)
        self.predictions = predictions

    def _name(self, key):
        if not isinstance(key, tuple):
            return key
        short, layer = key
        for name in (f"blocks.{layer}.attn.hook_{short}", f"blocks.{layer}.hook_{short}"):
            if name in self._arrays:
                return name
        raise KeyError(f"No cached activation {key!r}; the cache holds {list(self._arrays)}.")

    def __getitem__(self, key) -> np.ndarray:
        name = self._name(key)
        if name not in self._arrays:
            raise KeyError(f"{name!r} was not cached; the cache holds {list(self._arrays)}.")
        return self._arrays[name]

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    @property
    def shapes(self) -> dict:
        """Shape of each cached activation."""
        return {name: array.shape for name, array in self._arrays.items()}

    def __repr__(self) -> str:
        return f"ActivationCache({self.shapes})"


@dataclass(frozen=True)
class InterventionResult:
    """Outcome of an intervention (ablation or patching) on a batch of sequences.

    Attributes
    ----------
    predictions : ndarray of shape (n_sequences,) or (n_sequences, n_outputs)
        The model's outputs under the intervention (shaped as ``predict``'s).
    loss : float
        ``½ mean ‖prediction − y‖²`` under the intervention (the training loss).
    reference_loss : float
        The same without it: the unablated model (ablation), or the run on ``X`` with the
        corrupting ``hooks`` but no patch (patching).
    loss_change : float
        ``loss − reference_loss``: > 0 when the intervention hurts (ablating a head the task
        needs), < 0 when it helps (patching the clean activation back).
    """

    predictions: np.ndarray
    loss: float
    reference_loss: float
    loss_change: float


def _record(store: list):
    def record(activation, hook):
        store.append(activation.detach().cpu().numpy().copy())  # later hooks may edit it

    return record


def _as_lists(functions: dict | None) -> dict:
    """``{name: fn or [fn, ...]}`` → ``{name: [fn, ...]}`` (a new dict)."""
    return {name: list(fns) if isinstance(fns, (list, tuple)) else [fns]
            for name, fns in (functions or {}).items()}


def _zero(heads: list):
    """Hook function: the selected heads' activations (axis 1) set to 0."""

    def zero(activation, hook):
        activation = activation.clone()
        activation[:, heads] = 0
        return activation

    return zero


def _replace(value: np.ndarray, seq_len: int, heads=None, positions=None):
    """Hook function: ``value`` (row-aligned with the input, or one row for all) on the
    selected heads (axis 1 of per-head activations) and positions (the query axis: its
    ``Q`` entries are the last ``Q`` of the ``seq_len`` positions)."""

    def replace(activation, hook):
        rows = value[hook.rows] if len(value) > 1 else value
        source = torch.as_tensor(rows, dtype=activation.dtype, device=activation.device)
        if source.shape[1:] != activation.shape[1:]:
            raise ValueError(
                f"At {hook.name!r} the activation has shape {tuple(activation.shape[1:])} per "
                f"sequence and the replacement {tuple(source.shape[1:])}: use sequences of the "
                "same length."
            )
        per_head = activation.ndim == 4  # (B, H, Q, ·); else (B, Q, D)
        chosen = np.ones(activation.shape[1 : 3 if per_head else 2], dtype=bool)
        if heads is not None:
            chosen &= np.isin(np.arange(chosen.shape[0]), heads)[:, None]
        if positions is not None:
            Q = chosen.shape[-1]
            chosen &= np.isin(np.arange(seq_len - Q, seq_len), np.asarray(positions) % seq_len)
        keep = torch.as_tensor(chosen, device=activation.device)
        return torch.where(keep.reshape(*keep.shape, 1), source, activation)

    return replace


class HookedEstimatorMixin:
    """``hook_names``, ``hooks``, ``run_with_hooks``, ``run_with_cache``, ``ablation_hooks``,
    ``ablate_heads``, ``patch_activations`` for a fitted induction estimator.

    Inference (``predict``, ``score``, ``transform``, ``attention_maps``, ...) runs through
    :meth:`_map_chunks`, which attaches the functions of the active ``hooks`` contexts to the
    module for every chunk.
    """

    _active_hooks = None  # name → list of functions, while a ``hooks`` context is open

    def hook_names(self) -> list:
        """Names of the fitted model's hook points, in forward order.

        Returns
        -------
        names : list of str
            See :mod:`skloop.induction._hooks` for their shapes.
        """
        check_is_fitted(self)
        return self._module().hook_names()

    @contextlib.contextmanager
    def hooks(self, functions: dict):
        """Within the block, every inference pass of this estimator (``predict``, ``score``,
        ``transform``, ``attention_maps``, ``run_with_cache``, ...) runs ``functions``.

        Contexts nest: an inner one adds its functions after the outer ones'. The hook points
        run under ``torch.no_grad`` on chunks of the input (``hook.rows`` says which rows);
        training (``fit``) never runs them.

        Parameters
        ----------
        functions : dict of str to callable or list of callable
            ``fn(activation, hook)`` per hook name, returning a replacement of the same shape
            or ``None`` (keep the activation).

        Yields
        ------
        self : estimator
        """
        check_hook_names(list(functions), self.hook_names())
        merged = _as_lists(self._active_hooks)
        for name, added in _as_lists(functions).items():
            merged.setdefault(name, []).extend(added)
        previous = self._active_hooks
        self._active_hooks = merged
        try:
            yield self
        finally:
            if previous is None:
                del self._active_hooks
            else:
                self._active_hooks = previous

    def run_with_hooks(self, X, hooks: dict):
        """``predict(X)`` with the hook functions ``hooks`` (see :meth:`hooks`).

        Parameters
        ----------
        X : array-like of shape (n_sequences, seq_len, n_features)
            Token sequences.
        hooks : dict of str to callable or list of callable
            Hook functions per hook name.

        Returns
        -------
        y : ndarray of shape (n_sequences,) or (n_sequences, n_outputs)
        """
        with self.hooks(hooks):
            return self.predict(X)

    def run_with_cache(self, X, names=None) -> ActivationCache:
        """Run the model and keep the activations at the named hook points, as numpy.

        Only the names asked for are kept, and the forward pass runs in chunks within the
        inference memory budget (``skloop._core.estimator.PREDICT_BUDGET`` values).

        Parameters
        ----------
        X : array-like of shape (n_sequences, seq_len, n_features)
            Token sequences.
        names : str, list of str, callable or None, default=None
            Hook names, or a filter ``name -> bool``; ``None`` keeps every hook point
            (:meth:`hook_names`), the largest cache.

        Returns
        -------
        cache : ActivationCache
        """
        X = self._prepare(X)
        names = check_hook_names(self.hook_names() if names is None else names,
                                 self.hook_names())
        stores = {name: [] for name in names}
        with self.hooks({name: _record(stores[name]) for name in names}):
            predictions = self._map_chunks(X, lambda m, x: m(x), self._module().n_layers + 1)
        arrays = {name: np.concatenate(store) for name, store in stores.items()}
        return ActivationCache(arrays, predictions.astype(np.float64))

    # ------------------------------------------------------------------ interventions
    def _check_heads(self, heads) -> dict:
        """``[(layer, head), ...]`` → ``{layer: [heads]}``, checked against the model."""
        counts = self._module().head_counts
        grouped = {}
        one = isinstance(heads, tuple) and all(isinstance(v, Integral) for v in heads)
        for item in [heads] if one else list(heads):
            layer, head = item if len(item) == 2 else (None, None)
            if not (isinstance(layer, Integral) and isinstance(head, Integral)
                    and 0 <= layer < len(counts) and 0 <= head < counts[layer]):
                raise ValueError(f"No head {item!r}: the layers have {list(counts)} heads "
                                 "(give (layer, head) pairs, 0-indexed).")
            grouped.setdefault(int(layer), []).append(int(head))
        return grouped

    def ablation_hooks(self, heads, method="zero", reference=None) -> dict:
        """Hook functions that ablate heads' outputs (``blocks.u.attn.hook_result``).

        Parameters
        ----------
        heads : (layer, head) or list of them
            0-indexed.
        method : {"zero", "mean"}, default="zero"
            Replace the head's output by 0, or by its mean over the ``reference`` sequences
            (per query position).
        reference : array-like of shape (n_sequences, seq_len, n_features) or None
            Sequences of the mean (required for ``"mean"``); ablated runs must have the same
            ``seq_len``.

        Returns
        -------
        hooks : dict
            For :meth:`hooks`, :meth:`run_with_hooks` or ``patch_activations(hooks=...)``.
        """
        if method not in ("zero", "mean"):
            raise ValueError(f"method must be 'zero' or 'mean'; got {method!r}.")
        grouped = self._check_heads(heads)
        names = [f"blocks.{layer}.attn.hook_result" for layer in grouped]
        if method == "zero":
            return {name: [_zero(hs)] for name, hs in zip(names, grouped.values(), strict=True)}
        if reference is None:
            raise ValueError("Mean ablation needs reference sequences.")
        reference = self._prepare(reference)
        cache = self.run_with_cache(reference, names=names)
        return {name: [_replace(cache[name].mean(axis=0, keepdims=True), reference.shape[1],
                                heads=hs)]
                for name, hs in zip(names, grouped.values(), strict=True)}

    def _loss(self, predictions: np.ndarray, y) -> float:
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        y = y.reshape(len(y), -1)
        if y.shape != predictions.shape:
            raise ValueError(f"y must have {predictions.shape[0]} rows of "
                             f"{predictions.shape[1]} targets; got shape {y.shape}.")
        return float(0.5 * np.mean(np.sum((predictions - y) ** 2, axis=1)))

    def _result(self, X, y, functions, reference_hooks=None) -> InterventionResult:
        with self.hooks(_as_lists(reference_hooks)):
            reference = self._outputs(X)
        with self.hooks(functions):
            predictions = self._outputs(X)
        loss, reference_loss = self._loss(predictions, y), self._loss(reference, y)
        return InterventionResult(predictions[:, 0] if self._y_was_1d_ else predictions,
                                  loss, reference_loss, loss - reference_loss)

    def ablate_heads(self, X, y, heads, method="zero", reference=None) -> InterventionResult:
        """Predictions and loss with heads ablated, against the unablated model.

        Parameters
        ----------
        X : array-like of shape (n_sequences, seq_len, n_features)
            Token sequences.
        y : array-like of shape (n_sequences,) or (n_sequences, n_outputs)
            Targets of the loss.
        heads : (layer, head) or list of them
            The heads to ablate (0-indexed).
        method : {"zero", "mean"}, default="zero"
            See :meth:`ablation_hooks`.
        reference : array-like or None, default=None
            Sequences of the mean ablation; ``None`` uses ``X``.

        Returns
        -------
        result : InterventionResult
        """
        X = self._prepare(X)
        hooks = self.ablation_hooks(heads, method, X if reference is None else reference)
        return self._result(X, y, hooks)

    def patch_activations(self, X, source, y, *, heads=None, names=None, positions=None,
                          hooks=None) -> InterventionResult:
        """Run on ``X`` with activations copied from a run on ``source`` (activation patching).

        Parameters
        ----------
        X : array-like of shape (n_sequences, seq_len, n_features)
            The corrupted input.
        source : array-like of the same shape
            The clean input; row ``i`` is patched into row ``i``.
        y : array-like of shape (n_sequences,) or (n_sequences, n_outputs)
            Targets of the loss (usually the clean input's).
        heads : (layer, head), list of them, or None
            Patch these heads' outputs (``blocks.u.attn.hook_result``).
        names : str, list of str or None
            Patch these hook points entirely (e.g. ``"blocks.0.hook_resid_post"``).
        positions : int, list of int or None
            Patch only these (query) positions; ``None``: all.
        hooks : dict or None
            Hook functions of the corrupted run, applied before the patch (e.g.
            :meth:`ablation_hooks`); the clean run on ``source`` runs without them.

        Returns
        -------
        result : InterventionResult
            ``reference_loss`` is the corrupted run's (``X`` with ``hooks``, unpatched).
        """
        X, source = self._prepare(X), self._prepare(source)
        if source.shape != X.shape:
            raise ValueError(f"source must have the shape of X {X.shape}; got {source.shape}.")
        grouped = self._check_heads(heads) if heads is not None else {}
        whole = [] if names is None else check_hook_names(names, self.hook_names())
        if not grouped and not whole:
            raise ValueError("Give the heads or the hook names to patch.")
        patched = {f"blocks.{layer}.attn.hook_result": hs for layer, hs in grouped.items()}
        patched.update(dict.fromkeys(whole))
        clean = self.run_with_cache(source, names=list(patched))
        if positions is not None:
            positions = np.atleast_1d(positions)
        functions = _as_lists(hooks)
        for name, layer_heads in patched.items():
            functions.setdefault(name, []).append(
                _replace(clean[name], X.shape[1], heads=layer_heads, positions=positions))
        return self._result(X, y, functions, reference_hooks=hooks)

