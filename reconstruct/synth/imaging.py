"""How a synthetic camera turns the lit scene into stored pixels: lighting per sensor, exposure, optics, noise.

Hero (RGB): a directional key light from above-left-front plus ambient, over a soft grey-blue backdrop.
IR witnesses (grey): lit by their own on-axis IR illuminator (a light from the camera's direction) and the set's key
light (tungsten emits IR), skin rendered
from the albedo's luminance with reduced colour contrast, their own exposure gain and stronger sensor noise.
Both: a slight optical blur (sigma 0.6 px), sRGB tone curve, Gaussian noise, 8-bit quantisation.
"""

from __future__ import annotations

import numpy as np

from ..camera import CameraModel
from ..face.model import FaceModel
from ..render import Lighting, RendererBase, linear_to_srgb, render_meshes
from ..rig import CameraSpec
from .scene import HeadState, key_light, posed_meshes

#: Sensor noise (8-bit grey levels, standard deviation).
NOISE = {"rgb": 1.5, "ir": 3.0}


def _backdrop(h: int, w: int, sensor: str) -> np.ndarray:
    yy = np.linspace(0, 1, h)[:, None]
    xx = np.linspace(-1, 1, w)[None, :]
    base = 0.16 - 0.07 * yy - 0.03 * xx ** 2
    if sensor == "ir":
        return np.repeat(((base * 0.6)[..., None]), 3, axis=2).astype(np.float32)
    return np.stack([base * 0.85, base * 0.95, base * 1.1], axis=-1).astype(np.float32)


def camera_lighting(cam: CameraModel, sensor: str) -> Lighting:
    """The lights a camera sees the face under (world frame)."""
    if sensor == "ir":
        towards = cam.center / max(np.linalg.norm(cam.center), 1e-9)  # from the face towards the camera
        # the witness's own on-axis IR illuminator plus the set's key light (tungsten keys emit plenty of IR)
        key = key_light()
        return Lighting(ambient=np.full(3, 0.15),
                        directions=np.concatenate([towards[None] + np.array([[0.0, -0.25, 0.0]]), key.directions]),
                        colors=np.array([[0.45] * 3, [0.4] * 3]))
    return key_light()


def exposure_gain(spec: CameraSpec) -> float:
    """Relative brightness from the exposure time (square-root law keeps every camera usable)."""
    return float(np.clip((spec.exposure_us / 8000.0) ** 0.5, 0.6, 1.5)) * (1.1 if spec.sensor == "ir" else 1.0)


def render_view(renderer: RendererBase, model: FaceModel, state: HeadState, cam: CameraModel, spec: CameraSpec,
                rng: np.random.Generator, flash: bool = False) -> np.ndarray:
    """The stored image of one camera for one head state: RGB ``uint8 (H, W, 3)`` or IR grey ``uint8 (H, W)``."""
    import cv2

    _, meshes = posed_meshes(model, state)
    w, h = cam.image_size
    out = render_meshes(renderer, meshes, cam, camera_lighting(cam, spec.sensor))
    img = _backdrop(h, w, spec.sensor)
    m = out.mask
    if spec.sensor == "ir":
        # IR sees luminance-like reflectance: skin colour differences shrink, painted features keep their contrast
        lum = out.image[m] @ np.array([0.42, 0.46, 0.12], np.float32)
        img[m] = np.repeat(lum[:, None], 3, axis=1)
    else:
        img[m] = out.image[m]
    img = img * exposure_gain(spec)
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    enc = linear_to_srgb(img) * 255.0
    if flash:
        enc = enc + 150.0
    enc = enc + rng.normal(0.0, NOISE.get(spec.sensor, 2.0), enc.shape[:2])[..., None]
    img8 = np.clip(np.rint(enc), 0, 255).astype(np.uint8)
    if spec.channels == 1:
        return np.ascontiguousarray(img8[..., 1])
    return img8
