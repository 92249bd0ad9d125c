"""Example third-party plugin: the ``example_smooth`` aging method.

Image-space method: returns the plate filtered with an edge-preserving bilateral filter, and a feathered mask
covering the face (the convex hull of the fit's vertices projected into the hero camera; without a fit, a centred
ellipse). Not identity-changing: it softens skin, it does not replace the person.
"""

from __future__ import annotations

import numpy as np

from reconstruct import hookimpl
from reconstruct.methods import BaseMethod, FaceEdit, FrameInput, MethodContext

__version__ = "0.2.0"


class ExampleSmooth(BaseMethod):
    """Soft skin smoothing inside the face (example third-party method)."""

    name = "example_smooth"
    identity_changing = False

    def settings(self, ctx: MethodContext):
        return {"strength": ctx.option("example_smooth.strength", 0.6, float), "version": __version__}

    def apply(self, ctx: MethodContext, frame: FrameInput) -> FaceEdit:
        import cv2

        strength = float(self.settings(ctx)["strength"])
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
