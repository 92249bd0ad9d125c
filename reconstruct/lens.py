"""The OpenCV lens models, written once: numpy for the camera model and the calibration, torch for the fits.

The numpy and torch functions are twins: the same formulas, in the same order, over the same coefficient layout
(``tests/test_lens.py`` holds both to ``cv2.projectPoints`` / ``cv2.fisheye.projectPoints``). Camera-frame
points ``(X, Y, Z)`` give normalised coordinates ``(x, y) = (X / Z, Y / Z)``; :func:`distort` maps them to distorted
normalised coordinates ``(x_d, y_d)`` and :func:`to_pixels` to pixels, ``u = fx x_d + s y_d + cx``, ``v = fy y_d +
cy`` (``s``: the skew ``K[0, 1]``, 0 for every camera OpenCV calibrates).

Pinhole (``cv::projectPoints``), coefficients ``(k1, k2, p1, p2[, k3[, k4, k5, k6[, s1, s2, s3, s4[, tau_x,
tau_y]]]])``: 4, 5, 8, 12 or 14 of them (0 also: no distortion; missing ones count as 0). With ``r2 = x^2 + y^2``::

    x' = x (1 + k1 r2 + k2 r2^2 + k3 r2^3) / (1 + k4 r2 + k5 r2^2 + k6 r2^3) + 2 p1 x y + p2 (r2 + 2 x^2)
         + s1 r2 + s2 r2^2                                                     (thin prism, 12+ coefficients)
    y' = y (...) / (...) + p1 (r2 + 2 y^2) + 2 p2 x y + s3 r2 + s4 r2^2
    (x_d, y_d, 1) ~ T (x', y', 1)                                              (tilted sensor, 14 coefficients)

``T = P_z(R) R`` with ``R = R_y(tau_y) R_x(tau_x)`` and ``P_z`` the projection back onto the plane ``z = 1`` along
the tilted optical axis (OpenCV's ``computeTiltProjectionMatrix``, Louhichi et al. 2007); multiplied out,
``T = [[c_x, 0, 0], [-s_x s_y, c_y, 0], [s_y, -c_y s_x, c_x c_y]]`` (``c_x = cos tau_x``, ``s_y = sin tau_y``, ...).

Fisheye (``cv::fisheye::projectPoints``, Kannala & Brandt 2006), coefficients ``(k1, k2, k3, k4)``::

    theta = atan(r),  theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8),
    (x_d, y_d) = (theta_d / r) (x, y)

At the origin ``theta_d / r`` is 1: numpy takes ``r = hypot(x, y)`` and 1 below ``r = 1e-12``, torch takes
``r = sqrt(r2 + 1e-30)`` (no branch, so that autograd stays finite there); elsewhere the two agree to rounding.

Bit-for-bit: the expressions keep the operation order of the project's earlier copies of this model (camera model,
calibration, fit), so pinhole results for up to 8 coefficients are unchanged to the last bit, and so are
``CameraModel``'s fisheye and the fit's (the calibration's own fisheye copy differed, ``(theta^2)^k`` for
``theta^(2k)`` and ``sqrt`` for ``hypot``: its fisheye results move by rounding); the thin-prism and tilt terms are
only evaluated for cameras that have them.

The torch functions take a coefficient tensor whose last axis is the slot axis (a
:class:`reconstruct.fitting.projection.CameraStack` pads every camera to its widest one: 8, 12 or 14 slots; a fisheye
camera uses slots 0-3).

Only torch is given an analytic Jacobian (:func:`distort_jacobian_torch`, pinhole): the landmark fit is the caller
that needs one; the calibration differentiates its whole projection numerically, over the intrinsics too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    import torch

#: coefficient counts of OpenCV's pinhole model (0: no distortion)
PINHOLE_COUNTS = (0, 4, 5, 8, 12, 14)
#: coefficient count of OpenCV's fisheye model
FISHEYE_COUNT = 4


def check_count(n: int, model: str, what: str = "lens") -> None:
    """Raise :class:`ConfigError` unless ``n`` coefficients fit ``model`` (``"pinhole"`` or ``"fisheye"``)."""
    if model == "fisheye":
        if n != FISHEYE_COUNT:
            raise ConfigError(f"fisheye {what} needs 4 distortion coefficients (k1..k4), got {n}")
    elif model == "pinhole":
        if n not in PINHOLE_COUNTS:
            raise ConfigError(f"{what} has {n} distortion coefficients; expected 4, 5, 8, 12 or 14 "
                              "(OpenCV's k1 k2 p1 p2 [k3 [k4 k5 k6 [s1 s2 s3 s4 [tau_x tau_y]]]])")
    else:
        raise ConfigError(f"{what} has lens model {model!r}; expected 'pinhole' or 'fisheye'")


# -- numpy ----------------------------------------------------------------------------------------------------------
def distort(xn: np.ndarray, dist: np.ndarray, model: str = "pinhole") -> np.ndarray:
    """Normalised image coordinates -> distorted normalised coordinates (see the module docstring).

    Args:
        xn: (..., 2) float64 ``(X / Z, Y / Z)``.
        dist: (D,) float64 coefficients: pinhole D in {0, 4, 5, 8, 12, 14}, fisheye D = 4.
        model: ``"pinhole"`` or ``"fisheye"``.

    Returns:
        (..., 2) float64 ``(x_d, y_d)``.
    """
    xn = np.asarray(xn, dtype=np.float64)
    d = np.asarray(dist, dtype=np.float64).reshape(-1)
    if xn.shape[-1:] != (2,):
        raise ConfigError(f"normalised coordinates have shape {xn.shape}, expected (..., 2)")
    check_count(d.size, model)
    x, y = xn[..., 0], xn[..., 1]
    if model == "fisheye":
        r = np.hypot(x, y)
        th = np.arctan(r)
        th_d = th * (1 + d[0] * th**2 + d[1] * th**4 + d[2] * th**6 + d[3] * th**8)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(r > 1e-12, th_d / r, 1.0)
        return np.stack([x * s, y * s], axis=-1)
    k = np.zeros(max(8, d.size))
    k[: d.size] = d
    k1, k2, p1, p2, k3, k4, k5, k6 = k[:8]
    r2 = x * x + y * y
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    if d.size >= 12:  # thin prism
        s1, s2, s3, s4 = k[8:12]
        xd = xd + s1 * r2 + s2 * r2**2
        yd = yd + s3 * r2 + s4 * r2**2
    if d.size == 14:  # tilted sensor
        cx, sx, cy, sy = np.cos(k[12]), np.sin(k[12]), np.cos(k[13]), np.sin(k[13])
        w = sy * xd - cy * sx * yd + cx * cy
        xd, yd = cx * xd / w, (-sx * sy * xd + cy * yd) / w
    return np.stack([xd, yd], axis=-1)


def to_pixels(xd: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Distorted normalised coordinates (..., 2) -> pixels (..., 2) through the (3, 3) intrinsic matrix ``K``
    (skew ``K[0, 1]`` included)."""
    u = K[0, 0] * xd[..., 0] + K[0, 1] * xd[..., 1] + K[0, 2]
    v = K[1, 1] * xd[..., 1] + K[1, 2]
    return np.stack([u, v], axis=-1)


# -- torch ------------------------------------------------------------------------------------------------------------
def _slots(dist: "torch.Tensor") -> "torch.Tensor":
    """Coefficients (..., D) -> (..., max(D, 8)), zero-padded; checks D."""
    D = dist.shape[-1]
    if D not in PINHOLE_COUNTS[1:]:
        raise ConfigError(f"distortion tensor has {D} coefficient slots; expected 4, 5, 8, 12 or 14")
    if D < 8:
        import torch.nn.functional as F

        dist = F.pad(dist, (0, 8 - D))
    return dist


def distort_torch(xn: "torch.Tensor", dist: "torch.Tensor", fisheye: "torch.Tensor | None" = None) -> "torch.Tensor":
    """Torch twin of :func:`distort`, batched over cameras (differentiable).

    Args:
        xn: (..., 2) normalised coordinates.
        dist: (..., D) coefficients, D in {4, 5, 8, 12, 14}, broadcasting against ``xn[..., 0]`` (e.g. ``(C, 1, D)``
            for ``xn`` of shape ``(T, C, N, 2)``); a fisheye camera's k1..k4 sit in slots 0-3.
        fisheye: bool, broadcasting like ``dist[..., 0]``: cameras that use the fisheye model (None: none).

    Returns:
        (..., 2) distorted normalised coordinates.
    """
    import torch

    x, y = xn[..., 0], xn[..., 1]
    d = _slots(dist)
    k1, k2, p1, p2, k3, k4, k5, k6 = (d[..., i] for i in range(8))
    r2 = x * x + y * y
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    if d.shape[-1] >= 12:  # thin prism
        s1, s2, s3, s4 = (d[..., i] for i in range(8, 12))
        xd = xd + s1 * r2 + s2 * r2**2
        yd = yd + s3 * r2 + s4 * r2**2
    if d.shape[-1] == 14:  # tilted sensor
        cx, sx, cy, sy = torch.cos(d[..., 12]), torch.sin(d[..., 12]), torch.cos(d[..., 13]), torch.sin(d[..., 13])
        w = sy * xd - cy * sx * yd + cx * cy
        xd, yd = cx * xd / w, (-sx * sy * xd + cy * yd) / w
    if fisheye is not None and bool(fisheye.any()):
        r = torch.sqrt(r2 + 1e-30)
        th = torch.atan(r)
        th_d = th * (1 + k1 * th**2 + k2 * th**4 + p1 * th**6 + p2 * th**8)  # fisheye k1..k4 sit in slots 0..3
        s = th_d / r
        xd = torch.where(fisheye, x * s, xd)
        yd = torch.where(fisheye, y * s, yd)
    return torch.stack([xd, yd], dim=-1)


def distort_jacobian_torch(xn: "torch.Tensor", dist: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Pinhole :func:`distort_torch` and its analytic Jacobian ``d(x_d, y_d) / d(x, y)``.

    Args:
        xn: (..., 2) normalised coordinates. dist: (..., D) pinhole coefficients as in :func:`distort_torch`.

    Returns:
        ``(xd, J)``: (..., 2) distorted normalised coordinates and (..., 2, 2) ``J[..., i, j] = d xd_i / d xn_j``.
    """
    import torch

    x, y = xn[..., 0], xn[..., 1]
    d = _slots(dist)
    k1, k2, p1, p2, k3, k4, k5, k6 = (d[..., i] for i in range(8))
    r2 = x * x + y * y
    num = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    den = 1 + k4 * r2 + k5 * r2**2 + k6 * r2**3
    rad = num / den
    drad = ((k1 + 2 * k2 * r2 + 3 * k3 * r2**2) * den - num * (k4 + 2 * k5 * r2 + 3 * k6 * r2**2)) / den**2  # d/d r2
    xd = x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    a11 = rad + 2 * x * x * drad + 2 * p1 * y + 6 * p2 * x
    a12 = 2 * x * y * drad + 2 * p1 * x + 2 * p2 * y
    a21 = 2 * x * y * drad + 2 * p1 * x + 2 * p2 * y
    a22 = rad + 2 * y * y * drad + 6 * p1 * y + 2 * p2 * x
    if d.shape[-1] >= 12:  # thin prism: d(s r2 + s' r2^2)/dx = 2 x (s + 2 s' r2)
        s1, s2, s3, s4 = (d[..., i] for i in range(8, 12))
        xd = xd + s1 * r2 + s2 * r2**2
        yd = yd + s3 * r2 + s4 * r2**2
        gx, gy = 2 * (s1 + 2 * s2 * r2), 2 * (s3 + 2 * s4 * r2)
        a11, a12 = a11 + gx * x, a12 + gx * y
        a21, a22 = a21 + gy * x, a22 + gy * y
    if d.shape[-1] == 14:  # tilted sensor: (xd, yd) = (T0 . v, T1 . v) / (T2 . v), v = (x', y', 1)
        cx, sx, cy, sy = torch.cos(d[..., 12]), torch.sin(d[..., 12]), torch.cos(d[..., 13]), torch.sin(d[..., 13])
        t10, t20, t21 = -sx * sy, sy, -cy * sx
        w = t20 * xd + t21 * yd + cx * cy
        u0, u1 = cx * xd / w, (t10 * xd + cy * yd) / w
        # d(u0, u1)/d(x', y') = (T[i, j] - u_i T[2, j]) / w
        b11, b12 = (cx - u0 * t20) / w, -u0 * t21 / w
        b21, b22 = (t10 - u1 * t20) / w, (cy - u1 * t21) / w
        a11, a12, a21, a22 = (b11 * a11 + b12 * a21, b11 * a12 + b12 * a22,
                              b21 * a11 + b22 * a21, b21 * a12 + b22 * a22)
        xd, yd = u0, u1
    J = torch.stack([torch.stack([a11, a12], -1), torch.stack([a21, a22], -1)], -2)
    return torch.stack([xd, yd], dim=-1), J


def to_pixels_torch(xd: "torch.Tensor", K: "torch.Tensor") -> "torch.Tensor":
    """Torch twin of :func:`to_pixels`: (..., 2) distorted normalised coordinates and (..., 3, 3) intrinsics
    broadcasting against ``xd[..., 0]`` -> (..., 2) pixels."""
    import torch

    u = K[..., 0, 0] * xd[..., 0] + K[..., 0, 1] * xd[..., 1] + K[..., 0, 2]
    v = K[..., 1, 1] * xd[..., 1] + K[..., 1, 2]
    return torch.stack([u, v], dim=-1)
