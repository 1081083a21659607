"""skorch and scikit-learn habits, written as their users write them: routed parameters,
optimizer classes, validation splits with skorch's own callbacks, warm starts and partial fits,
devices and dtypes."""

import random
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Checkpoint, EarlyStopping, EpochScoring, LRScheduler

from skloop import InductionDynamicsRegressor, InductionHeadRegressor, LoopedTransformerPCA
from skloop.datasets import InductionTaskSampler, make_induction_head_task, make_sphere_matrices
from skloop.pca import WeightSnapshots

X = make_sphere_matrices(300, n_points=12, n_features=4, random_state=0)
SEQ, TARGET = make_induction_head_task("ih2", 300, 8, random_state=0)


def _weights(model):
    return {k: v.clone() for k, v in model.net_.module_.state_dict().items()}


def _same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_routed_parameters_reach_the_optimizer_and_survive_clone():
    model = LoopedTransformerPCA(max_epochs=2, optimizer__momentum=0.9,
                                 optimizer__weight_decay=1e-3, random_state=0)
    assert model.get_params()["optimizer__momentum"] == 0.9
    assert clone(model).get_params() == model.get_params()
    model.fit(X)
    group = model.net_.optimizer_.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.9, 1e-3)
    plain = LoopedTransformerPCA(max_epochs=2, random_state=0).fit(X)
    assert not np.array_equal(model.W_pv_, plain.W_pv_)  # the momentum changed the training


def test_grid_search_over_weight_decay_and_over_lr_with_adamw():
    search = GridSearchCV(
        LoopedTransformerPCA(objective="layerwise", max_epochs=2, random_state=0),
        {"optimizer__weight_decay": [0.0, 0.5]}, cv=2,
    ).fit(X)
    assert search.best_params_["optimizer__weight_decay"] in (0.0, 0.5)
    assert search.best_estimator_.net_.optimizer_.param_groups[0]["weight_decay"] == (
        search.best_params_["optimizer__weight_decay"])
    search = GridSearchCV(
        InductionHeadRegressor(optimizer=torch.optim.AdamW, max_epochs=2, random_state=0),
        {"lr": [1e-3, 1e-2]}, cv=2,
    ).fit(SEQ, TARGET)
    best = search.best_estimator_.net_.optimizer_
    assert isinstance(best, torch.optim.AdamW)
    assert best.param_groups[0]["lr"] == search.best_params_["lr"]


def test_callbacks_are_addressed_by_name_as_in_skorch():
    model = LoopedTransformerPCA(max_epochs=6, callbacks=[EarlyStopping(monitor="train_loss")],
                                 random_state=0)
    model.set_params(callbacks__EarlyStopping__patience=1, callbacks__EarlyStopping__threshold=1)
    model.fit(X)
    stopper = dict(model.net_.callbacks_)["EarlyStopping"]
    assert stopper.patience == 1 and len(model.history_) < 6


def test_iterator_parameters_pass_through():
    model = LoopedTransformerPCA(max_epochs=1, iterator_train__shuffle=False, random_state=0)
    assert model.fit(X).net_.get_params_for("iterator_train")["shuffle"] is False


def test_unknown_keyword_arguments_are_refused_at_fit():
    with pytest.raises(TypeError, match="unexpected parameters.*'lrr'"):
        LoopedTransformerPCA(lrr=0.1).fit(X)
    with pytest.raises(TypeError, match="module__n"):
        InductionHeadRegressor(module__n=3).fit(SEQ, TARGET)


def test_a_split_holds_out_whole_matrices_and_records_validation_metrics():
    model = LoopedTransformerPCA(objective="layerwise", train_split=0.2, max_epochs=3,
                                 random_state=0).fit(X)
    last = model.history_[-1]
    assert sum(b.get("valid_batch_size", 0) for b in last["batches"]) == 60  # 20% of 300
    assert sum(b.get("train_batch_size", 0) for b in last["batches"]) == 240
    assert last["valid_loss"] > 0 and 0 < last["valid_angular_error"] < 90
    again = LoopedTransformerPCA(objective="layerwise", train_split=0.2, max_epochs=3,
                                 random_state=0).fit(X)
    assert again.history_[:, "valid_loss"] == model.history_[:, "valid_loss"]  # seeded split


def test_early_stopping_and_checkpoint_restore_the_best_epoch(tmp_path):
    snapshots = WeightSnapshots()
    model = LoopedTransformerPCA(
        objective="end_to_end", n_loops=3, train_split=0.3, max_epochs=60, lr=8.0,
        callbacks=[snapshots, EarlyStopping(patience=3, threshold=0),
                   Checkpoint(dirname=str(tmp_path), load_best=True)],
        random_state=0,
    ).fit(X)
    trained = len(snapshots.snapshots_)
    assert trained < 60  # stopped early
    # skorch's Checkpoint(load_best=True) restores the best epoch's weights and the history
    # saved with them: it ends at the best epoch, a few epochs before training stopped.
    best = len(model.history_)
    assert model.history_[-1, "valid_loss_best"] and best < trained
    np.testing.assert_array_equal(model.W_pv_, snapshots.snapshots_[best - 1]["W_pv"])
    np.testing.assert_array_equal(model.W_kq_, snapshots.snapshots_[best - 1]["W_kq"])
    assert not np.array_equal(model.W_pv_, snapshots.snapshots_[-1]["W_pv"])


def test_lr_scheduler_and_epoch_scoring_work_with_their_defaults():
    model = InductionHeadRegressor(
        train_split=0.25, max_epochs=3, lr=1e-2,
        callbacks=[LRScheduler("StepLR", step_size=1, gamma=0.5), EpochScoring("r2")],
        random_state=0,
    ).fit(SEQ, TARGET)
    assert len(model.history_[:, "r2"]) == 3
    assert model.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**3)
    # EpochScoring(None) reports the net's score: R² here, the mean cos² for the PCA nets.
    scored = InductionHeadRegressor(train_split=0.25, max_epochs=2, random_state=0, callbacks=[
        EpochScoring(None, lower_is_better=False)]).fit(SEQ, TARGET)
    assert np.isfinite(scored.history_[-1, "score"]) and scored.history_[-1, "score"] <= 1
    looped = LoopedTransformerPCA(max_epochs=2, train_split=0.2, random_state=0, callbacks=[
        EpochScoring(None, lower_is_better=False, name="valid_cos2")]).fit(X)
    assert 0 < looped.history_[-1, "valid_cos2"] <= 1
    # The PCA nets take scoring callables (net, X, y); y holds the subspace projectors.
    seen = []
    LoopedTransformerPCA(objective="end_to_end", n_loops=3, max_epochs=1, train_split=0.2,
                         random_state=0, callbacks=[
        EpochScoring(lambda net, X_valid, y_valid: seen.append(y_valid.shape) or 0.0,
                     name="custom")]).fit(X)
    assert seen == [(60, 4, 4)]


def test_a_callback_needing_a_split_without_one_says_so():
    with pytest.raises(ValueError, match="no validation split .* monitor 'train_loss'"):
        LoopedTransformerPCA(max_epochs=2, callbacks=[EarlyStopping()], random_state=0).fit(X)


@pytest.mark.parametrize("estimator, data", [
    (LoopedTransformerPCA(max_epochs=1, random_state=0), (X, None)),
    (LoopedTransformerPCA(max_epochs=1, online=True, random_state=0), (X, None)),
    (InductionHeadRegressor(max_epochs=1, random_state=0), (SEQ, TARGET)),
    (InductionDynamicsRegressor(max_epochs=1, batch_size=50, steps_per_epoch=3,
                                sampler=InductionTaskSampler("mixed", seq_len=12),
                                random_state=0),
     make_induction_head_task("mixed", 100, 12, random_state=1)),
], ids=["looped", "looped-online", "induction", "dynamics-online"])
def test_partial_fit_twice_is_a_fit_of_two_epochs(estimator, data):
    twice = clone(estimator).partial_fit(*data).partial_fit(*data)
    once = clone(estimator).set_params(max_epochs=2).fit(*data)
    assert twice.history_[:, "train_loss"] == once.history_[:, "train_loss"]
    assert _same_weights(_weights(twice), _weights(once))


def test_warm_start_continues_the_history_and_the_weights():
    model = InductionHeadRegressor(max_epochs=2, random_state=0).fit(SEQ, TARGET)
    first = _weights(model)
    model.set_params(warm_start=True).fit(SEQ, TARGET)
    assert len(model.history_) == 4
    fresh = InductionHeadRegressor(max_epochs=2, random_state=0).fit(SEQ, TARGET)
    assert _same_weights(first, _weights(fresh))
    assert not _same_weights(_weights(model), _weights(fresh))
    with pytest.raises(ValueError, match="d_model=16 .*fitted with None"):
        model.set_params(d_model=16).fit(SEQ, TARGET)
    assert len(model.history_) == 4


def test_no_global_random_state_is_touched_python_random_included():
    python_state = random.getstate()
    for seed in (0, None):
        LoopedTransformerPCA(max_epochs=1, online=True, random_state=seed).fit(X).predict(X)
        InductionHeadRegressor(max_epochs=1, random_state=seed).fit(SEQ, TARGET).predict(SEQ)
    InductionHeadRegressor.from_construction("ihn", n_gram=3)
    assert random.getstate() == python_state


def test_devices_and_dtypes():
    unavailable = "mps" if not torch.backends.mps.is_available() else None
    if not torch.cuda.is_available():
        unavailable = "cuda:0"
    if unavailable is not None:
        with pytest.raises(ValueError, match="not available on this machine; available: 'cpu'"):
            LoopedTransformerPCA(max_epochs=1, device=unavailable).fit(X)
    with pytest.raises(ValueError, match="not a torch device"):
        LoopedTransformerPCA(max_epochs=1, device="gpu0").fit(X)
    model = LoopedTransformerPCA(max_epochs=1, device=torch.device("cpu"), dtype=np.float64,
                                 random_state=0).fit(X)
    assert model.net_.module_.W_pv.dtype == torch.float64
    same = LoopedTransformerPCA(max_epochs=1, dtype="float64", random_state=0).fit(X)
    np.testing.assert_array_equal(model.predict(X), same.predict(X))
    assert InductionHeadRegressor(max_epochs=1, dtype=torch.float64).fit(
        SEQ, TARGET).net_.module_.readout.weight.dtype == torch.float64
    with pytest.raises(ValueError, match="'dtype' parameter"):
        LoopedTransformerPCA(max_epochs=1, dtype=np.float16).fit(X)


def test_save_keeps_the_optimizer_class_and_names_what_it_drops(tmp_path):
    model = InductionHeadRegressor(optimizer=torch.optim.AdamW, optimizer__weight_decay=0.1,
                                   max_epochs=1, callbacks=[EpochScoring("r2")],
                                   random_state=0).fit(SEQ, TARGET)
    with pytest.warns(UserWarning, match=r"but \['callbacks'\]"):
        path = model.save(tmp_path / "m.skl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = InductionHeadRegressor.load(path)
    assert loaded.optimizer is torch.optim.AdamW
    assert loaded.get_params()["optimizer__weight_decay"] == 0.1
    np.testing.assert_array_equal(loaded.predict(SEQ), model.predict(SEQ))
