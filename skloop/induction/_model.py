"""The paper's ALiBi transformer (eqs. 1–2 of Wang, Yu, E & Wu), in torch.

Tokens are rows: ``X`` of shape ``(B, L, d)``. Each attention head has its own query, key and
value matrices (full ``D × D`` by default, as in the paper; ``head_dim`` splits them), a
learnable ALiBi slope ``p`` with bias ``φ(i − j; p) = −p (i − j − 1)`` on admissible keys, and
strict causality (a token never attends to itself). No ``1/√D`` scaling and no LayerNorm by
default (``../shared/math/induction_heads.md`` §3). Named hook points (``hook_embed``,
``blocks.u.attn.hook_q`` … ``blocks.u.hook_resid_post``, :mod:`skloop.induction._hooks`) run
only while a :class:`~skloop.induction._hooks.HookSet` is attached.
"""

from __future__ import annotations

from collections import deque

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

    def forward(self, Z, mask, hooks=None, prefix=""):
        """Attention output ``(B, L, D)`` and weights ``(B, H, L, L)`` for inputs ``Z``;
        ``hooks`` (a :class:`~skloop.induction._hooks.HookSet`) runs the hook points named
        ``prefix + "hook_q"`` etc."""
        L = Z.shape[1]
        q = torch.einsum("hkD,blD->bhlk", self.W_Q, Z)  # (B, H, L, dim)
        k = torch.einsum("hkD,blD->bhlk", self.W_K, Z)
        v = torch.einsum("hkD,blD->bhlk", self.W_V, Z)
        if hooks is not None:
            q, k, v = (hooks(prefix + name, x) for name, x in
                       (("hook_q", q), ("hook_k", k), ("hook_v", v)))
        lag = (torch.arange(L, device=Z.device)[:, None]
               - torch.arange(L, device=Z.device)[None, :]).to(Z.dtype)  # i − j
        bias = -self.slopes[:, None, None] * (lag - 1)  # (H, L, L): φ(i − j; p)
        scores = self.scale * (q @ k.transpose(-1, -2)) + bias
        scores = scores.masked_fill(~mask, _MASKED)
        if hooks is not None:
            scores = hooks(prefix + "hook_attn_scores", scores)
        weights = torch.softmax(scores, dim=-1) * mask.any(-1, keepdim=True)  # empty rows → 0
        if hooks is not None:
            weights = hooks(prefix + "hook_pattern", weights)
        heads = weights @ v  # (B, H, L, dim)
        if hooks is not None:
            heads = hooks(prefix + "hook_z", heads)
            if hooks.wants(prefix + "hook_result"):  # per-head outputs: formed only when hooked
                W_O = self.W_O if self.full_heads else self.W_O.unflatten(1, (self.n_heads, -1))
                pattern = "bhlk,Dk->bhlD" if self.full_heads else "bhlk,Dhk->bhlD"
                result = hooks(prefix + "hook_result", torch.einsum(pattern, heads, W_O))
                return result.sum(dim=1), weights  # (B, L, D)
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

    _hooks = None  # a HookSet while one is attached (skloop.induction._hooks.attached)

    def states(self, X):
        """Yield ``(hidden, weights)``: the embedding (weights None), then after each layer its
        output ``(B, L, D)`` and attention weights ``(B, H, L, L)``; one layer held at a time."""
        L = X.shape[1]
        n_layers = len(self.attention)
        hooks = self._hooks
        Z = self.embed(X)
        if hooks is not None:
            Z = hooks("hook_embed", Z)
        yield Z, None
        for u, (attn, ffn) in enumerate(zip(self.attention, self.ffn, strict=True)):
            key_start = self.key_start if u == n_layers - 1 else 0
            mask = attention_mask(L, self.causal, key_start, device=X.device)
            update, weights = attn(Z, mask, hooks, f"blocks.{u}.attn.")
            if hooks is not None:
                update = hooks(f"blocks.{u}.hook_attn_out", update)
            Z = Z + update if self.residual[u] else update
            if not isinstance(ffn, nn.Identity):
                mlp = ffn(Z)
                Z = Z + (mlp if hooks is None else hooks(f"blocks.{u}.hook_mlp_out", mlp))
            if hooks is not None:
                Z = hooks(f"blocks.{u}.hook_resid_post", Z)
            yield Z, weights

    def run(self, X):
        """All hidden states and attention weights.

        Returns
        -------
        hidden : list of Tensor (B, L, D)
            The embedding, then the output of every layer.
        attention : list of Tensor (B, H, L, L)
            The attention weights of every layer.
        """
        hidden, attention = [], []
        for Z, weights in self.states(X):
            hidden.append(Z)
            if weights is not None:
                attention.append(weights)
        return hidden, attention

    def forward(self, X):
        """Read-out of the last token, ``(B, n_outputs)`` (no per-layer states are kept)."""
        Z, _ = deque(self.states(X), maxlen=1)[0]  # the last layer only
        return self.readout(Z[:, -1])

    @property
    def n_layers(self) -> int:
        """Number of attention layers ``U``."""
        return len(self.attention)

    @property
    def head_counts(self) -> tuple:
        """Heads of each layer."""
        return tuple(a.n_heads for a in self.attention)

    def values_per_sequence(self, seq_len: int) -> int:
        """Values one layer's forward pass holds per sequence (scores and weights ``2 H L²``,
        queries, keys and values ``3 H L dim``, hidden and feed-forward states), for chunking
        inference by a memory budget."""
        heads = max(a.n_heads for a in self.attention)
        dim = max(a.W_Q.shape[1] for a in self.attention)
        width = self.embed.out_features + max(
            (f[0].out_features for f in self.ffn if not isinstance(f, nn.Identity)), default=0
        )
        return seq_len * (2 * heads * seq_len + 3 * heads * dim + 2 * width)

    def hook_names(self) -> list:
        """Names of the hook points, in the order the forward pass reaches them."""
        names = ["hook_embed"]
        attention = ("q", "k", "v", "attn_scores", "pattern", "z", "result")
        for u, ffn in enumerate(self.ffn):
            names += [f"blocks.{u}.attn.hook_{name}" for name in attention]
            names.append(f"blocks.{u}.hook_attn_out")
            if not isinstance(ffn, nn.Identity):
                names.append(f"blocks.{u}.hook_mlp_out")
            names.append(f"blocks.{u}.hook_resid_post")
        return names

    def tracked_parameters(self) -> dict:
        """Scalars ``history_`` records every epoch: per layer ``u`` the norm of the ALiBi
        slopes (``slope_norm_u``) and of the stacked ``W_Q``, ``W_K`` (``qk_norm_u``)."""
        values = {}
        for u, attention in enumerate(self.attention):
            values[f"slope_norm_{u}"] = attention.slopes.norm().item()
            values[f"qk_norm_{u}"] = torch.cat([attention.W_Q.flatten(),
                                                attention.W_K.flatten()]).norm().item()
        return values


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
