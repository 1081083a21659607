"""Induction-head targets of the paper, vectorised over sequences (numpy).

Sequences are arrays ``X`` of shape ``(n_sequences, L, d)``; formulas are the paper's
1-indexed ones (``../shared/math/induction_heads.md`` §2) with ``x_s = X[:, s-1]``. A
patch ``X_{a:b}`` is stacked oldest first.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ih2", "ihn", "gihn", "mixed_target", "uniform_attention_baseline"]


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


def _patches(X: np.ndarray, n: int):
    """Query patch ``X_{L-n+2:L}`` ``(N, (n-1)d)`` and key patches ``X_{s-n+1:s-1}``,
    ``s = n..L-1``, ``(N, L-n, (n-1)d)``, with the values ``x_s`` ``(N, L-n, d)``."""
    N, L, d = X.shape
    if L < n + 1:
        raise ValueError(f"seq_len={L} is too short for an {n}-gram target: need >= {n + 1}.")
    query = X[:, L - n + 1 :].reshape(N, (n - 1) * d)
    # Key for s (1-indexed) is X[:, s-n : s-1] (0-indexed), s = n..L-1.
    windows = np.lib.stride_tricks.sliding_window_view(X[:, : L - 2], n - 1, axis=1)
    keys = np.swapaxes(windows, 2, 3).reshape(N, L - n, (n - 1) * d)
    values = X[:, n - 1 : L - 1]
    return query, keys, values


def gihn(X, n: int, similarity) -> np.ndarray:
    """Generalized induction head ``GIH_n`` (eq. 6) with a similarity ``g(query, key)``.

    Parameters
    ----------
    X : ndarray of shape (n_sequences, L, d)
        Token sequences.
    n : int
        The n-gram order (``n >= 2``).
    similarity : callable
        ``g(query, keys)`` with ``query`` of shape ``(N, 1, (n-1)d)`` and ``keys`` of shape
        ``(N, L-n, (n-1)d)`` (broadcastable), returning scores ``(N, L-n)``.

    Returns
    -------
    y : ndarray of shape (n_sequences, d)
        ``Σ_{s=n}^{L-1} x_s softmax_s(g(X_{L-n+2:L}, X_{s-n+1:s-1}))``.
    """
    X = np.asarray(X, dtype=np.float64)
    query, keys, values = _patches(X, n)
    weights = _softmax(np.asarray(similarity(query[:, None, :], keys), dtype=np.float64))
    return np.einsum("ns,nsd->nd", weights, values)


def ihn(X, n: int, W_star=None) -> np.ndarray:
    """Induction head ``IH_n`` (eq. 5): similarity ``X_{L-n+2:L}ᵀ W* X_{s-n+1:s-1}``.

    Parameters
    ----------
    X : ndarray of shape (n_sequences, L, d)
        Token sequences.
    n : int
        The n-gram order (``n >= 2``; ``n = 2`` is eq. 3).
    W_star : ndarray of shape ((n-1)d, (n-1)d) or None
        Similarity matrix; identity when None.

    Returns
    -------
    y : ndarray of shape (n_sequences, d)
    """
    X = np.asarray(X, dtype=np.float64)
    m = (n - 1) * X.shape[2]
    W = np.eye(m) if W_star is None else np.asarray(W_star, dtype=np.float64)
    if W.shape != (m, m):
        raise ValueError(f"W_star must have shape {(m, m)} for n={n}, d={X.shape[2]}; got "
                         f"{W.shape}.")
    # q W first: a three-operand einsum contracts in a far slower order (150x at d = 100).
    return gihn(X, n, lambda q, k: np.einsum("nqj,nsj->ns", q @ W, k))


def ih2(X, W_star=None) -> np.ndarray:
    """Induction head ``IH_2`` (eq. 3): ``Σ_{s=2}^{L-1} x_s softmax_s(x_Lᵀ W* x_{s-1})``."""
    return ihn(X, 2, W_star)


def mixed_target(X, alpha: float = 1.0, w_star: float = 0.49, lift: str = "sqrt") -> np.ndarray:
    """The 4-gram + in-context 2-gram target of eq. (7), two output groups.

    For ``d = 1`` (the paper's Fig 3): column 0 (``"G4"``) is ``α*/(1+α*) · x_{L-2}`` and
    column 1 (``"IH2"``) is ``1/(1+α*) · Σ_{s=2}^{L-1} x_s softmax_s(w*² x_L x_{s-1})``.
    For ``d > 1`` (the paper's Fig 10 lift) both groups have ``d`` columns (G4 first) and
    the score is ``x_Lᵀ W*ᵀ W* x_{s-1}`` with ``W* = w* I_d / √d`` (``lift="sqrt"``,
    ``‖W*‖_F = w*``) or ``w* I_d / d`` (``lift="linear"``, the literal reading of the
    paper's garbled ``0.49 I_D/D``, under which the in-context part nearly vanishes).

    Parameters
    ----------
    X : ndarray of shape (n_sequences, L, d)
        Token sequences.
    alpha : float, default=1.0
        ``α*``: weight of the 4-gram component.
    w_star : float, default=0.49
        ``w*``: the dot-product target of each of ``W_K``, ``W_Q``.
    lift : {"sqrt", "linear"}, default="sqrt"
        Scaling of ``W*`` with ``d`` (irrelevant for ``d = 1``).

    Returns
    -------
    y : ndarray of shape (n_sequences, 2 d)
    """
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[2]
    scale = {"sqrt": np.sqrt(d), "linear": float(d)}.get(lift)
    if scale is None:
        raise ValueError(f"lift must be 'sqrt' or 'linear'; got {lift!r}.")
    four_gram = X[:, -3] * alpha / (1 + alpha)
    induction = ih2(X, np.eye(d) * (w_star / scale) ** 2) / (1 + alpha)
    return np.concatenate([four_gram, induction], axis=1)


def uniform_attention_baseline(X, n: int) -> np.ndarray:
    """``ū_n = mean_{s=n}^{L-1} x_s``: the ``IH_n`` prediction with ``W* = 0``."""
    X = np.asarray(X, dtype=np.float64)
    return X[:, n - 1 : X.shape[1] - 1].mean(axis=1)
