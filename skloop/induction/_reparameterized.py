"""The 6-parameter model of the induction-head paper (eqs. 16–17) and its Fig 10 lift, torch.

It satisfies the same forward contract as :class:`~skloop.induction._model.InductionTransformer`:
``forward(X)`` gives the outputs, ``run(X)`` the hidden states and attention weights,
``last_hidden(X)`` the layer-1 output at the last position, ``tracked_parameters()`` the
scalars ``history_`` records. While a :class:`~skloop.induction._hooks.HookSet` is attached it
runs as the paper's two-layer transformer (Sec. 4.1.2, residual ``z_s = (x_s; y_s)``) with named
hook points (:meth:`ReparameterizedInduction.hook_names`); otherwise the short form below.
"""

from __future__ import annotations

import torch
from torch import nn

from ._model import _MASKED, attention_mask

__all__ = ["ReparameterizedInduction"]


class ReparameterizedInduction(nn.Module):
    """The 6-parameter model of eqs. (16)–(17), and its lift to ``d``-dimensional tokens.

    ``y_s = Σ_{τ<s} x_τ softmax_τ(−p̃ (s−1−τ))`` (layer 1, previous-token head with slope
    ``p̃``); head 1 ``g Σ_{s=2}^{L−1} y_s softmax_s(−p (L−1−s))`` (RPE only), head 2
    ``h Σ_{s=2}^{L−1} x_s softmax_s((W_Q x_L)ᵀ (W_K y_s))`` (dot product only). With
    ``oracle_first_layer`` the first layer is exact, ``y_s = x_{s−1}`` (``p̃ = ∞``). The
    output is ``(head 1, head 2)``: ``2 d`` values.

    For ``d = 1`` (the paper's Fig 3) ``w_K`` and ``w_Q`` are scalars and all six parameters
    start at ``σ_init`` (eq. 9). For ``d > 1`` (Fig 10) ``W_K``, ``W_Q`` are ``d × d``
    matrices drawn from a Gaussian with ``‖W_K‖_F = ‖W_Q‖_F = σ_init``, the paper's
    initialization; ``p̃, g, p, h`` stay scalars.

    Parameters
    ----------
    init_scale : float
        ``σ_init``.
    oracle_first_layer : bool
        Replace layer 1 by ``y_s = x_{s−1}`` (the regime Theorem 4.5 analyses).
    n_features : int, default=1
        Token dimension ``d``.
    seed : int, default=0
        Seed of the random directions of ``W_K``, ``W_Q`` (``d > 1`` only).
    """

    def __init__(self, init_scale=0.01, oracle_first_layer=True, n_features=1, seed=0):
        super().__init__()
        self.oracle_first_layer = oracle_first_layer
        for name in ("p_tilde", "g", "p", "h"):
            setattr(self, name, nn.Parameter(torch.tensor(float(init_scale))))
        if n_features == 1:
            self.w_K = nn.Parameter(torch.tensor(float(init_scale)))
            self.w_Q = nn.Parameter(torch.tensor(float(init_scale)))
            return
        generator = torch.Generator().manual_seed(seed)
        for name in ("w_K", "w_Q"):
            W = torch.randn(n_features, n_features, generator=generator, dtype=torch.float64)
            setattr(self, name, nn.Parameter((W * (init_scale / W.norm())).float()))

    def _previous_token_weights(self, L: int, like: torch.Tensor):
        """Layer-1 attention ``(L, L)``: ``softmax_τ(−p̃ (s−1−τ))`` over ``τ < s`` (row 1: 0)."""
        if self.oracle_first_layer:
            return torch.diag(torch.ones(L - 1, dtype=like.dtype, device=like.device), -1)
        lag = (torch.arange(L)[:, None] - torch.arange(L)[None, :]).to(like)  # s − τ
        mask = attention_mask(L, "strict").to(like.device)
        scores = (-self.p_tilde * (lag - 1)).masked_fill(~mask, _MASKED)
        return torch.softmax(scores, dim=-1) * mask.any(-1, keepdim=True)

    def previous_token(self, x):
        """Layer-1 output ``y`` ``(B, L, d)`` for tokens ``x`` ``(B, L, d)`` (``y_1 = 0``)."""
        if self.oracle_first_layer:
            return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        return torch.einsum("st,btd->bsd", self._previous_token_weights(x.shape[1], x), x)

    def similarity(self):
        """``W_Qᵀ W_K`` as a ``d × d`` matrix: the score is ``x_Lᵀ W_Qᵀ W_K y_s``."""
        if self.w_K.ndim == 0:
            return (self.w_K * self.w_Q).reshape(1, 1)
        return self.w_Q.T @ self.w_K

    def _heads(self, X, y):
        """Layer 2 at the last position: the two heads' weights over keys ``s = 2..L−1``
        (``(L−2,)`` RPE, ``(B, L−2)`` dot product) and the output ``(B, 2 d)``."""
        L = X.shape[1]
        keys = slice(1, L - 1)  # s = 2..L−1 (1-indexed)
        distance = torch.arange(L - 3, -1, -1, dtype=X.dtype, device=X.device)  # L−1−s
        rpe = torch.softmax(-self.p * distance, dim=0)  # (L−2,)
        four_gram = self.g * torch.einsum("s,bsd->bd", rpe, y[:, keys])
        query = X[:, -1] @ self.similarity()  # x_Lᵀ W_Qᵀ W_K: its dot with y_s is the score
        scores = torch.einsum("bd,bsd->bs", query, y[:, keys])  # (B, L−2)
        dot = torch.softmax(scores, dim=-1)
        induction = self.h * torch.einsum("bs,bsd->bd", dot, X[:, keys])
        return rpe, dot, torch.cat([four_gram, induction], dim=-1)

    def forward(self, X):
        """``(B, 2 d)`` outputs for sequences ``X`` ``(B, L, d)``."""
        if self._hooks is not None:
            return self._hooked(X, self._hooks)[0]
        return self._heads(X, self.previous_token(X))[2]

    _hooks = None  # a HookSet while one is attached (skloop.induction._hooks.attached)

    def hook_names(self) -> list:
        """Names of the hook points (those of :class:`InductionTransformer` where the concept
        exists: layer 1 has no queries or keys, ``W_Q = W_K = 0``; ``W_O = I``, so no ``z``)."""
        return ["hook_embed",
                *(f"blocks.0.attn.hook_{n}" for n in ("attn_scores", "pattern", "v", "result")),
                "blocks.0.hook_attn_out", "blocks.0.hook_resid_post",
                *(f"blocks.1.attn.hook_{n}" for n in ("q", "k", "v", "attn_scores", "pattern",
                                                      "result")),
                "blocks.1.hook_attn_out", "blocks.1.hook_resid_post"]

    def _hooked(self, X, hooks):
        """The forward pass as a two-layer transformer with residual width ``2 d``, through
        the hook points. Layer 2 reads the last query only (``Q = 1``): head 0 is the RPE head
        (``W_Q = W_K = 0``, value ``(g y_s; 0)``), head 1 the dot-product head (``q = W_Q x_L``,
        ``k_s = W_K y_s``, value ``(0; h x_s)``), keys ``s = 2..L−1``, no residual.

        Returns
        -------
        output : Tensor (B, 2 d)
        hidden : list of Tensor (B, L, d)
            ``x`` and ``y`` as read by layer 2.
        attention : list of Tensor
            ``(B, 1, L, L)`` and ``(B, 2, 1, L)``, as :meth:`run`.
        """
        B, L, d = X.shape
        zeros = torch.zeros_like(X)
        Z = hooks("hook_embed", torch.cat([X, zeros], dim=-1))  # (B, L, 2d): X⁽⁰⁾ = (x; 0)
        lag = (torch.arange(L)[:, None] - torch.arange(L)[None, :]).to(X)  # i − j
        mask = attention_mask(L, "strict").to(X.device)
        if self.oracle_first_layer:  # p̃ = ∞: only the previous token is admissible
            scores = torch.zeros_like(lag).masked_fill(lag != 1, _MASKED)
        else:
            scores = (-self.p_tilde * (lag - 1)).masked_fill(~mask, _MASKED)

        def per_sequence(name, value):  # (L, L), the same for every sequence: one copy per
            if not hooks.wants(name):  # sequence only for a hook function
                return value
            return hooks(name, value.expand(B, 1, L, L).clone())

        scores = per_sequence("blocks.0.attn.hook_attn_scores", scores)
        pattern = per_sequence("blocks.0.attn.hook_pattern",
                               torch.softmax(scores, dim=-1) * mask.any(-1, keepdim=True))
        v = hooks("blocks.0.attn.hook_v", torch.cat([zeros, Z[..., :d]], dim=-1)[:, None])
        result = hooks("blocks.0.attn.hook_result", pattern @ v)  # (B, 1, L, 2d)
        Z = Z + hooks("blocks.0.hook_attn_out", result.sum(dim=1))
        Z = hooks("blocks.0.hook_resid_post", Z)
        x, y = Z[..., :d], Z[..., d:]
        W_Q, W_K = (w.reshape(1, 1) if w.ndim == 0 else w for w in (self.w_Q, self.w_K))
        q = torch.stack([zeros[:, -1:], x[:, -1:] @ W_Q.T], dim=1)  # (B, 2, 1, d)
        k = torch.stack([zeros, y @ W_K.T], dim=1)  # (B, 2, L, d)
        v = torch.stack([torch.cat([self.g * y, zeros], -1), torch.cat([zeros, self.h * x], -1)],
                        dim=1)  # (B, 2, L, 2d)
        q, k, v = (hooks(f"blocks.1.attn.hook_{name}", t) for name, t in
                   (("q", q), ("k", k), ("v", v)))
        distance = lag[-1] - 1  # L − 2 − j: the RPE head's φ(L−1−j; p) = −p (L − 2 − j)
        bias = torch.stack([-self.p * distance, torch.zeros_like(distance)])[None, :, None]
        keys = (torch.arange(L, device=X.device) >= 1) & (torch.arange(L, device=X.device) < L - 1)
        scores = (q @ k.transpose(-1, -2) + bias).masked_fill(~keys, _MASKED)  # (B, 2, 1, L)
        scores = hooks("blocks.1.attn.hook_attn_scores", scores)
        pattern2 = hooks("blocks.1.attn.hook_pattern", torch.softmax(scores, dim=-1))
        result = hooks("blocks.1.attn.hook_result", pattern2 @ v)  # (B, 2, 1, 2d)
        out = hooks("blocks.1.hook_resid_post", hooks("blocks.1.hook_attn_out", result.sum(1)))
        return out[:, 0], [x, y], [pattern.expand(B, 1, L, L), pattern2]

    def run(self, X):
        """Hidden states and attention weights, as :meth:`InductionTransformer.run`.

        Returns
        -------
        hidden : list of Tensor (B, L, d)
            The tokens (the model has no embedding), then the layer-1 output ``y``.
        attention : list of Tensor
            Layer 1 ``(B, 1, L, L)`` (the previous-token head); layer 2 ``(B, 2, 1, L)``: the
            RPE head and the dot-product head, from the last position (the only query the
            model reads), zero on keys outside ``s = 2..L−1``.
        """
        if self._hooks is not None:
            return self._hooked(X, self._hooks)[1:]
        B, L, _ = X.shape
        y = self.previous_token(X)
        rpe, dot, _ = self._heads(X, y)
        layer1 = self._previous_token_weights(L, X).expand(B, 1, L, L)
        layer2 = torch.zeros(B, 2, 1, L, dtype=X.dtype, device=X.device)
        layer2[:, 0, 0, 1 : L - 1] = rpe
        layer2[:, 1, 0, 1 : L - 1] = dot
        return [X, y], [layer1, layer2]

    n_layers = 2
    head_counts = (1, 2)  # the previous-token head; the RPE and the dot-product heads

    def values_per_sequence(self, seq_len: int) -> int:
        """Values a forward pass holds per sequence (layer-1 weights, ``y``, scores), for
        chunking inference by a memory budget."""
        d = self.w_K.shape[0] if self.w_K.ndim else 1
        return seq_len * (seq_len + 4 * d + 4)

    def tracked_parameters(self) -> dict:
        """The six parameters, recorded in ``history_`` every epoch (``w_K``, ``w_Q``: their
        Frobenius norms for ``d > 1``)."""
        values = {}
        for name in ("p_tilde", "g", "p", "w_K", "w_Q", "h"):
            param = getattr(self, name)
            values[name] = param.item() if param.ndim == 0 else param.norm().item()
        return values
