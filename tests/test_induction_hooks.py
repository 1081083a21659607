"""Named hook points, the activation cache and interventions, on the hand-built IH_2
transformer (Theorem 3.1: a previous-token head in layer 1, the induction head in layer 2) and
on the 6-parameter model."""

import numpy as np
import pytest
import torch

from skloop import InductionDynamicsRegressor, InductionHeadRegressor
from skloop._core import estimator as core_estimator
from skloop.datasets import make_induction_head_task
from skloop.induction import ActivationCache, InterventionResult, uniform_attention_baseline

X, Y = make_induction_head_task("ih2", 2000, 10, tokens="boolean", random_state=0)
UNIFORM = 0.5 * np.mean((Y - uniform_attention_baseline(X, 2)) ** 2)  # ≈ 0.037
ORACLE = InductionHeadRegressor.from_construction("ih2", p=20.0)


def _loss(prediction):
    return 0.5 * np.mean((prediction - Y) ** 2)


def test_the_cache_shows_the_previous_token_head_and_the_induction_head():
    cache = ORACLE.run_with_cache(X, names=lambda name: name.endswith("hook_pattern"))
    assert isinstance(cache, ActivationCache)
    assert list(cache) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    layer1 = cache["pattern", 0]  # TransformerLens's shorthand
    assert layer1.shape == (2000, 1, 10, 10)
    lag_one = layer1[:, 0, np.arange(1, 10), np.arange(9)]
    assert lag_one.min() > 0.95  # every query: all but e^{-20} on the previous token
    # Layer 2 at the last query: softmax over keys s of x_L · y_s = x_L · x_{s-1}, s >= 1.
    last = cache["pattern", 1][:, 0, -1]
    scores = X[:, -1, :1] * X[:, :-2, 0]  # key j = 1..L-2 reads y_j = x_{j-1}
    expected = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    np.testing.assert_allclose(last[:, 1:-1], expected, atol=1e-8)
    np.testing.assert_allclose(cache.predictions, ORACLE.predict(X))


def test_cache_names_shapes_and_errors():
    cache = ORACLE.run_with_cache(X[:5])  # every hook point
    assert list(cache) == ORACLE.hook_names()
    D, L = 2, 10
    assert cache.shapes["hook_embed"] == (5, L, D)
    assert cache.shapes["blocks.0.attn.hook_q"] == (5, 1, L, D)
    assert cache.shapes["blocks.1.attn.hook_result"] == (5, 1, L, D)
    assert cache.shapes["blocks.1.hook_resid_post"] == (5, L, D)
    # The layer-1 head writes y_s ≈ x_{s-1} into the second coordinate of the stream.
    np.testing.assert_allclose(cache["blocks.0.hook_resid_post"][:, 1:, 1], X[:5, :-1, 0],
                               atol=1e-8)
    np.testing.assert_allclose(cache["blocks.1.hook_resid_post"][:, -1] @ [1, 0],
                               ORACLE.predict(X[:5])[:, 0])
    with pytest.raises(ValueError, match="Unknown hook names"):
        ORACLE.run_with_cache(X[:5], names=["blocks.7.hook_resid_post"])
    with pytest.raises(KeyError, match="was not cached"):
        ORACLE.run_with_cache(X[:5], names="hook_embed")["blocks.0.attn.hook_q"]


def test_the_cache_is_chunked_within_the_budget(monkeypatch):
    monkeypatch.setattr(core_estimator, "PREDICT_BUDGET", 3000)  # a few sequences per chunk
    rows = []
    with ORACLE.hooks({"hook_embed": lambda activation, hook: rows.append(hook.rows)}):
        cache = ORACLE.run_with_cache(X[:50], names="blocks.0.attn.hook_pattern")
    assert len(rows) > 3 and rows[0] == slice(0, rows[0].stop)
    assert cache["pattern", 0].shape == (50, 1, 10, 10)
    np.testing.assert_array_equal(cache["pattern", 0], ORACLE.attention_maps(X[:50])[0])


def test_ablating_the_heads():
    previous = ORACLE.ablate_heads(X, Y, (0, 0))
    assert isinstance(previous, InterventionResult)
    assert previous.reference_loss < 1e-12
    # Without y_s the layer-2 scores vanish: uniform attention, the baseline itself.
    assert previous.loss >= UNIFORM * (1 - 1e-9)
    assert previous.loss_change == pytest.approx(previous.loss - previous.reference_loss)
    induction = ORACLE.ablate_heads(X, Y, [(1, 0)])
    assert induction.loss == pytest.approx(0.5 * np.mean(Y**2))  # the zero predictor
    both = ORACLE.ablate_heads(X, Y, ((0, 0), (1, 0)))
    np.testing.assert_array_equal(both.predictions, induction.predictions)
    mean = ORACLE.ablate_heads(X, Y, (0, 0), method="mean")
    assert mean.loss > 0.9 * UNIFORM
    with pytest.raises(ValueError, match="No head"):
        ORACLE.ablate_heads(X, Y, (0, 1))
    with pytest.raises(ValueError, match="method"):
        ORACLE.ablation_hooks((0, 0), method="resample")


def test_patching_the_head_back_from_the_clean_input_restores_the_loss():
    ablate = ORACLE.ablation_hooks((0, 0))
    patched = ORACLE.patch_activations(X, X, Y, heads=(0, 0), hooks=ablate)
    assert patched.reference_loss >= UNIFORM * (1 - 1e-9)  # the ablated run
    assert patched.loss < 1e-12 and patched.loss_change < -0.99 * UNIFORM
    np.testing.assert_allclose(patched.predictions, ORACLE.predict(X), atol=1e-12)
    # Patching the stream at the last position only: layer 2 keys need every position.
    last = ORACLE.patch_activations(X, X, Y, names="blocks.0.hook_resid_post",
                                    positions=-1, hooks=ablate)
    assert last.loss > 0.5 * UNIFORM
    # Corrupted input: another batch; patching its layer-1 stream from the clean one.
    other = make_induction_head_task("ih2", 2000, 10, tokens="boolean", random_state=5)[0]
    clean = ORACLE.patch_activations(other, X, Y, names="blocks.0.hook_resid_post")
    assert clean.loss < 1e-12 < clean.reference_loss
    with pytest.raises(ValueError, match="heads or the hook names"):
        ORACLE.patch_activations(X, X, Y)


def test_user_hooks_compose_and_leave_no_trace():
    seen = []

    def double(activation, hook):
        seen.append(hook.name)
        return 2 * activation

    with ORACLE.hooks({"blocks.1.hook_resid_post": double}):
        with ORACLE.hooks({"blocks.1.hook_resid_post": [double]}):
            np.testing.assert_allclose(ORACLE.predict(X[:4]), 4 * Y[:4], atol=1e-9)
        np.testing.assert_allclose(ORACLE.run_with_hooks(X[:4], {}), 2 * Y[:4], atol=1e-9)
    assert seen == ["blocks.1.hook_resid_post"] * 3
    assert ORACLE._active_hooks is None and ORACLE._module()._hooks is None
    with pytest.raises(ValueError, match="keep the activation's shape"):
        ORACLE.run_with_hooks(X[:4], {"hook_embed": lambda a, hook: a[:, :1]})
    assert ORACLE._active_hooks is None


def test_in_place_hooks_and_the_split_head_layout():
    model = InductionHeadRegressor(n_heads=2, d_model=4, head_dim=2, ffn_width=3,
                                   max_epochs=1, random_state=0).fit(X[:200], Y[:200])
    names = model.hook_names()
    assert "blocks.0.hook_mlp_out" in names
    shapes = model.run_with_cache(X[:3], names=names).shapes
    assert shapes["blocks.1.attn.hook_z"] == (3, 2, 10, 2)
    assert shapes["blocks.1.attn.hook_result"] == (3, 2, 10, 4)
    no_op = {name: (lambda a, hook: None) for name in names}
    np.testing.assert_allclose(model.run_with_hooks(X[:50], no_op), model.predict(X[:50]),
                               rtol=1e-5, atol=1e-6)

    def zero_in_place(activation, hook):
        activation[:, 1] = 0  # head 1, in place

    zeroed = model.run_with_hooks(X[:50], {"blocks.1.attn.hook_result": zero_in_place})
    ablated = model.ablate_heads(X[:50], Y[:50], (1, 1))
    np.testing.assert_allclose(zeroed, ablated.predictions, rtol=1e-6)


@pytest.mark.parametrize("stage1", ["oracle", "train"])
def test_the_six_parameter_model_has_the_hooks_where_the_concept_exists(stage1):
    Xm, ym = make_induction_head_task("mixed", 300, 12, random_state=0)
    model = InductionDynamicsRegressor(stage1=stage1, max_epochs=2, batch_size=50,
                                       random_state=0).fit(Xm, ym)
    names = model.hook_names()
    assert "blocks.0.attn.hook_q" not in names and "blocks.1.attn.hook_q" in names
    no_op = {name: (lambda a, hook: None) for name in names}
    np.testing.assert_allclose(model.run_with_hooks(Xm, no_op), model.predict(Xm), atol=1e-6)
    cache = model.run_with_cache(Xm[:20])
    for layer, pattern in enumerate(model.attention_maps(Xm[:20])):
        np.testing.assert_allclose(cache["pattern", layer], pattern, atol=1e-6)
    assert cache.shapes["blocks.1.attn.hook_result"] == (20, 2, 1, 2)
    # Head 0 of layer 2 is the 4-gram head: ablating it zeroes the G4 output only.
    ablated = model.ablate_heads(Xm, ym, (1, 0))
    assert np.all(ablated.predictions[:, 0] == 0)
    np.testing.assert_allclose(ablated.predictions[:, 1], model.predict(Xm)[:, 1], atol=1e-6)
    with model.hooks({"blocks.0.attn.hook_pattern": lambda a, hook: torch.zeros_like(a)}):
        assert np.all(model.hidden_states(Xm[:5])[1] == 0)  # y_s = 0 without layer 1
