"""A frame as the age stage hands it to a method: the built-in ``demo`` face model posed in front of a pinhole
hero camera, its FrameFit, and a plate (the projected face region painted, so a test can check where an image edit
lands). No rendering, no detector, no fit stage: landmarks come from the fit exactly as in ``reconstruct run``."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np

from reconstruct.camera import CameraModel
from reconstruct.face.store import load_model_by_name
from reconstruct.fitting.result import FrameFit
from reconstruct.methods import FrameInput, MethodContext
from reconstruct.progress import NullProgress


class DemoModelOnly:
    """The smallest Components stand-in: just the ``demo`` face model source."""

    def get(self, kind, name):
        assert (kind, name) == ("face_model", "demo")
        return SimpleNamespace(load=lambda: load_model_by_name("demo"))

    def face_model(self, name):
        return self.get("face_model", name).load()


def demo_frame(frame: int = 0, size=(160, 120), dist: float = 0.45, shift=(0.0, 0.0)) -> tuple[FrameInput, np.ndarray]:
    """(FrameInput, projected face-region mask (H, W) bool)."""
    model = load_model_by_name("demo")
    w, h = size
    cam = CameraModel("hero", K=np.array([[1.6 * w, 0, (w - 1) / 2], [0, 1.6 * w, (h - 1) / 2], [0, 0, 1.0]]),
                      image_size=(w, h))
    R = np.diag([1.0, -1.0, -1.0])  # model +y up, +z out of the face -> camera y down, looking along +z
    t = np.array([shift[0], shift[1], dist])
    v = (model.vertices() @ R.T + t).astype(np.float32)
    fit = FrameFit(frame=frame, identity=np.zeros(model.n_identity, np.float32),
                   expression=np.zeros(model.n_expression, np.float32), R=R, t=t, scale=1.0, vertices=v)
    uv = cam.project(v[model.regions["face"]])
    face = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(face, np.round(cv2.convexHull(uv.astype(np.float32))).astype(np.int32).reshape(-1, 2), 1)
    rng = np.random.default_rng(frame)
    plate = (rng.uniform(40, 80, (h, w, 3)) + face[..., None] * np.array([150, 110, 90])).astype(np.uint8)
    return FrameInput(frame=frame, plate=plate, fit=fit, hero=cam), face.astype(bool)


def method_ctx(work_dir, options) -> MethodContext:
    return MethodContext(session=None, options=options, device="cpu", work_dir=work_dir, progress=NullProgress(),
                         components=DemoModelOnly(), fits=SimpleNamespace(model_name="demo"))
