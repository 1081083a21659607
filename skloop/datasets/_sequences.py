"""Token sequences of the induction-head paper."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from ._checks import check_positive_int, check_sizes

__all__ = ["make_induction_head_task", "make_repeated_tokens", "InductionTaskSampler"]


def _tokens(rng, shape, tokens: str) -> np.ndarray:
    if tokens == "gaussian":
        return rng.standard_normal(shape)
    if tokens == "boolean":
        return rng.choice([-1.0, 1.0], size=shape)
    raise ValueError(f"tokens must be 'gaussian' or 'boolean'; got {tokens!r}.")


def make_induction_head_task(
    kind="ih2",
    n_sequences=1000,
    seq_len=10,
    n_features=1,
    *,
    n_gram=2,
    W_star=None,
    similarity=None,
    alpha=1.0,
    w_star=0.49,
    lift="sqrt",
    tokens="gaussian",
    random_state=None,
):
    """Token sequences and their induction-head targets (Wang, Yu, E & Wu).

    Parameters
    ----------
    kind : {"ih2", "ihn", "gihn", "mixed"}, default="ih2"
        ``"ih2"``: eq. (3); ``"ihn"``: eq. (5) with ``n_gram``; ``"gihn"``: eq. (6) with a
        ``similarity``; ``"mixed"``: the 4-gram + in-context 2-gram target of eq. (7)
        (``n_features=1``, two outputs ``(G4, IH2)``).
    n_sequences : int, default=1000
        Number of sequences.
    seq_len : int, default=10
        Sequence length ``L`` (at least ``n_gram + 1``).
    n_features : int, default=1
        Token dimension ``d``.
    n_gram : int, default=2
        Order ``n`` of ``"ihn"``/``"gihn"``.
    W_star : ndarray of shape ((n_gram-1) d, (n_gram-1) d) or None
        Similarity matrix of ``"ih2"``/``"ihn"``; identity when None.
    similarity : callable or None
        ``g(query, keys)`` of ``"gihn"`` (see :func:`skloop.induction.gihn`).
    alpha : float, default=1.0
        ``α*`` of the mixed target.
    w_star : float, default=0.49
        ``w*`` of the mixed target (its score is ``w*² x_L x_{s-1}`` for ``d = 1``).
    lift : {"sqrt", "linear"}, default="sqrt"
        Mixed target with ``n_features > 1``: ``W* = w* I/√d`` or ``w* I/d`` (see
        :func:`skloop.induction.mixed_target`).
    tokens : {"gaussian", "boolean"}, default="gaussian"
        i.i.d. ``N(0, I_d)`` or uniform ``{±1}^d`` tokens.
    random_state : int, RandomState instance or None, default=None
        Seed or generator.

    Returns
    -------
    X : ndarray of shape (n_sequences, seq_len, n_features)
        Token sequences.
    y : ndarray of shape (n_sequences, n_outputs)
        Targets (``n_outputs = n_features``, or ``2 n_features`` for ``"mixed"``).

    Examples
    --------
    >>> from skloop.datasets import make_induction_head_task
    >>> X, y = make_induction_head_task("ihn", 5, seq_len=10, n_gram=4, tokens="boolean",
    ...                                 random_state=0)
    >>> X.shape, y.shape
    ((5, 10, 1), (5, 1))
    """
    from ..induction import _targets

    n_sequences, seq_len, n_features = check_sizes(n_sequences, seq_len, n_features)
    n_gram = 2 if kind in ("ih2", "mixed") else check_positive_int(n_gram, "n_gram", 2)
    if seq_len < n_gram + 1:
        raise ValueError(f"seq_len={seq_len} must be >= n_gram + 1 = {n_gram + 1}.")
    rng = check_random_state(random_state)
    X = _tokens(rng, (n_sequences, seq_len, n_features), tokens)
    if kind in ("ih2", "ihn"):
        y = _targets.ihn(X, n_gram, W_star)
    elif kind == "gihn":
        if not callable(similarity):
            raise ValueError("kind='gihn' needs a callable similarity(query, keys).")
        y = _targets.gihn(X, n_gram, similarity)
    elif kind == "mixed":
        y = _targets.mixed_target(X, alpha, w_star, lift)
    else:
        raise ValueError(f"kind must be 'ih2', 'ihn', 'gihn' or 'mixed'; got {kind!r}.")
    return X, y


def make_repeated_tokens(n_sequences=500, n_repeat=5, n_features=1, *, tokens="gaussian",
                         random_state=None):
    """Random token sequences repeated twice, for scoring induction heads.

    Each sequence is ``(t_1, ..., t_R, t_1, ..., t_R)``: in the second copy, the token after
    the previous occurrence of the current token is the next token, which an induction head
    retrieves and nothing else can predict.

    Parameters
    ----------
    n_sequences : int, default=500
        Number of sequences.
    n_repeat : int, default=5
        Length ``R`` of the random block (sequences have length ``2R``).
    n_features : int, default=1
        Token dimension.
    tokens : {"gaussian", "boolean"}, default="gaussian"
        Token distribution.
    random_state : int, RandomState instance or None, default=None
        Seed or generator.

    Returns
    -------
    X : ndarray of shape (n_sequences, 2 n_repeat, n_features)
    """
    n_sequences, n_repeat, n_features = check_sizes(n_sequences, n_repeat, n_features)
    block = _tokens(check_random_state(random_state), (n_sequences, n_repeat, n_features), tokens)
    return np.concatenate([block, block], axis=1)


class InductionTaskSampler:
    """Fresh batches of an induction-head task, for online training.

    Calling the sampler with ``(n_sequences, random_state)`` returns
    ``make_induction_head_task(kind, n_sequences, **task)``; its attributes (``kind``,
    ``seq_len``, ``alpha``, ``w_star``, ...) describe the task, and
    :class:`~skloop.InductionDynamicsRegressor` uses ``alpha`` and ``w_star`` to place the phase
    markers of the mixed target.

    Parameters
    ----------
    kind : str, default="mixed"
        Task kind (see :func:`make_induction_head_task`).
    seq_len : int, default=40
        Sequence length.
    **task
        Other arguments of :func:`make_induction_head_task` (``n_features``, ``n_gram``,
        ``W_star``, ``alpha``, ``w_star``, ``tokens``).

    Examples
    --------
    >>> from skloop.datasets import InductionTaskSampler
    >>> sampler = InductionTaskSampler("mixed", seq_len=40, alpha=1.0, w_star=0.49)
    >>> X, y = sampler(8, random_state=0)
    >>> X.shape, y.shape
    ((8, 40, 1), (8, 2))
    """

    def __init__(self, kind="mixed", seq_len=40, **task):
        self.kind = kind
        self.seq_len = seq_len
        self.task = task
        self.alpha = task.get("alpha", 1.0)
        self.w_star = task.get("w_star", 0.49)
        self.lift = task.get("lift", "sqrt")

    def __call__(self, n_sequences, random_state=None):
        return make_induction_head_task(self.kind, n_sequences, self.seq_len,
                                        random_state=random_state, **self.task)

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.task.items())
        return f"InductionTaskSampler({self.kind!r}, seq_len={self.seq_len}{args})"
