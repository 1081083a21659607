"""
Grid search on a Dask cluster
=============================

``GridSearchCV`` parallelises through joblib, and joblib's ``"dask"`` backend sends each fit
to a ``dask.distributed`` cluster: nothing in skloop is specific to it. Each fit seeds itself
from ``random_state``, so the cluster finds the same scores as a sequential run.

Point the client at a real cluster by setting ``SKLOOP_DASK_SCHEDULER`` to its scheduler
address (e.g. ``tcp://10.0.0.5:8786``, started with ``dask scheduler`` and ``dask worker``);
without it this script starts a small local cluster on the loopback interface. On GPU
workers, each fit picks the worker's CUDA device with ``device="auto"`` (one GPU per worker:
start workers with ``CUDA_VISIBLE_DEVICES`` set), which is how many GPUs are used for the small
models of a grid search.
"""

import os

from distributed import Client, LocalCluster
from joblib import parallel_backend
from sklearn.model_selection import GridSearchCV

from skloop import LoopedTransformerPCA
from skloop.datasets import make_sphere_matrices

X = make_sphere_matrices(1000, n_points=16, n_features=8, random_state=0)
search = GridSearchCV(
    LoopedTransformerPCA(objective="layerwise", max_epochs=10, random_state=0),
    {"inference_loops": [3, 10, 20], "normalization": ["rms", None]},
    cv=3,
    n_jobs=-1,
)

# %%
# Connect to the scheduler (or start a local one) and run the search on its workers.
address = os.environ.get("SKLOOP_DASK_SCHEDULER")
# The local stand-in keeps its workers in this process (processes=False), so the script also
# runs where spawning worker processes is not possible; a real cluster runs them anywhere.
cluster = None if address else LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                            dashboard_address=None)
with Client(address or cluster) as client:
    print(f"Dask workers: {len(client.scheduler_info()['workers'])}")
    with parallel_backend("dask"):
        search.fit(X)
if cluster is not None:
    cluster.close()

print("best parameters:", search.best_params_)
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                         strict=True):
    print(f"  {params}: mean cos² {score:.4f}")
