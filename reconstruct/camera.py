"""The calibrated camera model every stage uses (OpenCV convention).

Convention (the project's one convention; see :mod:`reconstruct.conventions` for the others):

* world units are **metres**;
* camera frame: x right, y down, z forward (OpenCV);
* extrinsics map world to camera: ``x_cam = R @ X_world + t``;
* pixel (0, 0) is the *centre* of the top-left pixel (OpenCV); ``image_size`` is ``(width, height)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from . import lens
from .errors import ConfigError

DistortionModel = Literal["pinhole", "fisheye"]
#: largest ``|R^T R - I|`` entry accepted as a rotation: rotations written with 4 decimals pass, a scaled or
#: sheared matrix does not
_ROTATION_TOL = 1e-3


def _as(a, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != shape:
        raise ConfigError(f"camera {name} has shape {arr.shape}, expected {shape}")
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class CameraModel:
    """One calibrated camera.

    Attributes:
        name: camera name as in the rig file (e.g. ``"hero"``).
        K: (3, 3) float64 intrinsic matrix in pixels.
        dist: (N,) float64 distortion coefficients. ``model == "pinhole"``: OpenCV's
            (k1, k2, p1, p2[, k3[, k4, k5, k6[, s1, s2, s3, s4[, tau_x, tau_y]]]]), N in {0, 4, 5, 8, 12, 14};
            ``"fisheye"``: (k1, k2, k3, k4). The model itself: :mod:`reconstruct.lens`.
        R: (3, 3) float64 rotation, world to camera.
        t: (3,) float64 translation in metres, world to camera.
        image_size: (width, height) in pixels.
        model: lens model, ``"pinhole"`` (OpenCV rational/plumb-bob, thin prism, tilted sensor) or ``"fisheye"``
            (OpenCV fisheye).
    """

    name: str
    K: np.ndarray
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))
    image_size: tuple[int, int] = (640, 480)
    model: DistortionModel = "pinhole"

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", _as(self.K, (3, 3), f"{self.name!r} K"))
        dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        lens.check_count(dist.size, self.model, f"camera {self.name!r}")
        object.__setattr__(self, "dist", _as(dist, dist.shape, f"{self.name!r} dist"))
        object.__setattr__(self, "R", _as(self.R, (3, 3), f"{self.name!r} R"))
        object.__setattr__(self, "t", _as(np.reshape(self.t, -1), (3,), f"{self.name!r} t"))
        w, h = (int(v) for v in self.image_size)
        if w <= 0 or h <= 0:
            raise ConfigError(f"camera {self.name!r} has image size {self.image_size}; expected positive (width, height)")
        object.__setattr__(self, "image_size", (w, h))
        self._validate()

    def _validate(self) -> None:
        """Finite K, dist, R, t; positive focal lengths; R a rotation (orthonormal within ``_ROTATION_TOL``, det +1).
        A NaN that got into a camera (a diverged solve, a hand-edited file) fails here, where it can be named, and
        not as an SVD that does not converge three stages later."""
        for key in ("K", "dist", "R", "t"):
            a = getattr(self, key)
            if not np.all(np.isfinite(a)):
                raise ConfigError(f"camera {self.name!r}: {key} has non-finite values (NaN or infinity): {a.tolist()}")
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0:
            raise ConfigError(f"camera {self.name!r}: focal lengths fx = {self.K[0, 0]:g}, fy = {self.K[1, 1]:g} "
                              "must be positive")
        err = float(np.abs(self.R.T @ self.R - np.eye(3)).max())
        det = float(np.linalg.det(self.R))
        if err > _ROTATION_TOL or det <= 0:
            raise ConfigError(f"camera {self.name!r}: R is not a rotation matrix (|R^T R - I| = {err:.2g}, "
                              f"det R = {det:.4g}; expected 0 and +1)")

    # -- derived quantities -------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.image_size[0]

    @property
    def height(self) -> int:
        return self.image_size[1]

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in world coordinates, metres: ``C = -R^T t``."""
        return -self.R.T @ self.t

    @property
    def world_to_camera(self) -> np.ndarray:
        """(4, 4) homogeneous world-to-camera transform."""
        T = np.eye(4)
        T[:3, :3] = self.R
        T[:3, 3] = self.t
        return T

    def with_pose(self, R: np.ndarray, t: np.ndarray) -> "CameraModel":
        return replace(self, R=R, t=t)

    # -- geometry --------------------------------------------------------------------------------------------
    def to_camera(self, X: np.ndarray) -> np.ndarray:
        """World points (N, 3) metres -> camera-frame points (N, 3) metres."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, 3)
        return X @ self.R.T + self.t

    def project(self, X: np.ndarray) -> np.ndarray:
        """World points (N, 3) metres -> distorted pixel coordinates (N, 2).

        Points behind the camera (z <= 0) come back as NaN.
        """
        Xc = self.to_camera(X)
        z = Xc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = Xc[:, :2] / z[:, None]
        uv = self.distort_normalized(xn)
        uv[z <= 0] = np.nan
        return uv

    def distort_normalized(self, xn: np.ndarray) -> np.ndarray:
        """Normalised image coordinates (N, 2) -> pixels (N, 2), applying the lens model and K
        (:mod:`reconstruct.lens`: every coefficient count OpenCV has, like ``cv2.projectPoints``)."""
        xn = np.asarray(xn, dtype=np.float64).reshape(-1, 2)
        return lens.to_pixels(lens.distort(xn, self.dist, self.model), self.K)

    def undistort_points(self, uv: np.ndarray) -> np.ndarray:
        """Distorted pixels (N, 2) -> normalised image coordinates (N, 2) (OpenCV's iterative inverse)."""
        import cv2

        pts = np.asarray(uv, dtype=np.float64).reshape(-1, 1, 2)
        if self.model == "fisheye":
            out = cv2.fisheye.undistortPoints(pts, self.K, self.dist)
        else:
            out = cv2.undistortPoints(pts, self.K, self.dist)
        return out.reshape(-1, 2)

    def rays(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (N, 2) -> (origin (3,), unit directions (N, 3)) in world coordinates."""
        xn = self.undistort_points(uv)
        d_cam = np.hstack([xn, np.ones((xn.shape[0], 1))])
        d = d_cam @ self.R  # R^T d_cam, row-wise
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return self.center, d

    # -- serialisation (the calibration.json per-camera record) --------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            "image_size": list(self.image_size),
            "K": self.K.tolist(),
            "dist": self.dist.tolist(),
            "R": self.R.tolist(),
            "t": self.t.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CameraModel":
        try:
            return cls(
                name=str(d["name"]),
                K=d["K"],
                dist=d.get("dist", [0, 0, 0, 0, 0]),
                R=d.get("R", np.eye(3)),
                t=d.get("t", [0, 0, 0]),
                image_size=tuple(d["image_size"]),
                model=d.get("model", "pinhole"),
            )
        except KeyError as exc:
            raise ConfigError(f"camera record is missing {exc.args[0]!r}; expected name, K, image_size[, dist, R, t]") from exc


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, -1.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, t) of an OpenCV camera at ``eye`` looking at ``target``.

    ``up`` is the world direction that should appear *up* in the image (OpenCV's y axis points down, so the
    default world up is -y: the project's synthetic scenes use a y-down world like OpenCV's camera).
    """
    eye = np.asarray(eye, float)
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    down = -np.asarray(up, float)
    x = np.cross(down, z)
    if np.linalg.norm(x) < 1e-9:
        raise ConfigError("look_at: viewing direction is parallel to up; pick another up vector")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ eye
