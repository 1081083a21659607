"""The looped linear-attention transformer of the power-method paper (torch).

Paper orientation: ``Z ∈ R^{2d×(n+1)}``, data tokens ``(x_i; 0)``, query token ``(0; v)``, one
layer ``Norm(Z + (1/n) W_pv Z Zᵀ W_kq Z)`` with the same weights in every loop, read-out = the
bottom ``d`` entries of the last column (``../shared/math/power_method.md`` §2).

Here tokens are rows: ``T = Zᵀ`` of shape ``(B, n+1, 2d)``, so the layer reads
``T + (1/n) T (W_kqᵀ G W_pvᵀ)`` with ``G = TᵀT = ZZᵀ``. Associativity keeps every loop at
``O(n d²)`` per matrix: the ``(n+1) × (n+1)`` attention matrix is never formed.
"""

from __future__ import annotations

import torch
from torch import nn

from ._linalg import last, unit_vectors

__all__ = ["LoopedLinearAttention", "initial_weights", "power_method_weights", "embed"]

INITS = ("paper", "paper_swap", "random")


def power_method_weights(n_features: int, u: float, w: float, *, dtype=torch.float64):
    """Weights on the power-method manifold: ``W_pv[21] = u I``, ``W_kq[12] = w I``, rest 0.

    One layer with these weights is the shifted power step ``v ← (I + uwΣ) v`` (then
    normalized with LN), paper Lemma A.1.
    """
    d = n_features
    eye = torch.eye(d, dtype=dtype)
    W_pv = torch.zeros(2 * d, 2 * d, dtype=dtype)
    W_kq = torch.zeros(2 * d, 2 * d, dtype=dtype)
    W_pv[d:, :d] = u * eye
    W_kq[:d, d:] = w * eye
    return W_pv, W_kq


def initial_weights(n_features: int, init: str, init_scale: float, generator: torch.Generator,
                    *, dtype=torch.float64):
    """``(W_pv, W_kq)`` at initialization.

    ``"paper"``: ``W_pv = 0``, ``W_kq[12] = I`` (u = 0, w = 1, ρ = 0, Thm 4.1); ``"paper_swap"``:
    ``W_pv[21] = I``, ``W_kq = 0`` (same scalar dynamics with u and w exchanged); ``"random"``:
    every entry ``N(0, init_scale²)``, outside the theory.
    """
    if init == "paper":
        return power_method_weights(n_features, 0.0, 1.0, dtype=dtype)
    if init == "paper_swap":
        return power_method_weights(n_features, 1.0, 0.0, dtype=dtype)
    shape = (2 * n_features, 2 * n_features)
    # Drawn in float64 and cast: float32 and float64 models start from the same weights.
    return tuple(
        (init_scale * torch.randn(shape, generator=generator, dtype=torch.float64)).to(dtype)
        for _ in range(2)
    )


def embed(X: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Tokens ``T = Z_0ᵀ`` of shape ``(B, n+1, 2d)``: rows ``(x_i, 0)`` then ``(0, v)``.

    Zero-padded points give zero tokens, which stay zero through every layer and add nothing
    to ``ZZᵀ``; the query token is always the last row.
    """
    zeros_data = torch.zeros_like(X)
    zeros_query = torch.zeros_like(v)
    data = torch.cat([X, zeros_data], dim=-1)  # (B, n, 2d)
    query = torch.cat([zeros_query, v], dim=-1)[:, None, :]  # (B, 1, 2d)
    return torch.cat([data, query], dim=1)  # (B, n+1, 2d)


class LoopedLinearAttention(nn.Module):
    """One linear-attention layer with optional column normalization, applied in a loop.

    Parameters
    ----------
    n_features : int
        Dimension ``d`` of the points; the weights are ``2d × 2d``.
    normalization : {"rms", None}
        ``"rms"`` divides every token by its Euclidean norm after the residual (the paper's
        RMSNorm-like LN, without the ``√(2d)``, gain or bias: math note §1.5); ``None`` is the
        plain residual layer.
    parametrization : {"full", "scalar"}
        ``"full"`` trains both ``2d × 2d`` matrices; ``"scalar"`` trains only the two active
        scalars ``u, w`` of the power-method manifold (then any ``d`` works at inference).
    init : {"paper", "paper_swap", "random"}
        See :func:`initial_weights`.
    init_scale : float
        Standard deviation of the ``"random"`` initialization.
    mask_query : bool
        Leave the query token out of ``ZZᵀ`` (Ahn et al.'s mask ``diag(I_n, 0)``); irrelevant
        on the power-method manifold (math note §1.4).
    n_loops : int
        Default number of loops of ``forward`` (the training depth).
    seed : int
        Seed of the generator used by the ``"random"`` initialization (global RNGs untouched).
    dtype : torch.dtype
        Parameter dtype (float64 by default: angles below 1e-3 degrees need it).
    """

    def __init__(self, n_features, normalization="rms", parametrization="full", init="paper",
                 init_scale=0.01, mask_query=False, n_loops=1, seed=0, dtype=torch.float64):
        super().__init__()
        self.n_features = n_features
        self.n_loops = n_loops
        self.normalization = normalization
        self.parametrization = parametrization
        self.mask_query = mask_query
        generator = torch.Generator().manual_seed(int(seed))
        if parametrization == "full":
            W_pv, W_kq = initial_weights(n_features, init, init_scale, generator, dtype=dtype)
            self.W_pv = nn.Parameter(W_pv)
            self.W_kq = nn.Parameter(W_kq)
        else:
            if init == "random":
                u, w = (init_scale * torch.randn(2, generator=generator,
                                                 dtype=torch.float64)).tolist()
            else:
                u, w = (0.0, 1.0) if init == "paper" else (1.0, 0.0)
            self.u = nn.Parameter(torch.tensor(u, dtype=dtype))
            self.w = nn.Parameter(torch.tensor(w, dtype=dtype))

    def weights(self, n_features: int | None = None):
        """The ``(W_pv, W_kq)`` used for points of dimension ``n_features``."""
        if self.parametrization == "full":
            return self.W_pv, self.W_kq
        d = self.n_features if n_features is None else n_features
        eye = torch.eye(d, dtype=self.u.dtype, device=self.u.device)
        zero = torch.zeros_like(eye)
        W_pv = torch.cat([torch.cat([zero, zero], 1), torch.cat([self.u * eye, zero], 1)], 0)
        W_kq = torch.cat([torch.cat([zero, self.w * eye], 1), torch.cat([zero, zero], 1)], 0)
        return W_pv, W_kq

    def layer(self, T, n_points, W_pv, W_kq):
        """One layer on tokens ``T`` of shape ``(B, n+1, 2d)``."""
        keys = T[:, :-1] if self.mask_query else T
        gram = keys.transpose(1, 2) @ keys  # ZZᵀ: (B, 2d, 2d)
        mixing = W_kq.T @ gram @ W_pv.T  # (B, 2d, 2d)
        T = T + (T @ mixing) / n_points[:, None, None]
        if self.normalization == "rms":
            # Exact for tokens of any finite norm; zero padding tokens stay zero.
            T = unit_vectors(T)
        return T

    def forward(self, X, n_points, v, n_loops=None):
        """Loop the layer ``n_loops`` times and read out the query's bottom half.

        Parameters
        ----------
        X : Tensor of shape (B, n, d)
            Preprocessed points (rows), zero rows past ``n_points``.
        n_points : Tensor of shape (B,)
            Real points per matrix (the ``n`` of the ``1/n`` scaling).
        v : Tensor of shape (B, d)
            Query vectors.
        n_loops : int, default=None
            Number of times the shared layer is applied; ``None`` uses ``self.n_loops``.

        Returns
        -------
        y : Tensor of shape (B, d)
        """
        n_loops = self.n_loops if n_loops is None else n_loops
        return last(self.iterate(X, n_points, v, n_loops), default=v)

    def inference_path(self, n_features: int | None = None) -> str:
        """Which exact evaluation the weights allow, from exact zeros (no tolerance).

        ``"folded"``: the blocks of ``W_kq`` reading the data tokens (left block column) and the
        query's lower half (``W_kq[22]``) are zero and ``W_pv[11]`` is zero: data tokens never
        change, the query's upper half stays 0, and a loop is ``q ← q + W_pv[21] Σ W_kq[12] q``
        (then LN), the power method's work. ``"frozen_data"``: only the data-reading blocks of
        ``W_kq`` are zero: ``Σ`` is formed once and a loop updates the query token in
        ``O(d²)``. ``"general"``: the associativity path over all tokens.
        """
        d = self.n_features if n_features is None else n_features
        W_pv, W_kq = self.weights(d)
        if torch.count_nonzero(W_kq[:, :d]) != 0:
            return "general"
        if torch.count_nonzero(W_kq[d:, d:]) == 0 and torch.count_nonzero(W_pv[:d, :d]) == 0:
            return "folded"
        return "frozen_data"

    def iterate(self, X, n_points, v, n_loops, orthogonal_to=None, path=None):
        """Yield the read-out ``(B, d)`` after each of ``n_loops`` loops (one forward pass).

        ``orthogonal_to`` (``(B, d, j)``, orthonormal columns) keeps the query's read-out half
        orthogonal to those directions after every loop, the query token being re-normalized
        with LN: on the power-method manifold this is the power iteration on ``PΣP``
        (``P = I − CCᵀ``), whose top eigenvector is the next principal component.

        Without autograd (inference) the structural fast paths of :meth:`inference_path` are
        used; they are exact rewrites, equal to the general path to rounding. Training always
        takes the general path, so gradients reach every block. ``path`` forces a path.
        """
        d = X.shape[-1]
        if path is None:
            path = "general" if torch.is_grad_enabled() else self.inference_path(d)
        if path == "general":
            yield from self._iterate_general(X, n_points, v, n_loops, orthogonal_to)
        else:
            yield from self._iterate_query(X, n_points, v, n_loops, orthogonal_to,
                                           folded=path == "folded")

    def _deflate(self, query, orthogonal_to):
        if orthogonal_to is None:
            return query
        coefficients = (orthogonal_to.transpose(1, 2) @ query[:, :, None])[:, :, 0]
        return query - (orthogonal_to @ coefficients[:, :, None])[:, :, 0]

    def _normalize(self, token):
        if self.normalization == "rms":
            return unit_vectors(token)
        return token

    def _iterate_general(self, X, n_points, v, n_loops, orthogonal_to):
        d = X.shape[-1]
        W_pv, W_kq = self.weights(d)
        T = embed(X, v)
        n_points = n_points.to(T.dtype)
        for _ in range(int(n_loops)):
            T = self.layer(T, n_points, W_pv, W_kq)
            if orthogonal_to is not None:
                query = self._deflate(T[:, -1, d:], orthogonal_to)
                token = self._normalize(torch.cat([T[:, -1, :d], query], dim=-1))
                T = torch.cat([T[:, :-1], token[:, None, :]], dim=1)
            yield T[:, -1, d:]

    def _iterate_query(self, X, n_points, v, n_loops, orthogonal_to, folded):
        """Loops that touch the query token only: the data tokens are constant (see
        :meth:`inference_path`). With LN, the data tokens enter loop 1 as given and every later
        loop normalized (LN rescales them once), exactly as in the general path."""
        d = X.shape[-1]
        W_pv, W_kq = self.weights(d)
        n = n_points.to(X.dtype)[:, None]
        points = [X]  # the data tokens at loop 1 ...
        if self.normalization == "rms":
            close = (X.norm(dim=-1) - 1).abs() <= 4 * torch.finfo(X.dtype).eps
            if not torch.all(close | (X == 0).all(dim=-1)):  # (zero rows: padding)
                points.append(unit_vectors(X))  # ... and after LN rescaled them
        if folded:
            # q ← q + W_pv[21] Σ W_kq[12] q: the shared d × d factors as flat products
            # (contiguous copies: BLAS is ~3× slower on strided views) around one batched
            # product with Σ = XᵀX/n formed once (Gram-first) or as Xᵀ(X ·)/n every loop
            # (matrix-free, cheaper when d is large and n small; same rule as power_iteration).
            read, write = W_kq[:d, d:].T.contiguous(), W_pv[d:, :d].T.contiguous()
            gram_first = d * (X.shape[1] + n_loops) < 2 * n_loops * X.shape[1]
            if gram_first:
                sigmas = [P.transpose(1, 2) @ P / n[:, :, None] for P in points]
            query = v
            for k in range(int(n_loops)):
                r = (query @ read)[:, :, None]
                if gram_first:
                    sigma_r = sigmas[min(k, len(sigmas) - 1)] @ r
                else:
                    P = points[min(k, len(points) - 1)]
                    sigma_r = P.transpose(1, 2) @ (P @ r) / n[:, :, None]
                query = self._normalize(self._deflate(query + sigma_r[:, :, 0] @ write,
                                                      orthogonal_to))
                yield query
            return
        grams = [P.transpose(1, 2) @ P for P in points]  # Σ_i x_i x_iᵀ over the data tokens
        W_kq_T, W_pv_T = W_kq.T.contiguous(), W_pv.T.contiguous()
        z = torch.cat([torch.zeros_like(v), v], dim=-1)  # the query token (B, 2d)
        for k in range(int(n_loops)):
            S = grams[min(k, len(grams) - 1)]
            u = z @ W_kq_T  # W_kq z_q
            gram_u = torch.cat([(S @ u[:, :d, None])[:, :, 0], torch.zeros_like(v)], dim=-1)
            if not self.mask_query:
                gram_u = gram_u + z * (z * u).sum(-1, keepdim=True)  # + z_q z_qᵀ u
            z = z + (gram_u @ W_pv_T) / n
            query = self._deflate(z[:, d:], orthogonal_to)
            z = self._normalize(torch.cat([z[:, :d], query], dim=-1))
            yield z[:, d:]
