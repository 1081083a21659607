"""Training dynamics of the 6-parameter model: ODE scaling laws, online SGD phases, Stage I."""

import numpy as np
import pytest
import torch

from skloop import InductionDynamicsRegressor, InductionHeadRegressor
from skloop.datasets import InductionTaskSampler, make_induction_head_task
from skloop.induction import detect_phases, plateau_time_theory, simulate_population
from skloop.induction._dynamics import population_gradient, population_losses


@pytest.mark.parametrize("point", [(0.3, 0.2, 0.1, 0.15, 0.4), (2.0, 0.55, 0.3, 0.25, 0.5)])
def test_closed_form_gradient_matches_autograd(point):
    params = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in point]
    kwargs = dict(seq_len=40, alpha=1.0, w_star=0.49)
    g4, ih2 = population_losses(*params, **kwargs)
    grads = torch.autograd.grad(g4 + ih2, params)
    loss_g4, loss_ih2, grad = population_gradient(*point, **kwargs)
    assert (loss_g4, loss_ih2) == pytest.approx((g4.item(), ih2.item()), rel=1e-12)
    np.testing.assert_allclose(grad, [g.item() for g in grads], rtol=1e-10)


@pytest.fixture(scope="module")
def ode():
    configs = {"L40": dict(), "L20": dict(seq_len=20), "L80": dict(seq_len=80),
               "s0.1": dict(init_scale=0.1), "s0.001": dict(init_scale=0.001),
               "a3": dict(alpha=3.0)}
    return {name: (simulate_population(**kw), kw) for name, kw in configs.items()}


def _phases(run):
    history, kwargs = run
    return detect_phases(history, alpha=kwargs.get("alpha", 1.0))


def test_ode_reproduces_the_calibrated_phase_times(ode):
    phases = _phases(ode["L40"])
    # Math note §8.4, each ±5%.
    for key, value in {"T_I": 210, "T_w": 1890, "T_half": 1990, "T_III": 2580}.items():
        assert phases[key] == pytest.approx(value, rel=0.05), key
    assert phases["plateau"] == pytest.approx(2.62e-4, rel=0.05)
    assert plateau_time_theory(40) == pytest.approx(2254, abs=1)


def test_phase_one_time_does_not_depend_on_L_or_init(ode):
    times = [_phases(ode[name])["T_I"] for name in ("L20", "L40", "L80", "s0.1", "s0.001")]
    assert max(times) - min(times) <= 10  # the recording grid is 5 time units


def test_plateau_scales_linearly_in_L(ode):
    half = {name: _phases(ode[name])["T_half"] for name in ("L20", "L40", "L80")}
    assert half["L80"] / half["L40"] == pytest.approx(2.0, abs=0.15)
    assert half["L20"] / half["L40"] == pytest.approx(0.5, abs=0.05)


def test_each_decade_of_smaller_init_adds_a_constant_time(ode):
    half = [_phases(ode[name])["T_half"] for name in ("s0.1", "L40", "s0.001")]
    steps = np.diff(half)
    assert steps[1] == pytest.approx(1300, rel=0.12)  # 1300 ± 150 (math note §8.4)
    assert steps[0] == pytest.approx(steps[1], rel=0.1)


def test_alpha_three_multiplies_the_plateau_by_about_four(ode):
    ratio = _phases(ode["a3"])["T_half"] / _phases(ode["L40"])["T_half"]
    assert ratio == pytest.approx(3.9, abs=0.2)


@pytest.mark.parametrize("name, alpha", [("L40", 1.0), ("a3", 3.0)])
def test_final_parameters_reach_the_global_minimiser(ode, name, alpha):
    history = ode[name][0]
    assert history["h"][-1] == pytest.approx(1 / (1 + alpha), abs=0.005)
    assert history["w_K"][-1] == pytest.approx(0.49, abs=0.005)
    assert history["w_Q"][-1] == pytest.approx(0.49, abs=0.005)
    assert history["g"][-1] == pytest.approx(alpha / (1 + alpha), abs=0.02)  # Phase IV: O(1/t)
    assert history["IH2"][-1] < 1e-10


def _online(tokens):
    sampler = InductionTaskSampler("mixed", seq_len=40, alpha=1.0, w_star=0.49, tokens=tokens)
    X_eval, y_eval = sampler(20000, random_state=123)
    # The Fig 3 setting at lr 0.5 (a faithful 5x compression of lr 0.1, math note §6), fresh
    # batches of 1000 every step, oracle Stage I: about 8 000 steps, 15-20 s on one CPU core.
    model = InductionDynamicsRegressor(
        training="layerwise", optimizer="sgd", lr=0.5,
        batch_size=1000, sampler=sampler, steps_per_epoch=100, max_epochs=80, random_state=0,
    )
    return model.fit(X_eval, y_eval)


@pytest.fixture(scope="module")
def online_runs():
    return {tokens: _online(tokens) for tokens in ("gaussian", "boolean")}


def test_online_sgd_shows_the_four_phases_at_the_calibrated_times(online_runs):
    model = online_runs["gaussian"]
    phases = model.phases_
    assert phases["T_half"] == pytest.approx(2300, rel=0.15)
    assert phases["T_III"] == pytest.approx(3200, rel=0.15)
    assert phases["plateau"] == pytest.approx(1.9e-4, rel=0.15)
    # Phase I ends long before the induction head emerges, and the loss then collapses.
    assert phases["T_I"] < 0.2 * phases["T_half"]
    assert phases["T_I"] < phases["T_w"] < phases["T_III"]
    final = model.history_[-1]
    assert final["IH2"] < 1e-6
    assert final["w_K"] == pytest.approx(0.49, abs=0.01) and final["h"] == pytest.approx(0.5,
                                                                                          abs=0.01)


def test_boolean_tokens_follow_the_gaussian_phases(online_runs):
    gaussian, boolean = (online_runs[t].phases_["T_half"] for t in ("gaussian", "boolean"))
    assert boolean == pytest.approx(gaussian, rel=0.10)


def test_stage_one_as_specified_leaves_a_small_slope_and_floors_the_four_gram():
    # Math note §5.7: t = 10^4 of Stage I from σ_init = 0.01 gives p̃ ≈ 0.94; Stage II then
    # floors L_G4 at ½ g*² e^{-2p̃} ≈ 0.019 instead of → 0.
    X, y = make_induction_head_task("mixed", 5000, 40, random_state=1)
    model = InductionDynamicsRegressor(
        training="layerwise", stage1="train",
        stage1_epochs=20, stage1_lr=5.0, optimizer="sgd", lr=0.5, batch_size=1000,
        sampler=InductionTaskSampler("mixed", seq_len=40), steps_per_epoch=100, max_epochs=20,
        random_state=0,
    ).fit(X, y)
    assert model.net_.module_.p_tilde.item() == pytest.approx(0.94, abs=0.05)
    assert model.history_[-1, "G4"] == pytest.approx(0.019, abs=0.003)
    stages = model.history_[:, "stage"]
    assert stages[:20] == [1] * 20 and set(stages[20:]) == {2}


def test_reparameterized_needs_the_mixed_target_shape():
    X, y = make_induction_head_task("ih2", 50, 10, 2, random_state=0)
    with pytest.raises(ValueError, match="2 n_features target columns"):
        InductionDynamicsRegressor(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="InductionDynamicsRegressor"):
        InductionHeadRegressor(architecture="reparameterized", max_epochs=1).fit(X, y)


@pytest.mark.parametrize("lift", ["sqrt", "linear"])
def test_lifted_model_at_its_fixed_point_is_the_mixed_target(lift):
    # Fig 10's lift, d = 6: g = g*, p → ∞, h = h*, W_K = W_Q = W* reproduce eq. (7) exactly.
    from skloop.induction._reparameterized import ReparameterizedInduction

    d = 6
    X, y = make_induction_head_task("mixed", 200, 12, d, lift=lift, random_state=0)
    module = ReparameterizedInduction(0.01, oracle_first_layer=True, n_features=d).double()
    assert module.w_K.norm().item() == pytest.approx(0.01) and module.w_K.shape == (d, d)
    W_star = torch.eye(d, dtype=torch.float64) * 0.49 / (np.sqrt(d) if lift == "sqrt" else d)
    with torch.no_grad():
        module.g.fill_(0.5), module.p.fill_(60.0), module.h.fill_(0.5)
        module.w_K.copy_(W_star), module.w_Q.copy_(W_star)
        np.testing.assert_allclose(module(torch.tensor(X)).numpy(), y, rtol=0, atol=1e-12)


def test_lifted_model_gd_stays_on_the_plateau_while_adam_escapes():
    # Fig 10 at test scale (d = 20, L = 20, σ_init = 0.01): the induction rate of GD is λ/d
    # (math note §5.4 with the lifted target), so within t ≈ 12 (mean-loss units 250) it
    # learns the 4-gram and the context mean but W_K, W_Q stay at σ_init; Adam's
    # coordinate-wise steps escape. GD's lr is 0.5/d: the paper's loss sums the d outputs.
    d = 20
    sampler = InductionTaskSampler("mixed", seq_len=20, n_features=d)
    X, y = sampler(2000, random_state=1)
    common = dict(training="layerwise", batch_size=200,
                  sampler=sampler, steps_per_epoch=50, max_epochs=10, random_state=0)
    gd = InductionDynamicsRegressor(optimizer="sgd", lr=0.5 / d, **common).fit(X, y)
    adam = InductionDynamicsRegressor(optimizer="adam", lr=2e-3, **common).fit(X, y)
    assert gd.stage_starts_[2]["w_K"] == pytest.approx(0.01)
    assert np.isnan(gd.phases_["T_half"]) and gd.history_[-1, "w_K"] < 0.011
    assert gd.history_[-1, "G4"] < 0.02 * gd.stage_starts_[2]["G4"]  # 4-gram learned
    plateau = gd.history_[-1, "IH2"]
    assert plateau == pytest.approx(gd.history_[-3, "IH2"], rel=1e-3)  # flat
    assert adam.history_[-1, "IH2"] < 0.3 * plateau  # below what W_K = 0 allows
    assert adam.history_[-1, "w_K"] == pytest.approx(0.49, rel=0.1)  # ‖W*‖_F = w*


@pytest.mark.parametrize("lift, scale", [("sqrt", 2.0), ("linear", 4.0)])
def test_adam_learns_the_lifted_similarity_of_either_lift(lift, scale):
    # d = 4: the learned W_Qᵀ W_K approaches W*ᵀ W* = (w*/scale)² I (W_K, W_Q themselves are
    # only determined up to an orthogonal factor); the phase markers use ‖W*‖_F = w* (sqrt)
    # or w*/√d (linear).
    d = 4
    sampler = InductionTaskSampler("mixed", seq_len=12, n_features=d, lift=lift)
    X, y = sampler(2000, random_state=1)
    model = InductionDynamicsRegressor(
        training="layerwise", optimizer="adam", lr=3e-3,
        batch_size=200, sampler=sampler, steps_per_epoch=50, max_epochs=16, random_state=0,
    ).fit(X, y)
    learned = model.net_.module_.similarity().detach().numpy()
    target = np.eye(d) * (0.49 / scale) ** 2
    assert np.linalg.norm(learned - target) < 0.1 * np.linalg.norm(target)
    assert model.history_[-1, "IH2"] < 1e-8 and np.isfinite(model.phases_["T_w"])
