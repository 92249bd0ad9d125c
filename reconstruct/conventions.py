"""The one place where camera conventions are converted: OpenCV <-> PyTorch3D <-> Open3D.

The project's convention is OpenCV's (:mod:`reconstruct.camera`): x right, y down, z forward,
``x_cam = R @ X + t`` (column vectors), pixels with (0, 0) at the centre of the top-left pixel.

PyTorch3D (``PerspectiveCameras``) uses row vectors, ``X_view = X_world @ R + T``, with +X left, +Y up, +Z forward,
and NDC coordinates where the shorter image side spans [-1, 1] and +X/+Y point left/up. Its own
``pytorch3d.utils.cameras_from_opencv_projection`` gives the same R, T and focal length but a principal point half
a pixel off ours: ours puts OpenCV's integer pixel coordinate u at the centre of rasterized pixel u (checked on
rasterized images in ``tests/render/test_pytorch3d_backend.py``: a rendered point projects back onto its pixel
within 1e-5 px); ``tests/test_conventions.py`` pins the 0.5 px difference.

Open3D (``PinholeCameraParameters``, ``RaycastingScene.create_rays_pinhole``) uses the OpenCV camera frame and a
4x4 world-to-camera ``extrinsic``, so its conversion only repacks matrices.

Every ``to_*`` function has an exact ``from_*`` inverse; ``tests/test_conventions.py`` round-trips them.
All functions are pure numpy (no pytorch3d/open3d import): callers build library objects from the returned arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import CameraModel

_FLIP_XY = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True, slots=True, eq=False)
class PyTorch3DCamera:
    """Arrays for ``pytorch3d.renderer.PerspectiveCameras(R=R[None], T=T[None], focal_length=..., principal_point=...,
    image_size=((height, width),), in_ndc=True)``.

    Attributes:
        R: (3, 3) rotation, row-vector convention (``X_view = X_world @ R + T``).
        T: (3,) translation in metres.
        focal_length: (2,) focal length in NDC units (pixels / (min(H, W) / 2)).
        principal_point: (2,) principal point in NDC (+x left, +y up).
        image_size: (height, width) in pixels -- note the order PyTorch3D uses.
    """

    R: np.ndarray
    T: np.ndarray
    focal_length: np.ndarray
    principal_point: np.ndarray
    image_size: tuple[int, int]


def opencv_to_pytorch3d(cam: CameraModel) -> PyTorch3DCamera:
    """OpenCV camera -> PyTorch3D ``PerspectiveCameras`` parameters (NDC). Distortion is not representable and is
    dropped: render undistorted and distort the image, or undistort the plate first."""
    w, h = cam.image_size
    scale = min(w, h) / 2.0
    size_wh = np.array([w, h], dtype=np.float64)
    f = np.array([cam.K[0, 0], cam.K[1, 1]])
    c = np.array([cam.K[0, 2], cam.K[1, 2]])
    # PyTorch3D's NDC: pixel centres at ((i + 0.5) - W/2) / scale with the sign flipped; OpenCV pixel centre i is
    # at continuous coordinate i + 0.5, so an OpenCV principal point c maps to -(c + 0.5 - W/2) / scale.
    pp = -(c + 0.5 - size_wh / 2.0) / scale
    R = (_FLIP_XY @ cam.R).T
    T = _FLIP_XY @ cam.t
    return PyTorch3DCamera(R=R, T=T, focal_length=f / scale, principal_point=pp, image_size=(h, w))


def pytorch3d_to_opencv(p: PyTorch3DCamera, name: str = "camera", dist=None) -> CameraModel:
    """Exact inverse of :func:`opencv_to_pytorch3d` (distortion given separately, default zero)."""
    h, w = p.image_size
    scale = min(w, h) / 2.0
    size_wh = np.array([w, h], dtype=np.float64)
    f = np.asarray(p.focal_length, float) * scale
    c = -np.asarray(p.principal_point, float) * scale + size_wh / 2.0 - 0.5
    K = np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1.0]])
    R = _FLIP_XY @ np.asarray(p.R, float).T
    t = _FLIP_XY @ np.asarray(p.T, float)
    return CameraModel(name=name, K=K, dist=np.zeros(5) if dist is None else dist, R=R, t=t, image_size=(w, h))


@dataclass(frozen=True, slots=True, eq=False)
class Open3DCamera:
    """Arrays for ``open3d.camera.PinholeCameraIntrinsic(width, height, intrinsic)`` and an ``extrinsic``.

    Attributes:
        intrinsic: (3, 3) K in pixels (same as OpenCV).
        extrinsic: (4, 4) world-to-camera transform, metres (same frame as OpenCV).
        width, height: image size in pixels.
    """

    intrinsic: np.ndarray
    extrinsic: np.ndarray
    width: int
    height: int


def opencv_to_open3d(cam: CameraModel) -> Open3DCamera:
    return Open3DCamera(intrinsic=cam.K.copy(), extrinsic=cam.world_to_camera, width=cam.width, height=cam.height)


def open3d_to_opencv(o: Open3DCamera, name: str = "camera", dist=None) -> CameraModel:
    E = np.asarray(o.extrinsic, float)
    return CameraModel(
        name=name, K=o.intrinsic, dist=np.zeros(5) if dist is None else dist, R=E[:3, :3], t=E[:3, 3],
        image_size=(int(o.width), int(o.height)),
    )


# -- rotations ---------------------------------------------------------------------------------------------------
def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) radians -> rotation matrix (3, 3) (same as ``cv2.Rodrigues``, without OpenCV)."""
    rvec = np.asarray(rvec, float).reshape(3)
    th = np.linalg.norm(rvec)
    if th < 1e-12:
        return np.eye(3)
    k = rvec / th
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * Kx + (1 - np.cos(th)) * Kx @ Kx


def rotation_to_rvec(R: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) -> axis-angle (3,) radians; exact inverse of :func:`rodrigues` for angles < pi."""
    import cv2

    rvec, _ = cv2.Rodrigues(np.asarray(R, float))
    return rvec.reshape(3)


def rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    """Angle in degrees of the rotation ``Ra @ Rb.T`` (0 when equal)."""
    c = (np.trace(np.asarray(Ra) @ np.asarray(Rb).T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
