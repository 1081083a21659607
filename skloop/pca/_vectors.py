"""Query vectors and component post-processing shared by the PCA estimators (numpy).

Starting (query) vectors drawn from a seed, Gram–Schmidt against components already found, and
the sign convention of the returned components.
"""

from __future__ import annotations

import numpy as np

from .._core.numerics import unit_vectors

__all__ = ["flip_signs", "orthogonal_to", "random_query_vectors"]


def random_query_vectors(rng: np.random.RandomState, n_matrices: int, n_features: int,
                         n_components: int = 1) -> np.ndarray:
    """Uniformly random orthonormal starting vectors, shape ``(N, d, k)``, from ``rng``."""
    V = rng.standard_normal((n_matrices, n_features, n_components))
    if n_components == 1:
        return V / np.linalg.norm(V, axis=1, keepdims=True)
    return np.linalg.qr(V)[0]


def flip_signs(components: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude coordinate of every vector positive (``svd_flip``'s rule).

    Parameters
    ----------
    components : ndarray of shape (..., d)

    Returns
    -------
    components : ndarray of shape (..., d)
    """
    idx = np.argmax(np.abs(components), axis=-1)[..., None]
    signs = np.sign(np.take_along_axis(components, idx, axis=-1))
    return components * np.where(signs == 0, 1.0, signs)


def orthogonal_to(vectors: np.ndarray, found: list) -> np.ndarray:
    """Remove the components along the unit vectors already found (Gram–Schmidt), rescale.

    Parameters
    ----------
    vectors : ndarray of shape (N, d)
    found : list of ndarray of shape (N, d)
        Orthonormal directions, one per matrix each.

    Returns
    -------
    vectors : ndarray of shape (N, d)
        Unit vectors orthogonal to ``found`` (``vectors`` itself when ``found`` is empty).
    """
    for c in found:
        vectors = vectors - np.sum(vectors * c, axis=1, keepdims=True) * c
    if found:
        vectors = unit_vectors(vectors, axis=1)  # exact at any scale; zero stays zero
    return vectors
