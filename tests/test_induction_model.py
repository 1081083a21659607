"""The ALiBi transformer against hand computations, and the hand-built constructions."""

import numpy as np
import pytest
import torch

from skloop import InductionHeadRegressor
from skloop.datasets import make_induction_head_task
from skloop.induction._model import ALiBiAttention, InductionTransformer, attention_mask


def _reference_attention(Z, W_Q, W_K, W_V, W_O, slopes, strict=True):
    """One attention layer, query by query, in numpy (paper eq. 2)."""
    B, L, D = Z.shape
    out = np.zeros((B, L, D))
    for b in range(B):
        for i in range(L):
            keys = range(i) if strict else range(i + 1)
            total = np.zeros(D)
            for h in range(len(slopes)):
                if not keys:
                    continue
                scores = np.array([(W_Q[h] @ Z[b, i]) @ (W_K[h] @ Z[b, j])
                                   - slopes[h] * (i - j - 1) for j in keys])
                weights = np.exp(scores - scores.max())
                weights /= weights.sum()
                total += sum(w * (W_V[h] @ Z[b, j]) for w, j in zip(weights, keys, strict=True))
            out[b, i] = W_O @ total
    return out


@pytest.mark.parametrize("causal", ["strict", "standard"])
def test_attention_matches_the_per_query_reference(causal):
    torch.manual_seed(0)
    layer = ALiBiAttention(4, 3).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    Z = torch.randn(2, 6, 4, dtype=torch.float64)
    out, weights = layer(Z, attention_mask(6, causal))
    params = [p.detach().numpy() for p in (layer.W_Q, layer.W_K, layer.W_V, layer.W_O,
                                           layer.slopes)]
    expected = _reference_attention(Z.numpy(), *params, strict=causal == "strict")
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    if causal == "strict":  # the first query has no key: zero output and weights, no NaN
        assert torch.all(out[:, 0] == 0) and torch.all(weights[:, :, 0] == 0)
    assert torch.isfinite(out).all()
    np.testing.assert_allclose(weights.sum(-1)[:, :, 1:].detach().numpy(), 1.0)


def test_split_heads_and_ffn_shapes_and_causality():
    model = InductionTransformer(2, 3, 8, n_heads=(4, 2), head_dim=2, ffn_width=16)
    X = torch.randn(5, 7, 2)
    assert model(X).shape == (5, 3)
    hidden, attention = model.run(X)
    assert [h.shape for h in hidden] == [(5, 7, 8)] * 3
    assert attention[0].shape == (5, 4, 7, 7)
    # Causality: changing the last token leaves earlier hidden states unchanged.
    X2 = X.clone()
    X2[:, -1] += 1.0
    np.testing.assert_allclose(model.run(X2)[0][-1][:, :-1].detach(),
                               hidden[-1][:, :-1].detach(), atol=1e-6)


def _ih2_error(p, L, key_start=None, tokens="boolean", d=1, W=None):
    X, y = make_induction_head_task("ih2", 2000, L, d, W_star=W, tokens=tokens, random_state=0)
    model = InductionHeadRegressor.from_construction("ih2", W_star=W, n_features=d, p=p)
    if key_start is not None:
        model.net_.module_.key_start = key_start
    return np.mean(np.abs(model.predict(X) - y))


@pytest.mark.parametrize("p, bound", [(5, 5e-3), (10, 5e-5), (20, 1e-6)])
def test_hand_built_ih2_error_falls_like_exp_minus_p_independently_of_L(p, bound):
    errors = [_ih2_error(p, L) for L in (10, 40)]
    assert max(errors) <= bound
    rng = np.random.default_rng(0)
    assert _ih2_error(p, 10, tokens="gaussian", d=4, W=rng.normal(0, 0.5, (4, 4))) <= bound
    if p == 5:  # e^{-p} scaling and L-independence: both lengths within a factor 2.5
        assert 0.4 < errors[1] / errors[0] < 2.5
        assert _ih2_error(10, 10) / errors[0] == pytest.approx(np.exp(-5), rel=0.5)


def test_without_the_key_start_mask_the_ih2_construction_is_not_exact():
    assert _ih2_error(20, 40, key_start=0) >= 5e-3


def test_hand_built_ihn_error_is_linear_in_eps():
    X, y = make_induction_head_task("ihn", 2000, 10, n_gram=4, tokens="boolean",
                                    random_state=0)
    errors = []
    for eps in (0.03, 0.01):
        model = InductionHeadRegressor.from_construction("ihn", n_gram=4, eps=eps)
        errors.append(np.mean(np.abs(model.predict(X) - y)))
    assert errors[1] <= 2e-2
    assert 2.0 <= errors[0] / errors[1] <= 3.5
