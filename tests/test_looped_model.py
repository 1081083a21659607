"""Exactness of the torch model against hand-built references (math note §10.1)."""

import numpy as np
import pytest
import torch

from skloop.datasets import make_sphere_matrices
from skloop.metrics import leading_subspace
from skloop.pca._model import LoopedLinearAttention, embed, power_method_weights
from skloop.pca._objectives import layerwise_loss, one_step_target, subspace_loss

D, N = 4, 7


def _paper_reference(A, v, W_pv, W_kq, n_loops, normalize, mask=False):
    """The paper's layer in its own orientation, with the explicit (n+1)×(n+1) attention."""
    d, n = A.shape[1], A.shape[0]
    Z = np.zeros((2 * d, n + 1))
    Z[:d, :n] = A.T
    Z[d:, n] = v
    M = np.diag([1.0] * n + [0.0 if mask else 1.0])
    for _ in range(n_loops):
        attention = Z.T @ W_kq @ Z  # (n+1, n+1)
        Z = Z + W_pv @ Z @ M @ attention / n
        if normalize:
            Z = Z / np.linalg.norm(Z, axis=0, keepdims=True)
    return Z[d:, n]


def _module(normalization="rms", mask_query=False, weights=None, seed=0):
    module = LoopedLinearAttention(D, normalization=normalization, init="random", init_scale=0.3,
                                   mask_query=mask_query, seed=seed)
    if weights is not None:
        with torch.no_grad():
            module.W_pv.copy_(weights[0])
            module.W_kq.copy_(weights[1])
    return module


def _data(n_matrices=5, seed=0):
    X = make_sphere_matrices(n_matrices, n_points=N, n_features=D, random_state=seed)
    v = np.random.default_rng(seed).standard_normal((n_matrices, D))
    return X, v / np.linalg.norm(v, axis=1, keepdims=True)


def _run(module, X, v, n_loops, n_points=None):
    n_points = np.full(len(X), X.shape[1]) if n_points is None else n_points
    with torch.no_grad():
        return module(torch.from_numpy(X), torch.from_numpy(n_points), torch.from_numpy(v),
                      n_loops=n_loops).numpy()


def test_embedding_layout():
    X, v = _data(2)
    T = embed(torch.from_numpy(X), torch.from_numpy(v)).numpy()
    Z = np.swapaxes(T, 1, 2)  # paper orientation (2d, n+1)
    assert Z.shape == (2, 2 * D, N + 1)
    np.testing.assert_array_equal(Z[:, :D, :N], np.swapaxes(X, 1, 2))
    np.testing.assert_array_equal(Z[:, D:, N], v)
    np.testing.assert_array_equal(Z[:, D:, :N], 0.0)
    np.testing.assert_array_equal(Z[:, :D, N], 0.0)


@pytest.mark.parametrize("normalization", ["rms", None])
@pytest.mark.parametrize("mask_query", [False, True])
def test_associative_layer_matches_explicit_attention(normalization, mask_query):
    # Random (off-manifold) weights: every block is active, data tokens change too.
    module = _module(normalization, mask_query)
    X, v = _data()
    W_pv, W_kq = (w.detach().numpy() for w in module.weights())
    out = _run(module, X, v, n_loops=3)
    for i in range(len(X)):
        expected = _paper_reference(X[i], v[i], W_pv, W_kq, 3, normalization == "rms", mask_query)
        np.testing.assert_allclose(out[i], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("normalization", ["rms", None])
def test_zero_padding_with_per_matrix_n_is_exact(normalization):
    module = _module(normalization)
    rng = np.random.default_rng(1)
    sizes = [3, 7, 5]
    padded = np.zeros((3, 7, D))
    for i, k in enumerate(sizes):
        points = rng.standard_normal((k, D))
        padded[i, :k] = points / np.linalg.norm(points, axis=1, keepdims=True)
    v = rng.standard_normal((3, D))
    out = _run(module, padded, v, 4, n_points=np.array(sizes))
    for i, k in enumerate(sizes):
        single = _run(module, padded[i : i + 1, :k], v[i : i + 1], 4)
        np.testing.assert_allclose(out[i], single[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mask_query", [False, True])
def test_manifold_layer_is_the_shifted_power_step(mask_query):
    u, w, L = 1.3, 0.9, 3
    X, v = _data(6)
    sigma = np.swapaxes(X, 1, 2) @ X / N
    step = np.linalg.matrix_power(np.eye(D) + u * w * sigma, L) @ v[:, :, None]
    step = step[:, :, 0]
    weights = power_method_weights(D, u, w)
    ln = _run(_module("rms", mask_query, weights), X, v, L)
    np.testing.assert_allclose(ln, step / np.linalg.norm(step, axis=1, keepdims=True),
                               atol=1e-12)
    no_ln = _run(_module(None, mask_query, weights), X, v, L)
    np.testing.assert_allclose(no_ln, step, rtol=1e-12)


def test_scalar_parametrization_equals_full_on_the_manifold_at_any_d():
    scalar = LoopedLinearAttention(D, parametrization="scalar", init="paper")
    with torch.no_grad():
        scalar.u.fill_(0.7)
        scalar.w.fill_(2.0)
    full = _module("rms", weights=power_method_weights(D, 0.7, 2.0))
    X, v = _data()
    np.testing.assert_allclose(_run(scalar, X, v, 5), _run(full, X, v, 5), atol=1e-14)
    # The scalar model runs on another feature count.
    X6 = make_sphere_matrices(2, n_points=9, n_features=6, random_state=3)
    v6 = np.ones((2, 6)) / np.sqrt(6)
    sigma = np.swapaxes(X6, 1, 2) @ X6 / 9
    step = (np.linalg.matrix_power(np.eye(6) + 1.4 * sigma, 5) @ v6[:, :, None])[:, :, 0]
    np.testing.assert_allclose(_run(scalar, X6, v6, 5),
                               step / np.linalg.norm(step, axis=1, keepdims=True), atol=1e-12)


def _per_sample_gradients(u, w, normalization, loss_kind):
    X, v = _data(6, seed=4)
    projector = torch.from_numpy(leading_subspace(X).projector)
    module = _module(normalization, weights=power_method_weights(D, u, w))
    grads = []
    for i in range(len(X)):
        module.zero_grad()
        Xi, vi = torch.from_numpy(X[i : i + 1]), torch.from_numpy(v[i : i + 1])
        ni = torch.tensor([N])
        y = module(Xi, ni, vi, n_loops=3 if loss_kind == "end_to_end" else 1)
        if loss_kind == "end_to_end":
            loss = subspace_loss(y, projector[i : i + 1])
        else:
            loss = layerwise_loss(y, one_step_target(Xi, ni, vi, loss_kind))
        loss.backward()
        grads.append((module.W_pv.grad.clone().numpy(), module.W_kq.grad.clone().numpy()))
    return grads


LOSSES = [("rms", "end_to_end"), ("rms", "normalized"), (None, "normalized"),
          (None, "unnormalized")]


@pytest.mark.parametrize("normalization, loss_kind", LOSSES)
def test_per_sample_gradients_vanish_off_the_active_blocks(normalization, loss_kind):
    for u, w, active in [(0.0, 1.0, ["pv21"]), (1.3, 0.9, ["pv21", "kq12"])]:
        for g_pv, g_kq in _per_sample_gradients(u, w, normalization, loss_kind):
            blocks = {
                "pv11": g_pv[:D, :D], "pv12": g_pv[:D, D:], "pv21": g_pv[D:, :D],
                "pv22": g_pv[D:, D:], "kq11": g_kq[:D, :D], "kq12": g_kq[:D, D:],
                "kq21": g_kq[D:, :D], "kq22": g_kq[D:, D:],
            }
            for name, block in blocks.items():
                if name in active:
                    assert np.abs(block).max() > 1e-6, name
                else:
                    assert np.all(block == 0.0), (name, np.abs(block).max())


def test_losses_match_their_formulas():
    X, v = _data(3)
    Xt, vt, nt = torch.from_numpy(X), torch.from_numpy(v), torch.tensor([N] * 3)
    subspace = leading_subspace(X)
    projector = torch.from_numpy(subspace.projector)
    y = torch.from_numpy(v * 3.0)
    literal = subspace_loss(y, projector, normalize_output=False).item()
    expected = np.mean(9 * (1 - np.einsum("mi,mij,mj->m", v, subspace.projector, v)))
    assert literal == pytest.approx(expected, rel=1e-12)
    assert subspace_loss(y, projector).item() == pytest.approx(expected / 9, rel=1e-12)
    sigma_v = np.einsum("mij,mj->mi", np.swapaxes(X, 1, 2) @ X / N, v)
    np.testing.assert_allclose(one_step_target(Xt, nt, vt, "unnormalized").numpy(), N * sigma_v)
    np.testing.assert_allclose(one_step_target(Xt, nt, vt, "normalized").numpy(),
                               sigma_v / np.linalg.norm(sigma_v, axis=1, keepdims=True))


def _structured(kind, seed=0):
    """Weights with the zero pattern of each inference path (non-isotropic blocks)."""
    rng = np.random.default_rng(seed)
    W_pv = rng.normal(0, 0.5, (2 * D, 2 * D))
    W_kq = rng.normal(0, 0.5, (2 * D, 2 * D))
    W_kq[:, :D] = 0.0  # the blocks reading the data tokens
    if kind == "folded":
        W_kq[D:, D:] = 0.0
        W_pv[:D, :D] = 0.0
    return torch.from_numpy(W_pv), torch.from_numpy(W_kq)


@pytest.mark.parametrize("kind", ["folded", "frozen_data"])
@pytest.mark.parametrize("normalization", ["rms", None])
@pytest.mark.parametrize("mask_query", [False, True])
def test_fast_paths_equal_the_general_path(kind, normalization, mask_query):
    module = _module(normalization, mask_query, weights=_structured(kind))
    assert module.inference_path() == kind
    rng = np.random.default_rng(3)
    sizes = np.array([4, 7, 6])
    X = np.zeros((3, 7, D))
    for i, k in enumerate(sizes):  # ragged, and points NOT of unit norm: LN rescales them once
        X[i, :k] = rng.standard_normal((k, D)) * rng.uniform(0.5, 2.0, (k, 1))
    v = rng.standard_normal((3, D))
    C = np.linalg.qr(rng.standard_normal((3, D, 1)))[0]  # one direction to deflate
    args = [torch.from_numpy(a) for a in (X, sizes, v)]
    with torch.no_grad():
        for deflate in (None, torch.from_numpy(C)):
            # 6 loops over 7 points in 4-D takes the Gram-first fold, 1 loop the matrix-free one
            for loops in (6, 1):
                fast = torch.stack(list(module.iterate(*args, loops, deflate))).numpy()
                general = torch.stack(list(module.iterate(*args, loops, deflate,
                                                          path="general")))
                np.testing.assert_allclose(fast, general.numpy(), rtol=1e-10, atol=1e-12)


def test_path_detection_uses_exact_zeros_and_training_takes_the_general_path():
    folded = _module("rms", weights=power_method_weights(D, 1.3, 0.9))
    assert folded.inference_path() == "folded"
    W_pv, W_kq = _structured("folded")
    W_kq[0, 0] = 1e-300  # a tiny but non-zero data-reading entry: no shortcut
    assert _module("rms", weights=(W_pv, W_kq)).inference_path() == "general"
    scalar = LoopedLinearAttention(D, parametrization="scalar")
    assert scalar.inference_path() == "folded"
    # With autograd on, iterate() uses the general path, whose gradient reaches every block.
    X, v = _data(2)
    module = _module("rms", weights=_structured("folded"))
    y = module(torch.from_numpy(X), torch.tensor([N, N]), torch.from_numpy(v), n_loops=3)
    y.sum().backward()
    assert module.W_kq.grad[:, :D].abs().max() > 0
