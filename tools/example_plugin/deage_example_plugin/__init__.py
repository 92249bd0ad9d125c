"""Example third-party plugin: the ``example_smooth`` aging method.

Image-space method: returns the plate filtered with an edge-preserving bilateral filter, and a feathered mask
covering the face (the convex hull of the fit's vertices projected into the hero camera; without a fit, a centred
ellipse). Not identity-changing: it softens skin, it does not replace the person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reconstruct import hookimpl
from reconstruct.methods import BaseMethod, FaceEdit, FrameInput, MethodContext
from reconstruct.options import option

__version__ = "0.2.0"


@dataclass(frozen=True, slots=True)
class ExampleSmoothSettings:
    """``--option example_smooth.KEY=VALUE`` (checked and parsed by the host before any stage runs)."""

    strength: float = option(0.6, "how much of the smoothed image shows inside the face, 0..1")

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"example_smooth.strength={self.strength}: must be in [0, 1]")


class ExampleSmooth(BaseMethod):
    """Soft skin smoothing inside the face (example third-party method)."""

    name = "example_smooth"
    identity_changing = False
    Settings = ExampleSmoothSettings  # its options; the age stage's cache key holds the parsed values

    def settings(self, ctx: MethodContext):
        return {"version": __version__}  # what else changes the output (the code's version)

    def apply(self, ctx: MethodContext, frame: FrameInput) -> FaceEdit:
        import cv2

        strength = self.own_settings(ctx).strength
        plate = frame.plate
        h, w = plate.shape[:2]
        smooth = cv2.bilateralFilter(plate, d=9, sigmaColor=40 * strength + 1, sigmaSpace=7)
        mask = np.zeros((h, w), np.uint8)
        if frame.fit is not None and frame.hero is not None:
            uv = frame.hero.project(frame.fit.vertices)
            uv = uv[np.isfinite(uv).all(1)].astype(np.int32)
            if len(uv) >= 3:
                cv2.fillConvexPoly(mask, cv2.convexHull(uv), 255)
        if not mask.any():
            cv2.ellipse(mask, (w // 2, h // 2), (w // 6, h // 4), 0, 0, 360, 255, -1)
        soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigmaX=max(h, w) / 100)
        image = smooth.astype(np.float32) / 255.0
        return FaceEdit(frame=frame.frame, kind="image", image=image, mask=soft * strength,
                        info={"strength": strength})


@hookimpl
def register_aging_methods():
    return [ExampleSmooth]
