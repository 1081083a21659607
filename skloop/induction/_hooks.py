"""Named hook points of the induction models (TransformerLens-style), in torch.

A model's forward pass calls its hook points only while a :class:`HookSet` is attached to it
(:func:`attached`); otherwise each hook point costs one ``is None`` test, nothing measurable
(``benchmarks/hooks_overhead.py``). A hook function has TransformerLens's signature
``fn(activation, hook) -> Tensor or None``: it may return a replacement (same shape) or
``None`` to keep the activation (after reading it, or changing it in place).

Names and shapes (``B`` sequences, ``L`` positions, ``H`` heads of the layer, ``Q`` query
positions: ``L``, or 1 where a layer reads the last position only, ``D`` the residual width,
``k`` the query/key/value width), with ``u`` the 0-indexed layer:

=================================  ==================  ==========================================
name                               shape               content
=================================  ==================  ==========================================
``hook_embed``                     ``(B, L, D)``       the embedding ``W_E x_s + b_E``
``blocks.u.attn.hook_q``           ``(B, H, Q, k)``    queries ``W_Q z_i`` of every head
``blocks.u.attn.hook_k``           ``(B, H, L, k)``    keys ``W_K z_j``
``blocks.u.attn.hook_v``           ``(B, H, L, k)``    values ``W_V z_j``
``blocks.u.attn.hook_attn_scores`` ``(B, H, Q, L)``    ``q·k`` + ALiBi bias; masked keys -1e9
``blocks.u.attn.hook_pattern``     ``(B, H, Q, L)``    softmax of the scores (rows without an
                                                       admissible key are 0)
``blocks.u.attn.hook_z``           ``(B, H, Q, k)``    ``Σ_j pattern_ij v_j`` (standard model)
``blocks.u.attn.hook_result``      ``(B, H, Q, D)``    each head's output, after ``W_O``
``blocks.u.hook_attn_out``         ``(B, Q, D)``       the attention output: Σ of the results
``blocks.u.hook_mlp_out``          ``(B, L, D)``       the feed-forward output (``ffn_width>0``)
``blocks.u.hook_resid_post``       ``(B, Q, D)``       the residual stream after the layer
=================================  ==================  ==========================================

Heads come first (``(B, H, …)``, the layout of ``attention_maps``), unlike TransformerLens's
``(batch, pos, head, …)`` for ``q, k, v, z, result``: ``activation[:, h]`` is head ``h`` at
every per-head hook point.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

__all__ = ["HookPoint", "HookSet", "attached", "check_hook_names"]


@dataclass(frozen=True)
class HookPoint:
    """What a hook function learns about the call: the hook point and the rows.

    Attributes
    ----------
    name : str
        The hook point's name, e.g. ``"blocks.0.attn.hook_pattern"``.
    rows : slice
        The rows of the estimator's input this forward pass covers (inference runs in chunks
        within a memory budget): ``activation[i]`` belongs to sequence ``rows.start + i``.
    """

    name: str
    rows: slice


class HookSet:
    """The hook functions of one forward pass: name → functions, called in order.

    Parameters
    ----------
    functions : dict of str to list of callable
        ``fn(activation, hook)`` per hook point name.
    rows : slice, default=slice(None)
        The input rows of this pass (see :class:`HookPoint`).
    """

    def __init__(self, functions: dict, rows: slice = slice(None)):
        self.functions = functions
        self.rows = rows

    def wants(self, name: str) -> bool:
        """Whether a function is registered at ``name`` (for activations computed only then)."""
        return name in self.functions

    def __call__(self, name: str, activation):
        """``activation`` passed through the functions registered at ``name``."""
        for function in self.functions.get(name, ()):
            replaced = function(activation, HookPoint(name, self.rows))
            if replaced is not None:
                replaced = torch.as_tensor(replaced, dtype=activation.dtype,
                                           device=activation.device)
                if replaced.shape != activation.shape:
                    raise ValueError(
                        f"The hook function at {name!r} returned shape {tuple(replaced.shape)}; "
                        f"it must keep the activation's shape {tuple(activation.shape)}."
                    )
                activation = replaced
        return activation


@contextlib.contextmanager
def attached(module, functions: dict | None, rows: slice = slice(None)):
    """Run the block with the hook ``functions`` (name → list) attached to ``module`` for
    the input ``rows`` (``None``: nothing to attach)."""
    if functions is None:
        yield module
        return
    module._hooks = HookSet(functions, rows)
    try:
        yield module
    finally:
        del module._hooks  # back to the class attribute: None


def check_hook_names(names, available) -> list:
    """The hook names asked for, as a list, or a ``ValueError`` naming the available ones.

    ``names`` is a string, a sequence of strings, or a callable filter ``name -> bool``.
    """
    available = list(available)
    if callable(names):
        return [name for name in available if names(name)]
    names = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(f"Unknown hook names {unknown}; this model has {available}.")
    return names
