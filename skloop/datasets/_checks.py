"""Argument checks and row normalization shared by the dataset makers."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_positive_int", "check_sizes", "unit_rows"]


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, checked to be an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def check_sizes(n_matrices, n_points, n_features):
    """The three sizes of a batch, each checked to be a positive int."""
    return (
        check_positive_int(n_matrices, "n_matrices"),
        check_positive_int(n_points, "n_points"),
        check_positive_int(n_features, "n_features"),
    )


def unit_rows(points: np.ndarray) -> np.ndarray:
    """``points`` scaled to unit Euclidean norm along the last axis."""
    return points / np.linalg.norm(points, axis=-1, keepdims=True)
