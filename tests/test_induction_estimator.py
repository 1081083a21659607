"""InductionHeadRegressor: training on induction-head targets and the scikit-learn API."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skloop import InductionHeadRegressor
from skloop.datasets import make_induction_head_task, make_repeated_tokens
from skloop.induction import uniform_attention_baseline


@pytest.fixture(scope="module")
def boolean_ih2():
    X, y = make_induction_head_task("ih2", 10000, 10, tokens="boolean", random_state=0)
    X_test, y_test = make_induction_head_task("ih2", 4000, 10, tokens="boolean",
                                              random_state=1)
    # 2 500 Adam steps (lr 2e-3, batch 100): about 11 s on one CPU thread.
    model = InductionHeadRegressor(n_heads=2, d_model=2, max_epochs=25, random_state=0)
    return model.fit(X, y), X_test, y_test


def test_short_training_beats_the_uniform_attention_predictor(boolean_ih2):
    model, X_test, y_test = boolean_ih2
    loss = 0.5 * np.mean((model.predict(X_test) - y_test) ** 2)
    uniform = 0.5 * np.mean((y_test - uniform_attention_baseline(X_test, 2)) ** 2)  # ≈ 0.0357
    assert loss < 0.4 * uniform  # measured 0.0104 vs 0.0350
    assert model.score(X_test, y_test) > 0.8


def test_a_layer1_head_becomes_a_previous_token_head(boolean_ih2):
    model, X_test, _ = boolean_ih2
    score = model.previous_token_score(X_test[:500])
    chance = np.mean(1 / np.arange(1, 10))  # uniform attention over the i admissible keys
    assert score.shape == (2,)
    assert score.max() > 0.55 > 1.5 * chance  # measured 0.69 vs chance 0.31
    assert model.net_.module_.attention[0].slopes.detach().abs().max() > 0.5


def test_induction_score_and_probe(boolean_ih2):
    model, X_test, _ = boolean_ih2
    repeated = make_repeated_tokens(500, 5, tokens="boolean", random_state=2)
    scores = model.induction_score(repeated)
    assert scores["attention"].shape == (2,)
    assert scores["error_ratio"] < 0.9  # the earlier occurrence helps (measured 0.77)
    probe = model.probe(X_test[:1000], 2)
    assert probe["lag_mse"].shape == (2,)
    assert probe["lag_mse"][1] < 0.05  # lag 0: the residual stream keeps the current token
    assert probe["lag_mse"][0] < 0.6  # lag 1 partly written by the previous-token head
    assert 0 < probe["fvu"] < 1
    with pytest.raises(ValueError, match="repeated twice"):
        model.induction_score(X_test[:10])


def test_shapes_of_the_interpretability_outputs(boolean_ih2):
    model, X_test, _ = boolean_ih2
    hidden = model.hidden_states(X_test[:7])
    assert [h.shape for h in hidden] == [(7, 10, 2)] * 3
    maps = model.attention_maps(X_test[:7])
    assert [a.shape for a in maps] == [(7, 2, 10, 10)] * 2
    np.testing.assert_allclose(model.transform(X_test[:7]), hidden[1][:, -1])
    assert model.predict(X_test[:7]).shape == (7, 1)


def test_one_dimensional_y_reproducibility_pickle_and_clone():
    X, y = make_induction_head_task("ih2", 300, 8, random_state=0)
    params = dict(max_epochs=2, random_state=3)
    a = InductionHeadRegressor(**params).fit(X, y[:, 0])
    b = InductionHeadRegressor(**params).fit(X, y[:, 0])
    assert a.predict(X).shape == (300,)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict(X), a.predict(X))
    assert clone(a).get_params() == a.get_params()
    assert isinstance(a.score(X, y[:, 0]), float)


def test_grid_search_over_heads_width_and_ffn():
    X, y = make_induction_head_task("ih2", 400, 8, random_state=0)
    grid = GridSearchCV(InductionHeadRegressor(max_epochs=1, random_state=0),
                        {"n_heads": [1, 2], "d_model": [4, 8], "ffn_width": [0, 8]}, cv=2)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"n_heads", "d_model", "ffn_width"}


def test_mixed_target_has_two_outputs_and_float64_works():
    X, y = make_induction_head_task("mixed", 300, 12, random_state=0)
    model = InductionHeadRegressor(max_epochs=1, dtype="float64", random_state=0).fit(X, y)
    assert model.n_outputs_ == 2 and model.predict(X).dtype == np.float64


def test_construction_is_a_fitted_estimator():
    X, y = make_induction_head_task("ih2", 200, 10, tokens="boolean", random_state=0)
    model = InductionHeadRegressor.from_construction("ih2", p=20.0)
    assert model.score(X, y) > 0.999999
    assert model.previous_token_score(X)[0] > 0.999
    assert model.get_params()["key_start"] == 1
    with pytest.raises(ValueError, match="kind must be"):
        InductionHeadRegressor.from_construction("ih3")


BAD = [
    (dict(n_heads=0), ValueError, "'n_heads' parameter"),
    (dict(d_model=0), ValueError, "'d_model' parameter"),
    (dict(ffn_width=-1), ValueError, "'ffn_width' parameter"),
    (dict(lr=0.0), ValueError, "'lr' parameter"),
    (dict(causal="bidirectional"), ValueError, "'causal' parameter"),
    (dict(optimizer="rmsprop"), ValueError, "'optimizer' parameter"),
    (dict(residual=(True,)), ValueError, "residual must be"),
    (dict(init_scale=-1.0), ValueError, "'init_scale' parameter"),
    (dict(dtype="float16"), ValueError, "'dtype' parameter"),
]


@pytest.mark.parametrize("params, error, message", BAD, ids=[m for *_, m in BAD])
def test_bad_hyper_parameters(params, error, message):
    X, y = make_induction_head_task("ih2", 20, 6, random_state=0)
    with pytest.raises(error, match=message):
        InductionHeadRegressor(**params).fit(X, y)


def test_bad_data():
    X, y = make_induction_head_task("ih2", 20, 6, random_state=0)
    model = InductionHeadRegressor(max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match="y must have shape"):
        model.fit(X, y[:10])
    with pytest.raises(ValueError, match="NaN"):
        model.fit(X, np.full_like(y, np.nan))
    with pytest.raises(ValueError, match="equal length"):
        model.fit([X[0], X[1, :4]], y[:2])
    with pytest.raises(ValueError, match="3-D array"):
        model.fit(X[0], y)
    model.fit(X, y)
    with pytest.raises(ValueError, match="expecting 1 features"):
        model.predict(np.ones((2, 6, 3)))


def test_offline_history_is_evaluated_on_a_fixed_spread_out_subset():
    X, y = make_induction_head_task("ih2", 1500, 8, random_state=0)
    model = InductionHeadRegressor(max_epochs=2, random_state=0, dtype="float64").fit(X, y)
    subset = np.linspace(0, 1499, 1000).astype(int)
    expected = 0.5 * np.mean(np.sum((model.predict(X[subset]) - y[subset]) ** 2, axis=1))
    assert model.history_[-1, "loss"] == pytest.approx(expected, rel=1e-10)
    everything = 0.5 * np.mean(np.sum((model.predict(X) - y) ** 2, axis=1))
    assert model.history_[-1, "loss"] != pytest.approx(everything, rel=1e-10)
