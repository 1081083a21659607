"""
Grid-searching the loop depth, with a validation curve
======================================================

The number of loops is a hyper-parameter like any other: ``GridSearchCV`` and
``ValidationCurveDisplay`` work on 3-D batches of matrices with ``y`` omitted, scoring with the
estimator's mean cos² to the top eigenspace.
"""

import matplotlib

matplotlib.use("Agg")

from sklearn.model_selection import GridSearchCV, ValidationCurveDisplay  # noqa: E402

from skloop import LoopedTransformerPCA  # noqa: E402
from skloop.datasets import make_sphere_matrices  # noqa: E402

X = make_sphere_matrices(600, n_points=16, n_features=8, random_state=0)
model = LoopedTransformerPCA(objective="layerwise", max_epochs=20, random_state=0)

search = GridSearchCV(model, {"n_loops": [2, 5, 10, 20], "normalization": ["rms", None]}, cv=3)
search.fit(X)
print("best:", search.best_params_, "score:", round(search.best_score_, 4))

display = ValidationCurveDisplay.from_estimator(model, X, None, param_name="n_loops",
                                                param_range=[1, 3, 10, 30], cv=3)
for loops, score in zip([1, 3, 10, 30], display.test_scores.mean(axis=1), strict=True):
    print(f"n_loops={loops:>2}: mean cos² {score:.4f}")
