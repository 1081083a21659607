import numpy as np
import pytest

from skloop.datasets import make_spectrum_matrices, make_sphere_matrices
from skloop.metrics import (
    angular_error,
    leading_subspace,
    principal_cos2,
    subspace_distance,
)


def _rotation_towards(u, w, angle):
    """Unit vector at ``angle`` radians from u towards the unit vector w ⟂ u."""
    return np.cos(angle) * u + np.sin(angle) * w


def test_subspace_matches_numpy_eigh_per_matrix():
    X = make_sphere_matrices(5, random_state=0)
    subspace = leading_subspace(X)
    for i, A in enumerate(X):
        values, vectors = np.linalg.eigh(A.T @ A / A.shape[0])
        np.testing.assert_allclose(subspace.eigenvalues[i], values[::-1], atol=1e-14)
        cos = abs(subspace.eigenvectors[i, :, 0] @ vectors[:, -1])
        assert cos == pytest.approx(1.0, abs=1e-12)
    assert np.all(subspace.multiplicity == 1)


@pytest.mark.parametrize("angle_deg", [1e-9, 1e-6, 1e-3, 0.5, 30.0, 89.9])
def test_angular_error_is_exact_for_tiny_and_large_angles(angle_deg):
    X = make_spectrum_matrices(4, random_state=1)
    subspace = leading_subspace(X)
    u1, u2 = subspace.eigenvectors[:, :, 0], subspace.eigenvectors[:, :, 1]
    y = _rotation_towards(u1, u2, np.radians(angle_deg))
    # The projection-based angle is accurate to ~1e-14 degrees (a few ulp of y's coordinates)
    # where arccos of the cosine floors at sqrt(2 eps) rad = 1.2e-6 degrees.
    np.testing.assert_allclose(angular_error(subspace, y), angle_deg, rtol=1e-9, atol=1e-13)
    # Recomputing the eigenvectors from X adds eigh's rounding (~1e-15 rad).
    np.testing.assert_allclose(angular_error(X, y), angle_deg, rtol=1e-6, atol=1e-12)
    arccos_angle = np.degrees(np.arccos(np.clip(np.abs(np.sum(y * u1, axis=1)), 0, 1)))
    if angle_deg < 1e-6:  # the naive formula cannot see it
        assert np.all(np.abs(arccos_angle - angle_deg) > 100 * 1e-13)


def test_metrics_are_sign_and_scale_invariant_and_consistent():
    X = make_sphere_matrices(50, random_state=2)
    y = np.random.default_rng(0).standard_normal((50, 8))
    angle = angular_error(X, y)
    np.testing.assert_allclose(angular_error(X, -3.0 * y), angle, rtol=1e-12)
    np.testing.assert_allclose(principal_cos2(X, y), np.cos(np.radians(angle)) ** 2, atol=1e-12)
    unit = y / np.linalg.norm(y, axis=1, keepdims=True)
    np.testing.assert_allclose(subspace_distance(X, unit), np.sin(np.radians(angle)), atol=1e-12)


def test_subspace_distance_is_the_paper_dist_against_the_projector():
    X = make_sphere_matrices(20, random_state=3)
    y = np.random.default_rng(1).standard_normal((20, 8)) * 2.5  # not unit: Dist uses y as is
    projector = leading_subspace(X).projector
    expected = np.linalg.norm(y - np.einsum("mij,mj->mi", projector, y), axis=1)
    np.testing.assert_allclose(subspace_distance(X, y), expected, atol=1e-12)


def test_multiplicity_two_accepts_any_vector_of_the_top_space():
    X = make_spectrum_matrices(
        30, n_points=16, n_features=8, multiplicities=[4, 4, 2, 2, 1, 1, 1, 1], random_state=4
    )
    subspace = leading_subspace(X)
    np.testing.assert_array_equal(subspace.multiplicity, 2)
    rng = np.random.default_rng(2)
    mix = rng.standard_normal((30, 2))
    y = np.einsum("mik,mk->mi", subspace.eigenvectors[:, :, :2], mix)
    np.testing.assert_allclose(angular_error(X, y), 0.0, atol=1e-9)
    np.testing.assert_allclose(principal_cos2(X, y), 1.0, atol=1e-12)
    # The third eigenvector is orthogonal to the whole top space.
    np.testing.assert_allclose(angular_error(X, subspace.eigenvectors[:, :, 2]), 90.0)
    np.testing.assert_allclose(np.trace(subspace.projector, axis1=1, axis2=2), 2.0)
    np.testing.assert_allclose(subspace.eigengap_ratio, 0.5)


def test_random_direction_scores_r_over_d_on_average():
    X = make_spectrum_matrices(
        4000, n_points=16, n_features=8, multiplicities=[4, 4, 2, 2, 1, 1, 1, 1], random_state=5
    )
    y = np.random.default_rng(3).standard_normal((4000, 8))
    assert principal_cos2(X, y).mean() == pytest.approx(2 / 8, abs=0.02)


def test_ragged_batches_match_per_matrix_results():
    rng = np.random.default_rng(4)
    matrices = [rng.standard_normal((n, 5)) for n in (6, 9, 7)]
    y = rng.standard_normal((3, 5))
    ragged = angular_error(matrices, y)
    single = [angular_error(A[None], y[i : i + 1])[0] for i, A in enumerate(matrices)]
    np.testing.assert_allclose(ragged, single, rtol=1e-12)


def test_center_and_normalize_options_change_the_reference():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((1, 50, 3)) + np.array([5.0, 0.0, 0.0])
    mean_dir = np.array([[1.0, 0.0, 0.0]])
    assert angular_error(A, mean_dir) < 5  # uncentered: the mean direction dominates
    centered_top = np.linalg.eigh(np.cov(A[0].T))[1][:, -1]
    assert angular_error(A, centered_top[None], center=True, normalize_points=False) < 1e-8


def test_component_shape_is_checked():
    X = make_sphere_matrices(3, random_state=0)
    with pytest.raises(ValueError, match="components must have shape"):
        angular_error(X, np.ones((2, 8)))


def test_a_zero_component_is_the_worst_answer_for_every_metric():
    X = make_spectrum_matrices(3, n_points=8, n_features=4, random_state=0)
    zero = np.zeros((3, 4))
    np.testing.assert_array_equal(angular_error(X, zero), 90.0)
    np.testing.assert_array_equal(principal_cos2(X, zero), 0.0)
