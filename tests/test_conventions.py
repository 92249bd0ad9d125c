"""The conventions module: exact inverses, agreement with OpenCV's projection and PyTorch3D's own cameras."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.camera import CameraModel, look_at
from reconstruct.conventions import (open3d_to_opencv, opencv_to_open3d, opencv_to_pytorch3d, pytorch3d_to_opencv,
                                     rodrigues, rotation_angle_deg, rotation_to_rvec)


def random_camera(rng, w=640, h=480) -> CameraModel:
    R = rodrigues(rng.normal(size=3) * 0.5)
    t = rng.normal(size=3) * 0.2 + np.array([0, 0, 1.0])
    K = np.array([[rng.uniform(400, 900), 0, rng.uniform(0.4, 0.6) * w],
                  [0, rng.uniform(400, 900), rng.uniform(0.4, 0.6) * h], [0, 0, 1]])
    return CameraModel("cam", K=K, dist=np.zeros(5), R=R, t=t, image_size=(w, h))


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1920, 1080)])
def test_pytorch3d_round_trip_is_exact(size):
    rng = np.random.default_rng(0)
    for _ in range(20):
        cam = random_camera(rng, *size)
        back = pytorch3d_to_opencv(opencv_to_pytorch3d(cam))
        np.testing.assert_allclose(back.K, cam.K, atol=1e-9)
        np.testing.assert_allclose(back.R, cam.R, atol=1e-12)
        np.testing.assert_allclose(back.t, cam.t, atol=1e-12)
        assert back.image_size == cam.image_size


def test_open3d_round_trip_is_exact():
    rng = np.random.default_rng(1)
    cam = random_camera(rng)
    back = open3d_to_opencv(opencv_to_open3d(cam))
    np.testing.assert_array_equal(back.K, cam.K)
    np.testing.assert_allclose(back.R, cam.R, atol=0)
    np.testing.assert_allclose(back.t, cam.t, atol=0)


def test_rotation_helpers_are_inverse():
    rng = np.random.default_rng(2)
    for _ in range(50):
        r = rng.normal(size=3)
        r *= rng.uniform(0.01, 3.0) / np.linalg.norm(r)
        np.testing.assert_allclose(rotation_to_rvec(rodrigues(r)), r, atol=1e-9)
        assert rotation_angle_deg(rodrigues(r), rodrigues(r)) < 1e-5


def test_projection_matches_opencv_with_distortion():
    import cv2

    rng = np.random.default_rng(3)
    cam = random_camera(rng)
    cam = CameraModel("c", K=cam.K, dist=[0.1, -0.05, 0.001, -0.002, 0.01], R=cam.R, t=cam.t, image_size=(640, 480))
    X = rng.normal(size=(100, 3)) * 0.1 + cam.center + cam.R[2] * 1.0  # points in front of the camera
    ours = cam.project(X)
    ref, _ = cv2.projectPoints(X, rotation_to_rvec(cam.R), cam.t, cam.K, cam.dist)
    np.testing.assert_allclose(ours, ref.reshape(-1, 2), atol=1e-8)
    # rays through the projected pixels pass through the points
    o, d = cam.rays(ours)
    v = X - o
    resid = np.linalg.norm(v - (v * d).sum(1, keepdims=True) * d, axis=1)
    assert resid.max() < 1e-6  # metres; measured ~1e-10


def test_look_at_points_the_optical_axis_at_the_target():
    R, t = look_at([0.5, -0.2, -1.0], [0, 0, 0])
    cam = CameraModel("c", K=np.diag([500, 500, 1.0]) + np.array([[0, 0, 320], [0, 0, 240], [0, 0, 0]]), R=R, t=t)
    np.testing.assert_allclose(cam.project(np.zeros((1, 3))), [[320, 240]], atol=1e-9)


def test_agrees_with_pytorch3d():
    """Our conversion vs PyTorch3D's own: identical rotation/translation and focal length; the principal point
    differs by exactly half a pixel because PyTorch3D's rasterizer puts pixel i's centre at screen x = i + 0.5
    while OpenCV puts it at u = i. Ours aligns pixel centres, so screen coordinates are OpenCV's + 0.5."""
    torch = pytest.importorskip("torch")
    p3d = pytest.importorskip("pytorch3d.renderer")
    from pytorch3d.utils import cameras_from_opencv_projection

    rng = np.random.default_rng(4)
    cam = random_camera(rng, 640, 480)
    w, h = cam.image_size
    theirs = cameras_from_opencv_projection(
        torch.tensor(cam.R[None], dtype=torch.float64), torch.tensor(cam.t[None], dtype=torch.float64),
        torch.tensor(cam.K[None], dtype=torch.float64), torch.tensor([[h, w]]))
    ours = opencv_to_pytorch3d(cam)
    np.testing.assert_allclose(theirs.R[0].numpy(), ours.R, atol=1e-12)
    np.testing.assert_allclose(theirs.T[0].numpy(), ours.T, atol=1e-12)
    np.testing.assert_allclose(theirs.focal_length[0].numpy(), ours.focal_length, atol=1e-12)
    scale = min(w, h) / 2
    np.testing.assert_allclose((theirs.principal_point[0].numpy() - ours.principal_point) * scale, [0.5, 0.5],
                               atol=1e-9)
    # Screen projection through our parameters = OpenCV projection + 0.5 px.
    f32 = lambda a: torch.tensor(np.asarray(a)[None], dtype=torch.float32)  # noqa: E731
    cams = p3d.PerspectiveCameras(R=f32(ours.R), T=f32(ours.T), focal_length=f32(ours.focal_length),
                                  principal_point=f32(ours.principal_point), image_size=torch.tensor([[h, w]]),
                                  in_ndc=True)
    X = rng.normal(size=(20, 3)) * 0.05 + cam.center + cam.R[2] * 0.8
    scr = cams.transform_points_screen(f32(X))[0, :, :2].numpy()
    np.testing.assert_allclose(scr, cam.project(X) + 0.5, atol=2e-3)  # float32 on ~500 px: measured < 1e-3
