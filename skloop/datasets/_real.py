"""Matrices sampled from real data shipped with scikit-learn (no download)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from ._checks import check_positive_int, check_sizes, unit_rows

__all__ = ["load_digit_matrices", "load_wine_matrices", "load_image_patch_matrices"]


def _sample_matrices(source: np.ndarray, n_matrices, n_points, n_features, random_state,
                     what: str):
    """Random (rows, columns) sub-matrices of ``source`` with unit-norm, non-zero rows."""
    n_matrices, n_points, n_features = check_sizes(n_matrices, n_points, n_features)
    rng = check_random_state(random_state)
    usable = np.flatnonzero(source.std(axis=0) > 0)
    if n_features > usable.size:
        raise ValueError(
            f"n_features={n_features} exceeds the {usable.size} non-constant features of {what}."
        )
    out = np.empty((n_matrices, n_points, n_features))
    for i in range(n_matrices):
        columns = rng.choice(usable, size=n_features, replace=False)
        candidates = np.flatnonzero(np.abs(source[:, columns]).sum(axis=1) > 0)
        if candidates.size < n_points:
            raise ValueError(
                f"n_points={n_points} exceeds the {candidates.size} usable rows of {what}."
            )
        rows = rng.choice(candidates, size=n_points, replace=False)
        out[i] = source[np.ix_(rows, columns)]
    return unit_rows(out)


def load_digit_matrices(n_matrices=500, n_points=16, n_features=8, *, random_state=None):
    """Real data matrices from scikit-learn's handwritten digits (no download).

    Each matrix takes ``n_features`` random pixels (among those with non-zero variance) and
    ``n_points`` random images that are not all zero on them; points (images) are scaled to
    unit norm and not centered, so the leading component is often close to the mean image
    direction and the eigengap is large (``λ_2/λ_1 ≈ 0.2``).

    Parameters
    ----------
    n_matrices : int, default=500
        Number of matrices.
    n_points : int, default=16
        Images per matrix (at most 1797).
    n_features : int, default=8
        Pixels per matrix (at most 61).
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.
    """
    from sklearn.datasets import load_digits

    pixels = load_digits().data.astype(np.float64)
    return _sample_matrices(pixels, n_matrices, n_points, n_features, random_state, "load_digits")


def load_wine_matrices(n_matrices=500, n_points=16, n_features=13, *, random_state=None):
    """Real data matrices from scikit-learn's wine recognition data (no download).

    Each matrix takes ``n_features`` random features (all 13 by default) and ``n_points``
    random samples; points are scaled to unit norm and not centered. The raw features have
    very different scales (proline is in the hundreds), so the leading component is close to
    the largest-scale feature's axis: a large eigengap but an anisotropic, non-rotation-invariant
    distribution, on which a finite-sample trained model shows its error floor.

    Parameters
    ----------
    n_matrices : int, default=500
        Number of matrices.
    n_points : int, default=16
        Samples per matrix (at most 178).
    n_features : int, default=13
        Features per matrix (at most 13).
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.
    """
    from sklearn.datasets import load_wine

    wine = load_wine().data
    return _sample_matrices(wine, n_matrices, n_points, n_features, random_state, "load_wine")


def _patch_shape(n_features: int) -> tuple[int, int]:
    """The most square (height, width) with ``height * width == n_features``."""
    height = max(h for h in range(1, int(np.sqrt(n_features)) + 1) if n_features % h == 0)
    return height, n_features // height


def load_image_patch_matrices(
    n_matrices=500,
    n_points=16,
    n_features=8,
    *,
    region_size=32,
    remove_dc=True,
    random_state=None,
):
    """Real data matrices of grey-level image patches from scikit-learn's sample images.

    Each matrix picks one of ``load_sample_images()`` (china.jpg, flower.jpg) and a random
    ``region_size × region_size`` region of it, then ``n_points`` random patches of
    ``n_features`` pixels inside the region (shape ``height × width``, as square as
    ``n_features`` allows; e.g. 8 → 2 × 4). Patches are flattened, have their mean intensity
    removed (``remove_dc``) and are scaled to unit norm; flat patches are skipped. The matrix
    itself is not centered.

    Without the DC removal nearly every patch points along the all-ones direction (median
    ``λ_2/λ_1 ≈ 1e-3``, a trivial task); with it the spectrum reflects local edges and textures
    (the usual contrast normalization of patch statistics).

    Parameters
    ----------
    n_matrices : int, default=500
        Number of matrices.
    n_points : int, default=16
        Patches per matrix.
    n_features : int, default=8
        Pixels per patch.
    region_size : int, default=32
        Side of the square region each matrix samples its patches from; smaller regions give
        more correlated patches.
    remove_dc : bool, default=True
        Subtract each patch's mean intensity before the normalization.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_matrices, n_points, n_features)
        Unit-norm points.
    """
    from sklearn.datasets import load_sample_images

    n_matrices, n_points, n_features = check_sizes(n_matrices, n_points, n_features)
    height, width = _patch_shape(n_features)
    region_size = check_positive_int(region_size, "region_size")
    if region_size < max(height, width):
        raise ValueError(
            f"region_size={region_size} is smaller than the {height}x{width} patches."
        )
    n_windows = (region_size - height + 1) * (region_size - width + 1)
    if n_points > n_windows:
        raise ValueError(
            f"n_points={n_points} exceeds the {n_windows} patches of a {region_size}-pixel "
            "region; increase region_size."
        )
    rng = check_random_state(random_state)
    images = [img.astype(np.float64).mean(axis=2) / 255.0 for img in load_sample_images().images]
    out = np.empty((n_matrices, n_points, n_features))
    for i in range(n_matrices):
        patches = np.empty((0, n_features))
        while patches.shape[0] < n_points:  # redraw the rare (almost) flat region
            image = images[rng.randint(len(images))]
            top = rng.randint(image.shape[0] - region_size + 1)
            left = rng.randint(image.shape[1] - region_size + 1)
            region = image[top : top + region_size, left : left + region_size]
            windows = np.lib.stride_tricks.sliding_window_view(region, (height, width))
            patches = windows.reshape(-1, n_features)
            if remove_dc:
                patches = patches - patches.mean(axis=1, keepdims=True)
            # Keep patches with some contrast (flat ones have no direction).
            patches = patches[np.linalg.norm(patches, axis=1) > 1e-6]
        out[i] = patches[rng.choice(patches.shape[0], size=n_points, replace=False)]
    return unit_rows(out)
