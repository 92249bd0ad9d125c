"""The one lens module (:mod:`reconstruct.lens`): its numpy and torch twins and ``CameraModel.project`` against
OpenCV's own projection, every coefficient count; the torch Jacobian against autograd and finite differences."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from reconstruct import lens
from reconstruct.camera import CameraModel
from reconstruct.conventions import rodrigues
from reconstruct.errors import ConfigError
from reconstruct.fitting.projection import CameraStack, _project_with_jacobian_ad, project_with_jacobian

K = np.array([[820.0, 0.0, 331.0], [0.0, 805.0, 236.0], [0.0, 0.0, 1.0]])
#: a strongly distorted lens in OpenCV's order: k1 k2 p1 p2 k3 k4 k5 k6 s1 s2 s3 s4 tau_x tau_y
FULL = np.array([-0.28, 0.11, 0.0012, -0.0009, -0.02, 0.05, -0.01, 0.004, 0.0015, -0.0007, -0.001, 0.0004, 0.012,
                 -0.009])
FISHEYE = np.array([0.05, -0.02, 0.01, -0.002])
CASES = [("pinhole", 4), ("pinhole", 5), ("pinhole", 8), ("pinhole", 12), ("pinhole", 14), ("fisheye", 4)]
#: OpenCV agrees to rounding: measured at most 2.3e-13 px over every case below (1.1e-13 px for the numpy and torch
#: twins with 4-8 coefficients). Before the lens module, CameraModel projected 12 and 14 coefficients with only the
#: first 8: 0.52 px and 3.97 px off OpenCV for this lens.
TOL_PX = 1e-9


def _dist(model: str, n: int) -> np.ndarray:
    return FISHEYE.copy() if model == "fisheye" else FULL[:n].copy()


def _camera_points(n: int = 400, seed: int = 0) -> np.ndarray:
    """(n, 3) camera-frame points whose normalised coordinates fill a 640x480 image (and beyond, to |x| 0.55)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.5, 4.0, n)
    return np.c_[rng.uniform(-0.55, 0.55, (n, 2)) * z[:, None], z]


def _opencv(X: np.ndarray, rvec: np.ndarray, t: np.ndarray, dist: np.ndarray, model: str) -> np.ndarray:
    if model == "fisheye":
        return cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), rvec, t, K, dist)[0].reshape(-1, 2)
    return cv2.projectPoints(X, rvec, t, K, dist)[0].reshape(-1, 2)


@pytest.mark.parametrize("impl", ["numpy", "torch", "CameraModel"])
@pytest.mark.parametrize("model,n", CASES)
def test_projection_matches_opencv(model, n, impl):
    dist = _dist(model, n)
    Xc = _camera_points()
    if impl == "CameraModel":  # world points through a posed camera: the pose is OpenCV's rvec, tvec
        rvec, t = np.array([0.1, -0.25, 0.05]), np.array([0.02, -0.01, 0.3])
        R = rodrigues(rvec)
        Xw = (Xc - t) @ R  # so that R Xw + t = Xc
        ref = _opencv(Xw, rvec, t, dist, model)
        got = CameraModel("cam", K=K, dist=dist, R=R, t=t, model=model).project(Xw)
    else:
        ref = _opencv(Xc, np.zeros(3), np.zeros(3), dist, model)
        xn = Xc[:, :2] / Xc[:, 2:]
        if impl == "numpy":
            got = lens.to_pixels(lens.distort(xn, dist, model), K)
        else:
            xd = lens.distort_torch(torch.as_tensor(xn), torch.as_tensor(dist), torch.tensor(model == "fisheye"))
            got = lens.to_pixels_torch(xd, torch.as_tensor(K)).numpy()
    err = np.abs(got - ref).max()
    assert err < TOL_PX, f"{impl} {model} {n} coefficients: {err:.3g} px from OpenCV"


def test_camera_stack_projects_like_opencv_with_every_width():
    """A stack mixing 5, 14 coefficients and a fisheye: padded to 14 slots, each camera projects like OpenCV."""
    cams = [CameraModel("a", K=K, dist=FULL[:5]), CameraModel("b", K=K, dist=FULL),
            CameraModel("c", K=K, dist=FISHEYE, model="fisheye")]
    stack = CameraStack.from_models(cams)
    assert stack.dist.shape == (3, 14)
    assert CameraStack.from_models(cams[:1]).dist.shape == (1, 8)
    assert CameraStack.from_models(cams[:1] + [CameraModel("d", K=K, dist=FULL[:12])]).dist.shape == (2, 12)
    Xc = _camera_points(200)
    uv, _ = project_with_jacobian(torch.as_tensor(np.broadcast_to(Xc, (1, 3, 200, 3)).copy()), stack)
    for i, c in enumerate(cams):
        ref = _opencv(Xc, np.zeros(3), np.zeros(3), c.dist, c.model)
        assert np.abs(uv[0, i].numpy() - ref).max() < TOL_PX


@pytest.mark.parametrize("n", [4, 5, 8, 12, 14])
def test_torch_jacobian_matches_autograd(n):
    """The analytic pinhole Jacobian against autograd of the forward model: equal to rounding (measured 4.5e-16
    relative to the largest entry; tolerance 1e-12)."""
    dist = torch.as_tensor(FULL[:n])
    xn = torch.as_tensor(_camera_points(60, seed=n)[:, :2] / _camera_points(60, seed=n)[:, 2:])
    xd, J = lens.distort_jacobian_torch(xn, dist)
    assert xd.shape == (60, 2) and J.shape == (60, 2, 2)
    torch.testing.assert_close(xd, lens.distort_torch(xn, dist), rtol=0, atol=1e-15)
    J_ad = torch.func.vmap(torch.func.jacrev(lambda p: lens.distort_torch(p, dist)))(xn)
    assert ((J - J_ad).abs().max() / J_ad.abs().max()).item() < 1e-12


@pytest.mark.parametrize("model,n", CASES)
def test_torch_model_gradients_match_finite_differences(model, n):
    """Autograd through the torch twin (what the photometric fit and the fisheye Jacobian use) against central
    differences (``torch.autograd.gradcheck``), every model."""
    dist = torch.as_tensor(_dist(model, n))
    fe = torch.tensor(model == "fisheye")
    xn = torch.as_tensor(_camera_points(12, seed=3)[:, :2] / _camera_points(12, seed=3)[:, 2:]).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: lens.distort_torch(p, dist, fe), (xn,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("width", [5, 12, 14])
def test_fit_projection_jacobian_matches_autodiff(width):
    """The fit's analytic 2x3 pixel Jacobian (pinhole, any width) against its forward-mode autodiff path."""
    cams = [CameraModel("a", K=K, dist=FULL[:5]), CameraModel("b", K=K * [[0.9], [0.9], [1]], dist=FULL[:width])]
    stack = CameraStack.from_models(cams)
    Xc = torch.as_tensor(np.broadcast_to(_camera_points(50, seed=5), (2, 2, 50, 3)).copy())
    uv, J = project_with_jacobian(Xc, stack)
    uv_ad, J_ad = _project_with_jacobian_ad(Xc, stack)
    torch.testing.assert_close(uv, uv_ad, rtol=0, atol=1e-10)
    torch.testing.assert_close(J, J_ad, rtol=1e-10, atol=1e-9)  # entries up to 1400 px/m; measured 4.5e-13


def test_zero_distortion_and_origin():
    """No coefficients: the identity; the fisheye's origin maps to itself (finite gradient there)."""
    xn = np.array([[0.0, 0.0], [0.3, -0.2]])
    np.testing.assert_array_equal(lens.distort(xn, np.zeros(0)), xn)
    np.testing.assert_array_equal(lens.distort(xn[:1], FISHEYE, "fisheye"), xn[:1])
    p = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    lens.distort_torch(p, torch.as_tensor(FISHEYE), torch.tensor(True)).sum().backward()
    assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("model,n", [("pinhole", 6), ("pinhole", 13), ("fisheye", 5), ("kannala", 4)])
def test_bad_coefficient_counts_are_config_errors(model, n):
    with pytest.raises(ConfigError, match="distortion coefficients|lens model"):
        lens.distort(np.zeros((1, 2)), np.zeros(n), model)
    with pytest.raises(ConfigError):
        CameraModel("cam", K=K, dist=np.zeros(n), model=model)
