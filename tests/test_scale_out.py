"""Determinism across repeated fits and parallel grid searches, and Dask scale-out."""

import time

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.model_selection import GridSearchCV

from skloop import InductionHeadRegressor, LoopedTransformerPCA
from skloop.datasets import make_induction_head_task, make_sphere_matrices

X = make_sphere_matrices(256, n_points=12, n_features=4, random_state=0)
GRID = {"n_loops": [1, 3], "normalization": ["rms", None]}


def _search(**kwargs):
    return GridSearchCV(LoopedTransformerPCA(max_epochs=3, random_state=0), GRID, cv=2,
                        **kwargs)


def test_same_seed_same_history_and_predictions_for_both_estimators():
    a = LoopedTransformerPCA(max_epochs=3, random_state=5).fit(X)
    b = LoopedTransformerPCA(max_epochs=3, random_state=5).fit(X)
    assert a.history_[:, "train_loss"] == b.history_[:, "train_loss"]
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    S, y = make_induction_head_task("ih2", 300, 8, random_state=0)
    c = InductionHeadRegressor(max_epochs=2, random_state=5).fit(S, y)
    d = InductionHeadRegressor(max_epochs=2, random_state=5).fit(S, y)
    assert c.history_[:, "train_loss"] == d.history_[:, "train_loss"]
    np.testing.assert_array_equal(c.predict(S), d.predict(S))
    e = InductionHeadRegressor(max_epochs=2, random_state=6).fit(S, y)
    assert e.history_[:, "train_loss"] != c.history_[:, "train_loss"]


def test_grid_search_scores_do_not_depend_on_n_jobs():
    sequential = _search(n_jobs=1).fit(X)
    parallel = _search(n_jobs=2).fit(X)
    np.testing.assert_array_equal(sequential.cv_results_["mean_test_score"],
                                  parallel.cv_results_["mean_test_score"])
    assert sequential.best_params_ == parallel.best_params_


def test_grid_search_on_a_local_dask_cluster_matches_the_sequential_run():
    distributed = pytest.importorskip("distributed")
    start = time.perf_counter()
    sequential = _search().fit(X)
    sequential_time = time.perf_counter() - start
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        start = time.perf_counter()
        with parallel_backend("dask"):
            on_dask = _search(n_jobs=-1).fit(X)
        dask_time = time.perf_counter() - start
    print(f"grid search: sequential {sequential_time:.1f} s, Dask (2 workers) {dask_time:.1f} s")
    assert on_dask.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  sequential.cv_results_["mean_test_score"])
