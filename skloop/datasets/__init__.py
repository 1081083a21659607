"""Batches of data matrices: the paper's tasks, out-of-distribution sets and real data.

Every function returns a float64 array ``(n_matrices, n_points, n_features)`` whose rows
(points) have unit Euclidean norm, and takes ``random_state`` for reproducibility. Nothing is
downloaded: the real-data loaders use data shipped with scikit-learn.
"""

from ._matrices import (
    default_multiplicities,
    make_spectrum_matrices,
    make_sphere_matrices,
    make_spiked_matrices,
)
from ._real import load_digit_matrices, load_image_patch_matrices, load_wine_matrices
from ._sequences import InductionTaskSampler, make_induction_head_task, make_repeated_tokens

__all__ = [
    "make_sphere_matrices",
    "make_spectrum_matrices",
    "default_multiplicities",
    "make_spiked_matrices",
    "load_digit_matrices",
    "load_image_patch_matrices",
    "load_wine_matrices",
    "make_induction_head_task",
    "make_repeated_tokens",
    "InductionTaskSampler",
]
