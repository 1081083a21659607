"""The paper's ALiBi transformer (eqs. 1–2 of Wang, Yu, E & Wu), in torch.

Tokens are rows: ``X`` of shape ``(B, L, d)``. Each attention head has its own query, key and
value matrices (full ``D × D`` by default, as in the paper; ``head_dim`` splits them), a
learnable ALiBi slope ``p`` with bias ``φ(i − j; p) = −p (i − j − 1)`` on admissible keys, and
strict causality (a token never attends to itself). No ``1/√D`` scaling and no LayerNorm by
default (``../shared/math/induction_heads.md`` §3).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ALiBiAttention", "InductionTransformer", "attention_mask", "initialize_weights"]

_MASKED = -1e9  # finite: exp underflows to exactly 0 without -inf arithmetic (no NaN)


def attention_mask(seq_len: int, causal: str = "strict", key_start: int = 0, device=None):
    """Boolean ``(L, L)`` mask of admissible keys ``j`` for each query ``i``.

    ``"strict"``: ``j < i``; ``"standard"``: ``j <= i``. Keys at positions ``< key_start`` are
    excluded (the last-layer mask the exact constructions need, math note §1.1).
    """
    i = torch.arange(seq_len, device=device)[:, None]
    j = torch.arange(seq_len, device=device)[None, :]
    allowed = j < i if causal == "strict" else j <= i
    return allowed & (j >= key_start)


class ALiBiAttention(nn.Module):
    """Multi-head attention with per-head learnable ALiBi slopes.

    Parameters
    ----------
    d_model : int
        Width ``D``.
    n_heads : int
        Number of heads ``H``.
    head_dim : int or None
        ``None``: full ``D × D`` query/key/value matrices per head and the paper's output
        ``W_O Σ_h head_h`` (``W_O`` is ``D × D``); an int: ``head_dim × D`` matrices, heads
        concatenated before ``W_O`` (``D × H·head_dim``).
    positional : {"alibi", "none"}
        Learnable slopes, or no positional bias (slopes fixed at 0).
    scale : bool
        Divide scores by ``√(key dim)`` (off in the paper).
    """

    def __init__(self, d_model, n_heads, head_dim=None, positional="alibi", scale=False):
        super().__init__()
        self.n_heads = n_heads
        self.full_heads = head_dim is None
        dim = d_model if head_dim is None else head_dim
        self.W_Q = nn.Parameter(torch.zeros(n_heads, dim, d_model))
        self.W_K = nn.Parameter(torch.zeros(n_heads, dim, d_model))
        self.W_V = nn.Parameter(torch.zeros(n_heads, dim, d_model))
        self.W_O = nn.Parameter(torch.zeros(d_model, dim if self.full_heads else n_heads * dim))
        self.slopes = nn.Parameter(torch.zeros(n_heads), requires_grad=positional == "alibi")
        self.scale = dim**-0.5 if scale else 1.0

    def forward(self, Z, mask):
        """Attention output ``(B, L, D)`` and weights ``(B, H, L, L)`` for inputs ``Z``."""
        L = Z.shape[1]
        q = torch.einsum("hkD,blD->bhlk", self.W_Q, Z)  # (B, H, L, dim)
        k = torch.einsum("hkD,blD->bhlk", self.W_K, Z)
        v = torch.einsum("hkD,blD->bhlk", self.W_V, Z)
        lag = (torch.arange(L, device=Z.device)[:, None]
               - torch.arange(L, device=Z.device)[None, :]).to(Z.dtype)  # i − j
        bias = -self.slopes[:, None, None] * (lag - 1)  # (H, L, L): φ(i − j; p)
        scores = self.scale * (q @ k.transpose(-1, -2)) + bias
        scores = scores.masked_fill(~mask, _MASKED)
        weights = torch.softmax(scores, dim=-1) * mask.any(-1, keepdim=True)  # empty rows → 0
        heads = weights @ v  # (B, H, L, dim)
        if self.full_heads:
            combined = heads.sum(dim=1)  # Σ_h, then the paper's D × D W_O
        else:
            combined = heads.transpose(1, 2).flatten(2)  # concatenate heads
        return combined @ self.W_O.T, weights


class InductionTransformer(nn.Module):
    """Embedding, ``U`` attention(+FFN) layers with residuals, linear read-out of the last token.

    Parameters
    ----------
    n_features : int
        Token dimension ``d``.
    n_outputs : int
        Output dimension of the read-out.
    d_model : int
        Width ``D``.
    n_heads : tuple of int
        Heads per layer (its length is the number of layers ``U``).
    head_dim : int or None
        See :class:`ALiBiAttention`.
    ffn_width : int
        Width of the ReLU feed-forward block after each attention (0: attention-only).
    positional : {"alibi", "none"}
        Positional bias.
    causal : {"strict", "standard"}
        Strict (no self-attention, the paper's) or standard (diagonal allowed) causality.
    scale : bool
        ``1/√dim`` score scaling.
    residual : tuple of bool
        Residual connection of each layer.
    key_start : int
        Keys before this position are excluded in the last layer.
    """

    def __init__(self, n_features, n_outputs, d_model, n_heads=(1, 1), head_dim=None,
                 ffn_width=0, positional="alibi", causal="strict", scale=False,
                 residual=(True, True), key_start=0):
        super().__init__()
        self.causal = causal
        self.residual = tuple(residual)
        self.key_start = key_start
        self.embed = nn.Linear(n_features, d_model)
        self.attention = nn.ModuleList(
            ALiBiAttention(d_model, h, head_dim, positional, scale) for h in n_heads
        )
        self.ffn = nn.ModuleList(
            nn.Sequential(nn.Linear(d_model, ffn_width), nn.ReLU(), nn.Linear(ffn_width, d_model))
            if ffn_width else nn.Identity()
            for _ in n_heads
        )
        self.readout = nn.Linear(d_model, n_outputs, bias=False)

    def run(self, X):
        """All hidden states and attention weights.

        Returns
        -------
        hidden : list of Tensor (B, L, D)
            The embedding, then the output of every layer.
        attention : list of Tensor (B, H, L, L)
            The attention weights of every layer.
        """
        L = X.shape[1]
        n_layers = len(self.attention)
        Z = self.embed(X)
        hidden, attention = [Z], []
        for u, (attn, ffn) in enumerate(zip(self.attention, self.ffn, strict=True)):
            key_start = self.key_start if u == n_layers - 1 else 0
            mask = attention_mask(L, self.causal, key_start, device=X.device)
            update, weights = attn(Z, mask)
            Z = Z + update if self.residual[u] else update
            if not isinstance(ffn, nn.Identity):
                Z = Z + ffn(Z)
            hidden.append(Z)
            attention.append(weights)
        return hidden, attention

    def forward(self, X):
        """Read-out of the last token, ``(B, n_outputs)``."""
        return self.readout(self.run(X)[0][-1][:, -1])


def initialize_weights(module: InductionTransformer, init_scale, generator: torch.Generator):
    """Random initial weights from ``generator`` (global RNG untouched), slopes 0.

    ``init_scale="auto"``: ``N(0, 1/D)`` for the attention matrices and the read-out,
    ``N(0, 1/d)`` for the embedding, zero biases (math note §6); a float ``σ``: every weight
    ``N(0, σ²)`` (the paper's small init).
    """
    d_model = module.embed.out_features
    n_features = module.embed.in_features
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("slopes") or name.endswith("bias"):
                param.zero_()
                continue
            if init_scale == "auto":
                std = n_features**-0.5 if name.startswith("embed") else d_model**-0.5
            else:
                std = float(init_scale)
            param.copy_(std * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    return module


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

    def previous_token(self, x):
        """Layer-1 output ``y`` ``(B, L, d)`` for tokens ``x`` ``(B, L, d)`` (``y_1 = 0``)."""
        if self.oracle_first_layer:
            return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        L = x.shape[1]
        lag = (torch.arange(L)[:, None] - torch.arange(L)[None, :]).to(x)  # s − τ
        mask = attention_mask(L, "strict").to(x.device)
        scores = (-self.p_tilde * (lag - 1)).masked_fill(~mask, _MASKED)
        weights = torch.softmax(scores, dim=-1) * mask.any(-1, keepdim=True)
        return torch.einsum("st,btd->bsd", weights, x)

    def similarity(self):
        """``W_Qᵀ W_K`` as a ``d × d`` matrix: the score is ``x_Lᵀ W_Qᵀ W_K y_s``."""
        if self.w_K.ndim == 0:
            return (self.w_K * self.w_Q).reshape(1, 1)
        return self.w_Q.T @ self.w_K

    def forward(self, X):
        """``(B, 2 d)`` outputs for sequences ``X`` ``(B, L, d)``."""
        L = X.shape[1]
        y = self.previous_token(X)
        keys = slice(1, L - 1)  # s = 2..L−1 (1-indexed)
        distance = torch.arange(L - 3, -1, -1, dtype=X.dtype, device=X.device)  # L−1−s
        rpe = torch.softmax(-self.p * distance, dim=0)  # (L−2,)
        four_gram = self.g * torch.einsum("s,bsd->bd", rpe, y[:, keys])
        query = X[:, -1] @ self.similarity()  # x_Lᵀ W_Qᵀ W_K: its dot with y_s is the score
        scores = torch.einsum("bd,bsd->bs", query, y[:, keys])  # (B, L−2)
        induction = self.h * torch.einsum("bs,bsd->bd", torch.softmax(scores, dim=-1),
                                          X[:, keys])
        return torch.cat([four_gram, induction], dim=-1)
