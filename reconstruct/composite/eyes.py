"""The performance's eyes: the lid apertures found by the landmark detector on the plate, kept from the plate.

Image-space methods (FRAN, deepfake) regenerate the whole face crop, eyes included; a decoder that has not seen
this gaze, this blink, this catch-light gives the stiff or wandering eyes that give a swap away. Where a method
does not say which pixels the plate must keep (the digital-human path keeps its model's ``eyes`` region), the
composite keeps the plate inside the lid apertures, so gaze, blinks and reflections stay the actor's own.
"""

from __future__ import annotations

import numpy as np

#: ordered lid-aperture loops per landmark scheme (subject's right eye, left eye). MediaPipe: upper lid from the
#: outer corner to the inner one, lower lid back (the FACEMESH_RIGHT_EYE / LEFT_EYE contours); iBUG 68: 36-41, 42-47.
EYE_APERTURES = {
    "mediapipe478": ((33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
                     (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)),
    "ibug68": (tuple(range(36, 42)), tuple(range(42, 48))),
}


def eye_apertures(landmarks: np.ndarray, scheme: str, shape: tuple[int, int], grow_px: int = 2) -> np.ndarray | None:
    """(H, W) bool: inside either eye's lid aperture (grown by ``grow_px``), from one image's landmarks (L, 2)
    pixels of ``scheme``. None when the scheme has no aperture loops or no loop is complete (a missing face)."""
    import cv2

    loops = EYE_APERTURES.get(scheme)
    pts = np.asarray(landmarks, np.float64)
    if loops is None or pts.ndim != 2 or pts.shape[0] <= max(max(lp) for lp in loops):
        return None
    mask = np.zeros(shape, np.uint8)
    drawn = False
    for loop in loops:
        p = pts[list(loop)]
        if not np.all(np.isfinite(p)):
            continue
        cv2.fillPoly(mask, [np.round(p * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
        drawn = True
    if not drawn:
        return None
    if grow_px > 0:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1, 2 * grow_px + 1)))
    return mask > 0

