import numpy as np
import pytest

from skloop.datasets import (
    default_multiplicities,
    load_digit_matrices,
    load_image_patch_matrices,
    load_wine_matrices,
    make_spectrum_matrices,
    make_sphere_matrices,
    make_spiked_matrices,
)
from skloop.datasets._real import _patch_shape

GENERATORS = [
    make_sphere_matrices,
    make_spectrum_matrices,
    make_spiked_matrices,
    load_digit_matrices,
    load_image_patch_matrices,
    load_wine_matrices,
]


@pytest.mark.parametrize("generator", GENERATORS)
def test_shape_unit_points_and_reproducibility(generator):
    X = generator(7, n_points=12, n_features=5, random_state=3)
    assert X.shape == (7, 12, 5)
    assert X.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(X, axis=2), 1.0, atol=1e-12)
    np.testing.assert_array_equal(X, generator(7, n_points=12, n_features=5, random_state=3))
    assert not np.array_equal(X, generator(7, n_points=12, n_features=5, random_state=4))


@pytest.mark.parametrize("generator", GENERATORS)
def test_bad_sizes_raise(generator):
    with pytest.raises(ValueError, match="n_matrices"):
        generator(0, n_points=12, n_features=5)
    with pytest.raises(TypeError, match="n_points"):
        generator(3, n_points=2.5, n_features=5)


def test_sphere_points_are_isotropic():
    # E[x xᵀ] = I/d for uniform points on the sphere; 20 000 points give ~1% noise.
    X = make_sphere_matrices(1000, n_points=20, n_features=4, random_state=0)
    moment = np.einsum("mpi,mpj->ij", X, X) / (1000 * 20)
    np.testing.assert_allclose(moment, np.eye(4) / 4, atol=0.01)


def test_default_multiplicities():
    np.testing.assert_array_equal(default_multiplicities(16, 8), [3, 2, 2, 2, 2, 2, 2, 1])
    np.testing.assert_array_equal(default_multiplicities(32, 16), [3] + [2] * 14 + [1])
    np.testing.assert_array_equal(default_multiplicities(11, 4), [3, 3, 3, 2])
    with pytest.raises(ValueError, match="n_points >= n_features"):
        default_multiplicities(8, 8)


@pytest.mark.parametrize(
    "multiplicities",
    [None, [3, 2, 2, 2, 2, 2, 2, 1], [4, 4, 2, 2, 1, 1, 1, 1], [9, 1, 1, 1, 1, 1, 1, 1]],
)
def test_spectrum_eigenvalues_are_multiplicities_over_n(multiplicities):
    X = make_spectrum_matrices(
        20, n_points=16, n_features=8, multiplicities=multiplicities, random_state=1
    )
    m = default_multiplicities(16, 8) if multiplicities is None else np.array(multiplicities)
    eigenvalues = np.linalg.eigvalsh(np.swapaxes(X, 1, 2) @ X / 16)[:, ::-1]
    np.testing.assert_allclose(
        eigenvalues, np.broadcast_to(np.sort(m)[::-1] / 16, (20, 8)), atol=1e-12
    )


def test_spectrum_eigenvectors_are_random():
    # Haar Q: the top eigenvector is uniform on the sphere, so its squared coordinates average 1/d.
    X = make_spectrum_matrices(2000, n_points=16, n_features=8, random_state=2)
    top = np.linalg.eigh(np.swapaxes(X, 1, 2) @ X)[1][:, :, -1]
    np.testing.assert_allclose((top**2).mean(axis=0), 1 / 8, atol=0.01)


def test_spectrum_rejects_bad_multiplicities():
    with pytest.raises(ValueError, match="sum to n_points"):
        make_spectrum_matrices(2, n_points=16, n_features=4, multiplicities=[4, 4, 4, 3])
    with pytest.raises(ValueError, match="one per feature"):
        make_spectrum_matrices(2, n_points=16, n_features=4, multiplicities=[8, 8])


def test_spiked_top_eigenvector_follows_spike_and_gap_grows():
    ratios = []
    for spike in [0.5, 3.0, 20.0]:
        X, spikes = make_spiked_matrices(
            300, n_points=64, n_features=8, spike=spike, return_spikes=True, random_state=0
        )
        eigenvalues, eigenvectors = np.linalg.eigh(np.swapaxes(X, 1, 2) @ X / 64)
        ratios.append(np.median(eigenvalues[:, -2] / eigenvalues[:, -1]))
        if spike == 20.0:
            cos2 = np.einsum("mi,mi->m", eigenvectors[:, :, -1], spikes) ** 2
            assert np.median(cos2) > 0.95
    assert ratios[0] > ratios[1] > ratios[2]
    assert ratios[2] < 0.25  # ≈ 1/21 before the unit-norm scaling, larger after it


def test_spiked_is_not_rotation_invariant():
    # Without spike, the axis-aligned diagonal D makes the first coordinate dominate.
    X = make_spiked_matrices(500, n_points=32, n_features=6, spike=0.0, decay=0.1, random_state=0)
    per_axis = (X**2).mean(axis=(0, 1))
    assert per_axis[0] > 3 * per_axis[-1]


def test_digit_matrices_have_the_digits_eigengap():
    X = load_digit_matrices(300, random_state=0)
    eigenvalues = np.linalg.eigvalsh(np.swapaxes(X, 1, 2) @ X / 16)
    assert 0.1 < np.median(eigenvalues[:, -2] / eigenvalues[:, -1]) < 0.3


def test_patch_matrices_are_not_trivial():
    X = load_image_patch_matrices(300, random_state=0)
    eigenvalues = np.linalg.eigvalsh(np.swapaxes(X, 1, 2) @ X / 16)
    assert np.median(eigenvalues[:, -2] / eigenvalues[:, -1]) > 0.2
    np.testing.assert_allclose(X.sum(axis=2), 0.0, atol=1e-10)  # DC removed


@pytest.mark.parametrize("n, shape", [(8, (2, 4)), (16, (4, 4)), (13, (1, 13)), (12, (3, 4))])
def test_patch_shape(n, shape):
    assert _patch_shape(n) == shape


def test_real_data_size_limits():
    with pytest.raises(ValueError, match="non-constant features"):
        load_digit_matrices(2, n_features=64)
    with pytest.raises(ValueError, match="region_size"):
        load_image_patch_matrices(2, n_points=5000)
