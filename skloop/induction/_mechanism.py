"""Mechanism scores of the induction models: plain functions of attention maps and states.

The estimators' ``previous_token_score``, ``induction_score`` and ``probe`` compute their
inputs (attention maps, layer outputs, read-outs) and call these.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression

__all__ = ["previous_token_attention", "induction_attention", "copy_errors", "probe_windows"]


def previous_token_attention(weights: np.ndarray) -> np.ndarray:
    """Mean attention each head puts on the previous token (lag 1).

    Parameters
    ----------
    weights : ndarray of shape (n, H, L, L)
        One layer's attention weights (query, key).

    Returns
    -------
    score : ndarray of shape (H,)
        Averaged over sequences and over the queries that have a previous token: 1 for a
        perfect previous-token head; uniform attention over the admissible keys gives the
        mean of ``1/i``.
    """
    L = weights.shape[-1]
    return weights[:, :, np.arange(1, L), np.arange(0, L - 1)].mean(axis=(0, 2))


def induction_attention(weights: np.ndarray, R: int) -> np.ndarray:
    """Mean weight a query ``t`` of the second copy of a twice-repeated block of length ``R``
    puts on key ``t − R + 1`` (the token after the previous occurrence of the current one).

    Parameters
    ----------
    weights : ndarray of shape (n, H, 2R, 2R)
        The last layer's attention weights.
    R : int
        Length of the repeated block.

    Returns
    -------
    score : ndarray of shape (H,)
    """
    t = np.arange(R, 2 * R)
    return weights[:, :, t, t - R + 1].mean(axis=(0, 2))


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
