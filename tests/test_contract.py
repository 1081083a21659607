"""The contract every estimator honours, run on all five: fit/predict/score/transform, clone,
pickle, save/load, seeding, untouched global RNGs, atomic fit, parameters re-validated at
inference, and parameters of another configuration refused.

Each failure kind of an atomic fit (bad data, an exception inside training, divergence, an
interruption) is checked to leave a previously fitted estimator bit-identical.
"""

import os
import pickle
import signal

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback

from skloop import (
    ExactPCA,
    InductionDynamicsRegressor,
    InductionHeadRegressor,
    LoopedTransformerPCA,
    PowerIterationPCA,
)
from skloop._core.params import InvalidParameterError
from skloop.datasets import make_induction_head_task, make_sphere_matrices

MATRICES = make_sphere_matrices(120, n_points=10, n_features=4, random_state=0)
SEQUENCES = make_induction_head_task("ih2", 120, 8, random_state=0)
MIXED = make_induction_head_task("mixed", 200, 12, random_state=0)

ESTIMATORS = {
    "exact": (ExactPCA(), (MATRICES, None)),
    "power": (PowerIterationPCA(n_iter=5, random_state=0), (MATRICES, None)),
    "looped": (LoopedTransformerPCA(max_epochs=2, random_state=0), (MATRICES, None)),
    "induction": (InductionHeadRegressor(max_epochs=1, random_state=0), SEQUENCES),
    "dynamics": (InductionDynamicsRegressor(max_epochs=2, batch_size=50, random_state=0), MIXED),
}
TORCH = ["looped", "induction", "dynamics"]


def _fitted(name, **params):
    estimator, (X, y) = ESTIMATORS[name]
    if "random_state" not in estimator.get_params():  # ExactPCA: nothing random
        params.pop("random_state", None)
    return clone(estimator).set_params(**params).fit(X, y), X, y


def _snapshot(model, X):
    """Everything a user can observe of a fitted model: predictions, fitted scalars, history."""
    state = {"predict": model.predict(X), "n_features_in_": model.n_features_in_}
    if hasattr(model, "history_"):
        # Wall-clock durations aside, the history is deterministic.
        state["history"] = [{k: v for k, v in row.items() if k != "dur"}
                            for row in model.history_.to_list()]
        state["weights"] = {k: v.clone() for k, v in model.net_.module_.state_dict().items()}
    return state


def _assert_same(before, after):
    np.testing.assert_array_equal(after["predict"], before["predict"])
    assert after["n_features_in_"] == before["n_features_in_"]
    if "history" in before:
        assert after["history"] == before["history"]
        for key, value in before["weights"].items():
            assert torch.equal(after["weights"][key], value)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_predict_score_transform_clone_pickle(name):
    model, X, y = _fitted(name)
    prediction = model.predict(X)
    assert np.all(np.isfinite(prediction)) and len(prediction) == len(X)
    assert np.isfinite(model.score(X, y))
    assert len(model.transform(X)) == len(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X), prediction)
    assert clone(model).get_params() == model.get_params()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_save_load_is_bit_identical(name, tmp_path):
    model, X, _ = _fitted(name)
    loaded = type(model).load(model.save(tmp_path / "model.skloop"))
    _assert_same(_snapshot(model, X), _snapshot(loaded, X))
    for attribute in ("phases_", "stage_starts_"):
        if hasattr(model, attribute):
            assert getattr(loaded, attribute).keys() == getattr(model, attribute).keys()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_random_state_makes_fits_identical_and_predict_is_deterministic(name):
    first, X, _ = _fitted(name)
    second, _, _ = _fitted(name)
    _assert_same(_snapshot(first, X), _snapshot(second, X))
    unseeded, _, _ = _fitted(name, random_state=None)
    np.testing.assert_array_equal(unseeded.predict(X), unseeded.predict(X))


@pytest.mark.parametrize("random_state", [0, None])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_global_random_states_are_left_alone(name, random_state):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002 - the global state itself
    model, X, _ = _fitted(name, random_state=random_state)
    model.predict(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002 - the global state itself
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]


def _bad_data(name, X, y):
    X = np.array(X, dtype=float)
    X[0, 0, 0] = np.nan
    return X, y


@pytest.mark.parametrize("name", ESTIMATORS)
def test_a_fit_on_bad_data_leaves_the_fitted_model_as_it_was(name):
    model, X, y = _fitted(name)
    before = _snapshot(model, X)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(*_bad_data(name, X, y))
    _assert_same(before, _snapshot(model, X))


def test_a_failed_refit_with_another_feature_count_keeps_the_old_one():
    # The reported case: n_features_in_ used to be set before the fit could fail.
    X3 = make_sphere_matrices(20, n_points=6, n_features=3, random_state=0)
    X5 = make_sphere_matrices(20, n_points=6, n_features=5, random_state=0)
    X5[0, 0] = 0.0
    for model in (ExactPCA().fit(X3), LoopedTransformerPCA(max_epochs=1, random_state=0).fit(X3)):
        before = _snapshot(model, X3)
        with pytest.raises(ValueError, match="zero-norm"):
            model.fit(X5)
        _assert_same(before, _snapshot(model, X3))
    model = LoopedTransformerPCA(max_epochs=1, random_state=0).fit(X3)
    with pytest.raises(ValueError, match="n_points >= n_features"):
        model.fit(make_sphere_matrices(20, n_points=4, n_features=5, random_state=0))
    assert model.n_features_in_ == 3


@pytest.mark.parametrize("name", ESTIMATORS)
def test_an_exception_inside_fit_leaves_the_fitted_model_as_it_was(name, monkeypatch):
    # The fit itself completes on the staged copy, then something fails before it returns.
    model, X, y = _fitted(name)
    before = _snapshot(model, X)
    original = type(model)._fit

    def failing(self, X, y=None):
        original(self, X, y)
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(model), "_fit", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        model.set_params(n_components=2).fit(X, y) if name == "exact" else model.set_params(
            random_state=1).fit(X, y)
    monkeypatch.undo()
    model.set_params(**ESTIMATORS[name][0].get_params())
    _assert_same(before, _snapshot(model, X))


class _Raise(Callback):
    """Raises ``error`` at the given skorch event."""

    def __init__(self, error, event="on_batch_end"):
        self.error = error
        self.event = event

    def on_batch_end(self, net, **kwargs):
        if self.event == "on_batch_end":
            raise self.error

    def on_epoch_end(self, net, **kwargs):
        if self.event == "on_epoch_end":
            raise self.error


class _CtrlC(Callback):
    """Sends this process a SIGINT (Ctrl-C) in the middle of the second epoch."""

    def on_batch_end(self, net, **kwargs):
        if len(net.history) == 2:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("name", TORCH)
@pytest.mark.parametrize(
    "callback, expected",
    [(_Raise(RuntimeError("callback failed")), RuntimeError), (_CtrlC(), KeyboardInterrupt)],
    ids=["callback-exception", "ctrl-c"],
)
def test_a_training_failure_or_interruption_leaves_the_fitted_model_as_it_was(
    name, callback, expected
):
    model, X, y = _fitted(name)
    before = _snapshot(model, X)
    model.set_params(callbacks=[callback], random_state=1, max_epochs=3)
    with pytest.raises(expected):
        model.fit(X, y)
    model.set_params(**ESTIMATORS[name][0].get_params())
    _assert_same(before, _snapshot(model, X))


def test_a_failed_refit_leaves_the_callbacks_of_the_fitted_model_as_they_were():
    from skloop.pca import WeightSnapshots

    snapshots = WeightSnapshots()
    model = LoopedTransformerPCA(max_epochs=3, callbacks=[snapshots], random_state=0)
    model.fit(MATRICES)
    kept = [s["epoch"] for s in snapshots.snapshots_]
    model.set_params(callbacks=[snapshots, _Raise(RuntimeError("late"), "on_epoch_end")])
    with pytest.raises(RuntimeError, match="late"):
        model.fit(MATRICES)
    assert [s["epoch"] for s in snapshots.snapshots_] == kept == [1, 2, 3]


DIVERGING = {  # with LN the looped model's loss is bounded: divergence needs the no-LN model
    "looped": dict(normalization=None, objective="layerwise", target="unnormalized", lr=1e6,
                   max_epochs=8),
    "induction": dict(lr=1e30, optimizer="sgd", max_epochs=3),
    "dynamics": dict(lr=1e30, max_epochs=3),
}


@pytest.mark.parametrize("name", TORCH)
def test_divergence_leaves_the_fitted_model_as_it_was(name):
    model, X, y = _fitted(name)
    before = _snapshot(model, X)
    with pytest.raises(FloatingPointError, match="diverged"):
        model.set_params(**DIVERGING[name]).fit(X, y)
    model.set_params(**ESTIMATORS[name][0].get_params())
    _assert_same(before, _snapshot(model, X))


@pytest.mark.parametrize("event", ["on_epoch_end", "on_batch_end"])
@pytest.mark.parametrize("name", TORCH)
def test_a_callback_raising_keyboard_interrupt_stops_training_as_in_skorch(name, event):
    # skorch's EarlyStopping stops this way: training ends normally, the model is kept.
    estimator, (X, y) = ESTIMATORS[name]
    model = clone(estimator).set_params(
        max_epochs=5, callbacks=[_Raise(KeyboardInterrupt(), event)]).fit(X, y)
    assert len(model.history_) == 1
    assert np.all(np.isfinite(model.predict(X)))


# For every parameter read at inference: an invalid value set after fit raises there.
INVALID_AT_INFERENCE = {
    "exact": [("n_components", 0), ("n_components", 5), ("center", "yes")],
    "power": [("n_iter", 0), ("shift", np.nan), ("method", "svd"), ("normalize_points", 1)],
    "looped": [("inference_loops", 0), ("n_loops", 0), ("n_components", 9),
               ("n_threads", 0), ("deflation", "both"), ("random_state", "seed")],
    "induction": [("n_threads", -1)],
    "dynamics": [("n_threads", 1.5)],
}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_invalid_parameters_set_after_fit_raise_at_inference(name):
    model, X, y = _fitted(name)
    before = model.predict(X)
    for param, value in INVALID_AT_INFERENCE[name]:
        good = model.get_params()[param]
        model.set_params(**{param: value})
        for method in ("predict", "score"):
            with pytest.raises(ValueError, match=param):
                getattr(model, method)(X, y) if method == "score" else model.predict(X)
        model.set_params(**{param: good})
    np.testing.assert_array_equal(model.predict(X), before)


@pytest.mark.parametrize(
    "name, params",
    [
        ("exact", dict(n_components=2)),
        ("exact", dict(center=True)),
        ("power", dict(n_iter=9, shift=2.0)),
        ("power", dict(n_components=2, method="matrix_free")),
        ("looped", dict(inference_loops=7)),
        ("looped", dict(n_components=2, deflation="points")),
    ],
)
def test_inference_parameters_set_after_fit_equal_a_fresh_fit(name, params):
    model, X, _ = _fitted(name)
    fresh, _, _ = _fitted(name, **params)
    np.testing.assert_array_equal(model.set_params(**params).predict(X), fresh.predict(X))


def test_training_parameters_changed_after_fit_keep_the_fitted_model():
    # dtype, device and the architecture are fixed by the fit: inference uses the fitted ones.
    model, X, _ = _fitted("looped")
    before = model.predict(X)
    np.testing.assert_array_equal(model.set_params(dtype="float64").predict(X), before)
    model, S, _ = _fitted("induction")
    before = model.predict(S)
    np.testing.assert_array_equal(model.set_params(dtype="float64", d_model=99).predict(S),
                                  before)


# Each configuration with a non-default value of a parameter it does not use.
INAPPLICABLE = [
    (LoopedTransformerPCA, dict(objective="end_to_end", target="unnormalized"), "target"),
    (LoopedTransformerPCA, dict(objective="layerwise", normalize_output_in_loss=False),
     "normalize_output_in_loss"),
    (LoopedTransformerPCA, dict(init="paper", init_scale=0.1), "init_scale"),
    (LoopedTransformerPCA, dict(init="paper_swap", init_scale=0.1), "init_scale"),
    (LoopedTransformerPCA, dict(n_components=1, deflation="points"), "deflation"),
    (LoopedTransformerPCA, dict(init="paper", mask_query=True), "mask_query"),
    (LoopedTransformerPCA, dict(init="random", parametrization="scalar", mask_query=True),
     "mask_query"),
    (LoopedTransformerPCA, dict(normalization="rms", normalize_output_in_loss=False),
     "normalize_output_in_loss"),
    (LoopedTransformerPCA, dict(objective="layerwise", inference_loops=5, n_loops=4),
     "n_loops"),
    (InductionDynamicsRegressor, dict(stage1="oracle", training="joint"), "training"),
    (InductionHeadRegressor, dict(n_heads=(2, 2), n_layers=3), "n_layers"),
    (InductionHeadRegressor, dict(sampler=None, steps_per_epoch=7), "steps_per_epoch"),
    (InductionDynamicsRegressor, dict(training="joint", stage1="train", stage1_epochs=3),
     "stage1_epochs"),
    (InductionDynamicsRegressor, dict(training="layerwise", stage1="oracle", stage1_lr=1.0),
     "stage1_lr"),
    (InductionDynamicsRegressor, dict(stage1="oracle", stage1_target_p=2.0), "stage1_target_p"),
    (InductionDynamicsRegressor, dict(sampler=None, steps_per_epoch=7), "steps_per_epoch"),
]


@pytest.mark.parametrize("cls, params, name", INAPPLICABLE, ids=[n for *_, n in INAPPLICABLE])
def test_a_parameter_of_another_configuration_is_refused(cls, params, name):
    data = {LoopedTransformerPCA: (MATRICES, None), InductionHeadRegressor: SEQUENCES,
            InductionDynamicsRegressor: MIXED}[cls]
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter .* only applies when"):
        cls(max_epochs=1, **params).fit(*data)


def test_every_applicability_rule_is_tested():
    covered = {(cls, name) for cls, _, name in INAPPLICABLE}
    for cls in (ExactPCA, PowerIterationPCA, LoopedTransformerPCA, InductionHeadRegressor,
                InductionDynamicsRegressor):
        for name in getattr(cls, "_parameter_applies", {}):
            assert (cls, name) in covered, (cls.__name__, name)


def test_the_six_parameter_model_is_its_own_estimator():
    with pytest.raises(ValueError, match="InductionDynamicsRegressor"):
        InductionHeadRegressor(architecture="reparameterized").fit(*MIXED)
    model, X, y = _fitted("dynamics")
    assert model.predict(X).shape == y.shape
    layer1, layer2 = model.attention_maps(X[:5])
    assert layer1.shape == (5, 1, 12, 12) and layer2.shape == (5, 2, 1, 12)
    np.testing.assert_allclose(layer2.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.transform(X), X[:, -2], rtol=1e-6)  # oracle: x_{L-1}
    assert set(model.phases_) >= {"T_I", "T_half", "plateau"}
    assert {"p_tilde", "g", "h", "G4", "IH2"} <= set(model.history_[-1])
