"""
Early stopping with checkpoints, the skorch way
===============================================

skorch users hold out a validation split, stop when the validation loss stalls, and keep the
best epoch's weights. ``LoopedTransformerPCA`` takes the same parameters and callbacks as a
skorch ``NeuralNet``: ``train_split`` holds out whole matrices, ``EarlyStopping`` and
``Checkpoint(load_best=True)`` work with their defaults, an optimizer class and its routed
``optimizer__*`` parameters reach the optimizer, and the history records the validation loss
and the mean angular error on the held-out matrices every epoch.
"""

import tempfile

import torch
from skorch.callbacks import Checkpoint, EarlyStopping

from skloop import LoopedTransformerPCA, PowerIterationPCA
from skloop.datasets import make_sphere_matrices
from skloop.metrics import angular_error

X = make_sphere_matrices(2000, n_points=16, n_features=8, random_state=0)  # paper Task 1
X_test = make_sphere_matrices(500, n_points=16, n_features=8, random_state=1)

with tempfile.TemporaryDirectory() as folder:
    model = LoopedTransformerPCA(
        objective="layerwise",
        inference_loops=20,
        train_split=0.2,  # 400 matrices held out
        optimizer=torch.optim.AdamW,
        lr=0.05,
        optimizer__weight_decay=1e-4,
        max_epochs=100,
        # Stop when the held-out angle at 20 loops stops improving (the loss itself keeps
        # creeping down as the gain grows); keep the weights of the best epoch.
        callbacks=[EarlyStopping(monitor="valid_angular_error", patience=5),
                   Checkpoint(monitor="valid_angular_error_best", dirname=folder,
                              load_best=True)],
        random_state=0,
    ).fit(X)

# Training stopped when the validation loss stalled; the weights (and the history saved with
# them) are those of the best epoch.
history = model.history_
print(f"best epoch {len(history)} of at most 100: valid_loss {history[-1, 'valid_loss']:.4f}, "
      f"mean held-out angle {history[-1, 'valid_angular_error']:.2f} deg at 20 loops "
      f"(first epoch: {history[0, 'valid_angular_error']:.1f} deg)")

# The learned layer is a shifted power step with gain rho_: compare with the algorithm itself.
power = PowerIterationPCA(n_iter=20, shift=model.rho_, random_state=0).fit(X_test)
learned = angular_error(X_test, model.predict(X_test)).mean()
classical = angular_error(X_test, power.predict(X_test)).mean()
print(f"test mean angle: learned {learned:.2f} deg, power method (same gain, 20 steps) "
      f"{classical:.2f} deg")
