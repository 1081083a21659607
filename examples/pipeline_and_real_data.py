"""
Pipelines and out-of-distribution real data
===========================================

A ``Pipeline`` can preprocess batches of matrices before the estimator (here: a random rotation
of every point, which leaves each matrix's spectrum unchanged). A model trained on synthetic
Task 1 then predicts principal components of real data matrices — digits, image patches and
wine samples shipped with scikit-learn — next to the exact answer. ``PerMatrix`` puts any
scikit-learn transformer (here ``StandardScaler``) in front of the estimators: it transforms the
points of every matrix and returns a batch of matrices again.
"""

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skloop import ExactPCA, LoopedTransformerPCA
from skloop.datasets import (
    load_digit_matrices,
    load_image_patch_matrices,
    load_wine_matrices,
    make_sphere_matrices,
)
from skloop.metrics import angular_error
from skloop.preprocessing import PerMatrix

rotation = np.linalg.qr(np.random.default_rng(0).standard_normal((8, 8)))[0]
pipe = make_pipeline(
    FunctionTransformer(lambda X: X @ rotation),
    LoopedTransformerPCA(objective="layerwise", inference_loops=30, max_epochs=30,
                         random_state=0),
)
pipe.fit(make_sphere_matrices(2000, n_points=16, n_features=8, random_state=0))

for name, X in {
    "digits": load_digit_matrices(300, random_state=1),
    "image patches": load_image_patch_matrices(300, random_state=1),
    "wine (8 of 13 features)": load_wine_matrices(300, n_features=8, random_state=1),
}.items():
    rotated = X @ rotation
    errors = angular_error(rotated, pipe.predict(X))
    exact = angular_error(rotated, ExactPCA().fit(rotated).predict(rotated))
    print(f"{name:<24} transformer median {np.median(errors):.3f}°  exact {np.median(exact):.1e}°")

# Proline's scale dominates the raw wine features: the exact leading component lies close to its
# axis. Standardizing the features (fitted once on all points of all matrices) spreads it over
# more features; the transformer trained on Task 1 still follows the exact answer.
wine = load_wine_matrices(300, n_features=8, random_state=1)
standardize = PerMatrix(StandardScaler(), fit_on="all").fit(wine)
for name, X in {"wine": wine, "wine, standardized": standardize.transform(wine)}.items():
    on_axis = np.abs(ExactPCA().fit(X).predict(X)).max(axis=1)  # 1: on one feature's axis
    errors = angular_error(X, pipe[-1].predict(X))
    print(f"{name:<24} transformer median {np.median(errors):.3f}°  "
          f"exact component's largest coordinate {np.median(on_axis):.2f}")
exact = make_pipeline(PerMatrix(StandardScaler(), fit_on="all"), ExactPCA()).fit(wine)
print(f"standardize + ExactPCA pipeline, score {exact.score(wine):.3f}")
