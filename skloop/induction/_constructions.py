"""Hand-built transformers that implement induction heads exactly (test oracles).

``../shared/math/induction_heads.md`` §4: the two-layer single-head IH_2 transformer of
Theorem 3.1 (``D = 2d``) and a Vandermonde variant of the multi-head IH_n construction of
Theorem 3.3 (``D = n d``). Both use the last-layer key-start mask (math note §1.1).
"""

from __future__ import annotations

import numpy as np
import torch

from ._model import InductionTransformer

__all__ = ["ih2_transformer", "ihn_transformer", "vandermonde_coefficients"]


def _block(n_blocks: int, d: int, row: int, col: int, matrix) -> np.ndarray:
    """A ``(n_blocks d) × (n_blocks d)`` matrix holding ``matrix`` at block ``(row, col)``."""
    out = np.zeros((n_blocks * d, n_blocks * d))
    size = np.shape(matrix)[0]
    out[row * d : row * d + size, col * d : col * d + np.shape(matrix)[1]] = matrix
    return out


def _assign(module: InductionTransformer, arrays: dict) -> InductionTransformer:
    state = {name: torch.as_tensor(value, dtype=torch.float64) for name, value in arrays.items()}
    module.load_state_dict({**module.state_dict(), **state})
    return module.double()


def vandermonde_coefficients(n: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Head ratios ``r_h = ε h`` and coefficients ``c = V⁻¹``, ``V_{jh} = r_h^{j−1}(1 − r_h)``.

    With slopes ``β_h = −ln r_h``, head ``h`` weights lag ``j`` by ``r_h^{j−1}(1 − r_h)`` far
    from the sequence start, so ``Σ_h c_{h,i}`` (head ``h``'s output) recovers lag ``i``.
    """
    r = eps * np.arange(1, n)
    if np.any(r >= 1):
        raise ValueError(f"eps={eps} too large for n={n}: need eps * (n - 1) < 1.")
    j = np.arange(1, n)[:, None]
    V = r[None, :] ** (j - 1) * (1 - r[None, :])
    return r, np.linalg.inv(V)


def ih2_transformer(W_star, p: float) -> InductionTransformer:
    """Theorem 3.1: previous-token head (slope ``p``) then a dot-product head with ``W*``."""
    W_star = np.atleast_2d(np.asarray(W_star, dtype=np.float64))
    d = W_star.shape[0]
    eye = np.eye(d)
    module = InductionTransformer(d, d, 2 * d, n_heads=(1, 1), residual=(True, False),
                                  key_start=1)
    return _assign(module, {
        "embed.weight": np.vstack([eye, np.zeros((d, d))]),
        "embed.bias": np.zeros(2 * d),
        "attention.0.W_V": _block(2, d, 1, 0, eye)[None],
        "attention.0.W_O": np.eye(2 * d),
        "attention.0.slopes": np.array([p]),
        "attention.1.W_Q": _block(2, d, 1, 0, eye)[None],
        "attention.1.W_K": _block(2, d, 1, 1, W_star)[None],
        "attention.1.W_V": _block(2, d, 0, 0, eye)[None],
        "attention.1.W_O": np.eye(2 * d),
        "readout.weight": np.hstack([eye, np.zeros((d, d))]),
    })


def ihn_transformer(n: int, W_star, eps: float) -> InductionTransformer:
    """The IH_n construction with ``n − 1`` previous-token heads at ratios ``ε h`` (error O(ε))."""
    W_star = np.atleast_2d(np.asarray(W_star, dtype=np.float64))
    d = W_star.shape[0] // (n - 1)
    eye = np.eye(d)
    r, c = vandermonde_coefficients(n, eps)
    # Layer 1 writes lags newest first; eq. (5) stacks patches oldest first: W̃* = P W* Pᵀ.
    reverse = np.kron(np.eye(n - 1)[::-1], eye)
    copies = [_block(n, d, i, 0, eye) for i in range(1, n)]  # S_i: block 1 → block i+1
    values = np.stack([sum(c[h, i] * copies[i] for i in range(n - 1)) for h in range(n - 1)])
    module = InductionTransformer(d, d, n * d, n_heads=(n - 1, 1), residual=(True, False),
                                  key_start=n - 1)
    query = np.zeros((n * d, n * d))
    query[d:, : (n - 1) * d] = np.eye((n - 1) * d)
    key = np.zeros((n * d, n * d))
    key[d:, d:] = reverse @ W_star @ reverse.T
    return _assign(module, {
        "embed.weight": np.vstack([eye, np.zeros(((n - 1) * d, d))]),
        "embed.bias": np.zeros(n * d),
        "attention.0.W_V": values,
        "attention.0.W_O": np.eye(n * d),
        "attention.0.slopes": -np.log(r),
        "attention.1.W_Q": query[None],
        "attention.1.W_K": key[None],
        "attention.1.W_V": _block(n, d, 0, 0, eye)[None],
        "attention.1.W_O": np.eye(n * d),
        "readout.weight": np.hstack([eye, np.zeros((d, (n - 1) * d))]),
    })
