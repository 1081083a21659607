"""Induction-head targets against straightforward loops and exact enumeration."""

import itertools

import numpy as np
import pytest

from skloop.datasets import make_induction_head_task, make_repeated_tokens
from skloop.induction import gihn, ih2, ihn, mixed_target, uniform_attention_baseline


def _loop_ihn(X, n, W):
    """Eq. (5) with 1-indexed loops: Σ_{s=n}^{L-1} x_s softmax_s(X_{L-n+2:L}ᵀ W X_{s-n+1:s-1})."""
    N, L, d = X.shape
    out = np.zeros((N, d))
    for b in range(N):
        x = lambda s, b=b: X[b, s - 1]  # noqa: E731 - 1-indexed token
        query = np.concatenate([x(t) for t in range(L - n + 2, L + 1)])
        scores, values = [], []
        for s in range(n, L):
            key = np.concatenate([x(t) for t in range(s - n + 1, s)])
            scores.append(query @ W @ key)
            values.append(x(s))
        weights = np.exp(np.array(scores) - max(scores))
        out[b] = (weights / weights.sum()) @ np.array(values)
    return out


@pytest.mark.parametrize("n, d, L", [(2, 1, 10), (2, 3, 7), (3, 2, 9), (4, 1, 12)])
def test_ihn_matches_the_loop_definition(n, d, L):
    rng = np.random.default_rng(n * 10 + d)
    X = rng.standard_normal((6, L, d))
    W = rng.standard_normal(((n - 1) * d, (n - 1) * d))
    np.testing.assert_allclose(ihn(X, n, W), _loop_ihn(X, n, W), rtol=1e-12, atol=1e-12)
    if n == 2:
        np.testing.assert_allclose(ih2(X, W), _loop_ihn(X, 2, W), rtol=1e-12)


def test_gihn_with_a_bilinear_similarity_is_ihn():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 9, 2))
    W = rng.standard_normal((4, 4))
    bilinear = lambda q, k: np.einsum("nqi,ij,nsj->ns", q, W, k)  # noqa: E731
    np.testing.assert_allclose(gihn(X, 3, bilinear), ihn(X, 3, W), rtol=1e-12)
    distance = lambda q, k: -np.sum((q - k) ** 2, axis=-1)  # noqa: E731
    assert gihn(X, 3, distance).shape == (5, 2)


@pytest.mark.parametrize("n, zero, uniform", [(4, 0.2255, 0.1358), (2, 0.1043, 0.0357)])
def test_boolean_losses_by_exact_enumeration(n, zero, uniform):
    # Math note §8.1: all 2^10 boolean sequences, L = 10, W* = I.
    X = np.array(list(itertools.product([-1.0, 1.0], repeat=10)))[:, :, None]
    y = ihn(X, n)
    assert 0.5 * np.mean(y**2) == pytest.approx(zero, abs=5e-5)
    assert 0.5 * np.mean((y - uniform_attention_baseline(X, n)) ** 2) == pytest.approx(
        uniform, abs=5e-5)
    Xs, ys = make_induction_head_task("ihn", 4000, 10, n_gram=n, tokens="boolean",
                                      random_state=0)
    assert 0.5 * np.mean(ys**2) == pytest.approx(zero, abs=0.005)


def test_mixed_target_columns_and_initial_losses():
    X, y = make_induction_head_task("mixed", 20000, 40, random_state=0)
    np.testing.assert_allclose(y[:, 0], 0.5 * X[:, -3, 0])
    np.testing.assert_allclose(y[:, 1], 0.5 * ih2(X, np.array([[0.49**2]]))[:, 0])
    assert 0.5 * np.mean(y[:, 0] ** 2) == pytest.approx(0.124, abs=0.003)
    assert 0.5 * np.mean(y[:, 1] ** 2) == pytest.approx(3.4e-3, rel=0.06)


@pytest.mark.parametrize("lift, scale", [("sqrt", 3.0), ("linear", 9.0)])
def test_lifted_mixed_target_has_two_groups_of_d_columns(lift, scale):
    # Fig 10's lift: W* = w* I/√d (‖W*‖_F = w*) or w* I/d; the score matrix is W*ᵀW*.
    X, y = make_induction_head_task("mixed", 50, 12, 3, lift=lift, random_state=0)
    assert y.shape == (50, 6)
    np.testing.assert_allclose(y[:, :3], 0.5 * X[:, -3])
    np.testing.assert_allclose(y[:, 3:], 0.5 * ih2(X, np.eye(3) * 0.49**2 / scale))
    np.testing.assert_allclose(mixed_target(X[..., :1], lift=lift),
                               mixed_target(X[..., :1]))  # d = 1: the lift is irrelevant
    with pytest.raises(ValueError, match="lift"):
        mixed_target(X, lift="cube")


def test_generators_and_errors():
    X, y = make_induction_head_task("ihn", 10, 8, 2, n_gram=3, tokens="boolean", random_state=1)
    assert X.shape == (10, 8, 2) and y.shape == (10, 2)
    assert set(np.unique(X)) == {-1.0, 1.0}
    R = make_repeated_tokens(4, 5, 2, random_state=0)
    assert R.shape == (4, 10, 2)
    np.testing.assert_array_equal(R[:, :5], R[:, 5:])
    with pytest.raises(ValueError, match="seq_len"):
        make_induction_head_task("ihn", 5, 4, n_gram=4)
    with pytest.raises(ValueError, match="kind must be"):
        make_induction_head_task("trigram", 5, 10)
    with pytest.raises(ValueError, match="tokens must be"):
        make_induction_head_task("ih2", 5, 10, tokens="uniform")
    with pytest.raises(ValueError, match="callable similarity"):
        make_induction_head_task("gihn", 5, 10, n_gram=3)
