"""Mechanism scores of the induction models: plain functions with documented definitions.

Head scores (TransformerLens's head detectors, for these models): a score of a head is the
mean attention weight its queries put on one key each, over sequences and over the queries
that have that key; 1 is a perfect head of the kind. Strict causality leaves query 0 without
keys. For a query at position ``t`` (0-indexed):

- **previous-token** score: key ``t − 1``, queries ``t ≥ 1``, any sequences;
- **duplicate-token** score: key ``t − R`` (the previous occurrence of the current token),
  queries of the second copy ``t = R..2R−1`` of sequences that repeat a random block of
  length ``R`` twice (:func:`skloop.datasets.make_repeated_tokens`);
- **induction** score: key ``t − R + 1`` (the token after the previous occurrence: what an
  induction head copies), same queries and sequences.

A layer that reads only its last ``Q`` positions (the 6-parameter model's layer 2, ``Q = 1``)
is scored on those queries. :func:`previous_token_scores`, :func:`duplicate_token_scores` and
:func:`induction_scores` score every layer and head of a fitted induction estimator
(``run_with_cache``); the functions of one layer's weights below them also serve the
estimators' ``previous_token_score`` and ``induction_score``, with ``probe`` and the copy
errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
from sklearn.linear_model import LinearRegression

__all__ = [
    "InductionScore",
    "copy_errors",
    "duplicate_token_scores",
    "induction_attention",
    "induction_scores",
    "previous_token_attention",
    "previous_token_scores",
    "probe_windows",
]


def _attention_at(weights: np.ndarray, queries: np.ndarray, lag) -> np.ndarray:
    """Mean weight each head puts from ``queries`` (absolute positions) on key ``query −
    lag``, over sequences and the queries the layer has, ``(H,)``."""
    n_queries, L = weights.shape[-2:]
    queries = queries[queries >= L - n_queries]  # the layer reads the last n_queries positions
    if len(queries) == 0:
        return np.full(weights.shape[1], np.nan)
    rows = queries - (L - n_queries)
    return weights[:, :, rows, queries - lag].mean(axis=(0, 2))


def previous_token_attention(weights: np.ndarray) -> np.ndarray:
    """Previous-token score of each head of one layer: mean weight on key ``t − 1``.

    Parameters
    ----------
    weights : ndarray of shape (n, H, Q, L)
        One layer's attention weights (query, key); ``Q`` is ``L`` or the last ``Q`` queries.

    Returns
    -------
    score : ndarray of shape (H,)
        1 for a perfect previous-token head; uniform attention over the ``t`` admissible keys
        gives the mean of ``1/t``.
    """
    return _attention_at(weights, np.arange(1, weights.shape[-1]), 1)


def induction_attention(weights: np.ndarray, R: int) -> np.ndarray:
    """Induction score of each head of one layer on twice-repeated blocks of length ``R``.

    Parameters
    ----------
    weights : ndarray of shape (n, H, Q, 2R)
        One layer's attention weights on repeated sequences.
    R : int
        Length of the repeated block.

    Returns
    -------
    score : ndarray of shape (H,)
        Mean weight from query ``t`` of the second copy to key ``t − R + 1``.
    """
    return _attention_at(weights, np.arange(R, 2 * R), R - 1)


def _layer_scores(estimator, X, score) -> np.ndarray:
    """``score(weights)`` of every layer, ``(n_layers, max heads)``, NaN-padded."""
    names = [name for name in estimator.hook_names() if name.endswith("attn.hook_pattern")]
    cache = estimator.run_with_cache(X, names=names)
    per_layer = [score(cache[name]) for name in names]
    table = np.full((len(per_layer), max(len(s) for s in per_layer)), np.nan)
    for layer, values in enumerate(per_layer):
        table[layer, : len(values)] = values
    return table


def repeated_block_length(X) -> int:
    """The block length ``R`` of sequences that repeat a block twice, or a ``ValueError``."""
    X = np.asarray(X)
    R = X.shape[1] // 2
    if X.ndim != 3 or X.shape[1] != 2 * R or R < 2 or not np.array_equal(X[:, :R], X[:, R:]):
        raise ValueError("X must be sequences of a random block repeated twice (length 2R); "
                         "see skloop.datasets.make_repeated_tokens.")
    return R


def previous_token_scores(estimator, X) -> np.ndarray:
    """Previous-token score of every head of a fitted induction estimator.

    Parameters
    ----------
    estimator : InductionHeadRegressor or InductionDynamicsRegressor
        Fitted (or hand-built) model.
    X : array-like of shape (n_sequences, seq_len, n_features)
        Token sequences.

    Returns
    -------
    scores : ndarray of shape (n_layers, max_heads)
        ``scores[u, h]``: mean attention of head ``h`` of layer ``u`` from query ``t`` on key
        ``t − 1``, over sequences and queries ``t ≥ 1``; NaN where a layer has fewer heads.

    Examples
    --------
    >>> from skloop import InductionHeadRegressor
    >>> from skloop.datasets import make_induction_head_task
    >>> from skloop.induction import previous_token_scores
    >>> X, _ = make_induction_head_task("ih2", 100, 10, tokens="boolean", random_state=0)
    >>> model = InductionHeadRegressor.from_construction("ih2", p=20.0)
    >>> previous_token_scores(model, X).round(3)  # layer 1: a previous-token head
    array([[1.   ],
           [0.311]])
    """
    return _layer_scores(estimator, X, previous_token_attention)


def induction_scores(estimator, X) -> np.ndarray:
    """Induction score of every head of a fitted induction estimator.

    Parameters
    ----------
    estimator : InductionHeadRegressor or InductionDynamicsRegressor
        Fitted (or hand-built) model.
    X : array-like of shape (n_sequences, 2R, n_features)
        Random blocks repeated twice (:func:`skloop.datasets.make_repeated_tokens`).

    Returns
    -------
    scores : ndarray of shape (n_layers, max_heads)
        ``scores[u, h]``: mean attention from query ``t`` of the second copy to key
        ``t − R + 1``, averaged over sequences and queries; NaN where a layer has fewer heads.
    """
    R = repeated_block_length(X)
    return _layer_scores(estimator, X, lambda weights: induction_attention(weights, R))


def duplicate_token_scores(estimator, X) -> np.ndarray:
    """Duplicate-token score of every head: attention to the previous occurrence of the
    current token.

    Parameters
    ----------
    estimator : fitted InductionHeadRegressor or InductionDynamicsRegressor
        The model to score.
    X : array-like of shape (n_sequences, 2R, n_features)
        Sequences that repeat one random block twice, as for :func:`induction_scores`.

    Returns
    -------
    scores : ndarray of shape (n_layers, max_heads)
        Mean weight from each query ``t ≥ R`` to key ``t − R``, per layer ``u`` and head ``h``;
        NaN for heads a layer does not have.
    """
    R = repeated_block_length(X)
    return _layer_scores(estimator, X,
                         lambda weights: _attention_at(weights, np.arange(R, 2 * R), R))


@dataclass(frozen=True, eq=False)
class InductionScore(Mapping):
    """Induction behaviour of a model on twice-repeated random blocks of length ``R``.

    It also reads as the dict ``induction_score`` used to return (``score["attention"]``,
    ``dict(score)``), without the fields that were not computed; :meth:`to_dict` gives that
    dict.

    Attributes
    ----------
    attention : ndarray of shape (n_heads,)
        Induction score of each head of the last layer: mean attention from a query ``t`` of
        the second copy to key ``t − R + 1``, the token after the previous occurrence of the
        current one.
    copy1_error, copy2_error : float or None
        Mean squared error of the read-out at every position against the next token, in the
        first copy (unpredictable) and the second (predictable by copying); None unless the
        model has as many outputs as token features.
    error_ratio : float or None
        ``copy2_error / copy1_error``: < 1 when the model uses the earlier occurrence.
    """

    attention: np.ndarray
    copy1_error: float | None = None
    copy2_error: float | None = None
    error_ratio: float | None = None

    def to_dict(self) -> dict:
        """The computed fields as a dict (what ``induction_score`` used to return)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def __getitem__(self, key):
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def copy_errors(predictions: np.ndarray, X: np.ndarray, R: int) -> dict:
    """Next-token errors of per-position predictions in the two copies of a repeated block.

    Parameters
    ----------
    predictions : ndarray of shape (n, 2R, d)
        The read-out at every position (the prediction of the next token).
    X : ndarray of shape (n, 2R, d)
        The sequences.
    R : int
        Length of the repeated block.

    Returns
    -------
    errors : dict
        ``copy1_error``, ``copy2_error``: mean squared error against the next token in the
        first and the second copy; ``error_ratio`` their ratio (< 1: the model uses the
        earlier occurrence).
    """
    error = ((predictions[:, :-1] - X[:, 1:]) ** 2).sum(-1)
    copy1, copy2 = float(error[:, : R - 1].mean()), float(error[:, R:].mean())
    return {"copy1_error": copy1, "copy2_error": copy2, "error_ratio": copy2 / copy1}


def probe_windows(layer1: np.ndarray, X: np.ndarray, n_gram: int) -> dict:
    """Linear probe of layer-1 outputs for the last ``n_gram`` tokens (the paper's Fig 6).

    One affine map (least squares, :class:`sklearn.linear_model.LinearRegression`) from the
    layer-1 output at position ``s`` to ``X_{s−n+1:s}``, shared by all positions and sequences.

    Parameters
    ----------
    layer1 : ndarray of shape (n, L − n_gram + 1, D)
        Layer-1 outputs at positions ``n_gram − 1 .. L − 1``.
    X : ndarray of shape (n, L, d)
        The sequences.
    n_gram : int
        Window length.

    Returns
    -------
    probe : dict
        ``dist``: residual squared norm summed over positions, averaged over sequences;
        ``fvu``: fraction of variance unexplained; ``lag_mse``: per-coordinate MSE of each lag
        ``n−1, …, 0`` (lag 0 is the current token, which the residual stream keeps).
    """
    n, L, d = X.shape
    windows = np.lib.stride_tricks.sliding_window_view(X, n_gram, axis=1)  # (n, L−n+1, d, n)
    targets = np.swapaxes(windows, 2, 3).reshape(-1, n_gram * d)
    features = layer1.reshape(-1, layer1.shape[-1]).astype(np.float64)
    residual = targets - LinearRegression().fit(features, targets).predict(features)
    per_lag = (residual**2).reshape(-1, n_gram, d).mean(axis=(0, 2))
    return {
        "dist": float((residual**2).sum() / n),
        "fvu": float((residual**2).sum() / ((targets - targets.mean(0)) ** 2).sum()),
        "lag_mse": per_lag,
    }
