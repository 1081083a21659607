"""
What algorithm did it learn?
============================

The structure report reads the learned weights against the power-method pattern, the loop
trajectory compares every loop with the power method, the contraction factor compares the
predicted per-loop rate ``(1+ρλ2)/(1+ρλ1)`` with the measured one, and ``project_structure``
keeps only the isotropic part, which removes the finite-sample error floor.
"""

import numpy as np

from skloop import LoopedTransformerPCA
from skloop.datasets import load_wine_matrices, make_spectrum_matrices

X = make_spectrum_matrices(2000, n_points=16, n_features=8, random_state=0)
model = LoopedTransformerPCA(objective="layerwise", lr=16.0, max_epochs=40, random_state=0).fit(X)

report = model.structure_report()
print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.items()})

X_test = make_spectrum_matrices(300, n_points=16, n_features=8, random_state=1)
trajectory = model.loop_trajectory(X_test, max_loops=25)
for k in (1, 5, 10, 25):
    print(f"loop {k:>2}: model {np.median(trajectory['errors'][k - 1]):8.4f}°  shifted power "
          f"{np.median(trajectory['shifted_errors'][k - 1]):8.4f}°  power "
          f"{np.median(trajectory['power_errors'][k - 1]):8.4f}°")

factors = model.contraction_factor(X_test)
print(f"contraction: measured {factors['measured_median']:.4f}, "
      f"predicted {factors['predicted_median']:.4f}")

# %%
# On anisotropic real data the finite-sample model stalls at an error floor; the projection
# (u·I, w·I, rest 0) is exactly the shifted power method and converges.
wine = load_wine_matrices(1000, random_state=0)
wine_model = LoopedTransformerPCA(objective="layerwise", max_epochs=10, inference_loops=100,
                                  random_state=0).fit(wine)
wine_test = load_wine_matrices(200, random_state=1)
print(f"wine, 100 loops: learned {1 - wine_model.score(wine_test):.2e} (1 - cos²), "
      f"projected {1 - wine_model.project_structure().score(wine_test):.2e}")
