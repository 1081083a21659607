"""
Quickstart: a looped transformer that learns the power method
=============================================================

``LoopedTransformerPCA`` trains the paper's looped linear-attention layer on batches of data
matrices and predicts the leading principal component of each one. Trained layerwise with layer
normalization, the layer becomes one shifted power iteration ``v ← (I + ρΣ)v / ‖·‖``; looping it
more at inference brings the prediction closer to the top eigenvector.
"""

import numpy as np

from skloop import ExactPCA, LoopedTransformerPCA, PowerIterationPCA
from skloop.datasets import make_spectrum_matrices, make_sphere_matrices
from skloop.metrics import angular_error

# %%
# Train on the paper's Task 1: matrices of 16 points drawn uniformly on the sphere in 8-D.
X_train = make_sphere_matrices(2000, n_points=16, n_features=8, random_state=0)
model = LoopedTransformerPCA(objective="layerwise", max_epochs=40, random_state=0).fit(X_train)
print(f"learned gain rho = {model.rho_:.1f}")

# %%
# Evaluate on Task 2 (a different spectrum: out of distribution) at several loop counts.
X_test = make_spectrum_matrices(500, n_points=16, n_features=8, random_state=1)
for loops in (1, 5, 10, 20, 40):
    model.set_params(inference_loops=loops)
    error = np.median(angular_error(X_test, model.predict(X_test)))
    power = PowerIterationPCA(loops, random_state=0).fit(X_test).predict(X_test)
    print(f"{loops:>2} loops: transformer {error:8.4f}°   power method "
          f"{np.median(angular_error(X_test, power)):8.4f}°")

# %%
# ``transform`` projects every point on its matrix's component; ``score`` is the mean cos² to
# the top eigenspace (1 is perfect), so the estimator drops into scikit-learn tooling.
print("transform:", model.transform(X_test).shape)
print("score:", round(model.score(X_test), 4), "exact:", ExactPCA().fit(X_test).score(X_test))
