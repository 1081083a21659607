"""
Pipelines and out-of-distribution real data
===========================================

A ``Pipeline`` can preprocess batches of matrices before the estimator (here: a random rotation
of every point, which leaves each matrix's spectrum unchanged). A model trained on synthetic
Task 1 then predicts principal components of real data matrices — digits, image patches and
wine samples shipped with scikit-learn — next to the exact answer.
"""

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skloop import ExactPCA, LoopedTransformerPCA
from skloop.datasets import (
    load_digit_matrices,
    load_image_patch_matrices,
    load_wine_matrices,
    make_sphere_matrices,
)
from skloop.metrics import angular_error

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
