"""The identity fit's Jacobian products (plugins/digital_human/identity.py) give the floats of the einsum forms
they replaced, and its batched central differences those of one projection per shift: the fitted young asset and
the per-still fits are cached across takes and must not change with the faster forms."""

import numpy as np
import pytest

from deage_plugins.digital_human.identity import _SHIFTS, _by_landmark, _chain, _rotated
from reconstruct.camera import CameraModel
from reconstruct.conventions import rodrigues


@pytest.mark.parametrize("k", [1, 10, 40, 53])
def test_rotated_basis_is_einsums(k):
    rng = np.random.default_rng(k)
    basis = rng.standard_normal((k, 478, 3))
    for _ in range(3):
        R = rodrigues(rng.standard_normal(3))
        # bit-equal with numpy 2.x's einsum when written (age12); a tolerance here so that another numpy's order of
        # summation fails no one: the cached fits are keyed by the model and stills, not the numpy version
        np.testing.assert_allclose(_rotated(R, _by_landmark(basis)), np.einsum("ij,knj->nik", R, basis),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", [3, 10, 53])
def test_chain_is_einsums(k):
    rng = np.random.default_rng(100 + k)
    D, dX = rng.standard_normal((478, 2, 3)), rng.standard_normal((478, 3, k))
    np.testing.assert_allclose(_chain(D, dX), np.einsum("nij,njk->nik", D, dX), rtol=1e-12, atol=1e-12)


def test_points_and_shifted_copies_projected_at_once_are_projected_one_at_a_time():
    rng = np.random.default_rng(7)
    cam = CameraModel(name="hero", K=np.array([[1500.0, 0, 960], [0, 1500, 540], [0, 0, 1]]),
                      dist=np.array([-0.2, 0.05, 1e-3, -2e-3, 0.01]), image_size=(1920, 1080),
                      R=rodrigues(np.array([0.1, -0.2, 0.05])), t=np.array([0.02, -0.01, 0.3]))
    X = rng.standard_normal((478, 3)) * 0.08 + np.array([0.0, 0.0, 0.5])
    at_once = cam.project((X[None] + _SHIFTS[:, None, :]).reshape(-1, 3)).reshape(7, 478, 2)
    for s, shift in enumerate(_SHIFTS):
        assert np.array_equal(at_once[s], cam.project(X + shift))
