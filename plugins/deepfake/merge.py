"""Deepfake merge: encode the plate face, decode it with the young decoder, colour-match, shape the mask and warp
back into plate pixels."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch

from reconstruct.errors import MethodError
from reconstruct.training.align import align_matrix, warp_to_crop, warp_to_plate

from .net import FaceSwapAE

ColourMode = Literal["none", "mean-std", "histogram"]
COLOUR_MODES = ("none", "mean-std", "histogram")


def colour_transfer(src: np.ndarray, ref: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Match ``src``'s colours to ``ref`` inside ``mask`` (all (S, S, 3) float RGB [0, 1], mask (S, S)).

    ``mean-std``: Reinhard et al. 2001 -- per-channel mean and standard deviation in CIE Lab;
    ``histogram``: per-RGB-channel histogram (CDF) matching; ``none``: unchanged.
    """
    if mode == "none":
        return src
    sel = mask > 0.5
    if sel.sum() < 16:
        return src
    if mode == "mean-std":
        a = cv2.cvtColor(np.clip(src, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
        b = cv2.cvtColor(np.clip(ref, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
        ma, sa = a[sel].mean(0), a[sel].std(0) + 1e-6
        mb, sb = b[sel].mean(0), b[sel].std(0)
        out = (a - ma) / sa * sb + mb
        return np.clip(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2RGB), 0, 1)
    if mode == "histogram":
        out = src.copy()
        q = np.linspace(0, 1, 257)
        for c in range(3):
            sq = np.quantile(src[..., c][sel], q)
            rq = np.quantile(ref[..., c][sel], q)
            out[..., c] = np.interp(src[..., c], sq, rq)
        return np.clip(out, 0, 1)
    raise MethodError(f"unknown colour transfer mode {mode!r}", hint=f"use one of {', '.join(COLOUR_MODES)}")


def shape_mask(mask: np.ndarray, erode_px: float, blur_px: float) -> np.ndarray:
    """Erode (shrink) then Gaussian-blur a (S, S) mask; sizes in crop pixels (0 = off). Values below 1/255 (no
    visible change) become exactly 0 so the plate stays untouched there."""
    m = np.clip(mask, 0, 1).astype(np.float32)
    if erode_px > 0:
        k = int(round(erode_px)) * 2 + 1
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if blur_px > 0:
        m = cv2.GaussianBlur(m, (0, 0), sigmaX=float(blur_px))
    m[m < 1.0 / 255.0] = 0.0
    return m


@torch.no_grad()
def swap_crop(model: FaceSwapAE, crop: np.ndarray, which: str = "young",
              device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(S, S, 3) aligned crop -> decoded (S, S, 3) RGB and (S, S) mask through decoder ``which``."""
    x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None].float().to(device)
    rgb, m = model(x, which)
    return rgb[0].permute(1, 2, 0).cpu().numpy(), m[0, 0].cpu().numpy()


def hull_mask(points: np.ndarray, shape: tuple[int, int], margin: float) -> np.ndarray:
    """(H, W) float32 mask of the convex hull of 68 iBUG landmarks (plate pixels), grown by ``margin`` times the
    inter-ocular distance and feathered over a tenth of it."""
    import cv2

    pts = np.asarray(points, np.float64).reshape(-1, 2)
    iod = float(np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0))) if len(pts) >= 48 else float(np.ptp(pts[:, 0]))
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(pts).astype(np.int32)), 255)
    grow = int(round(max(margin, 0.0) * iod))
    if grow > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    soft = cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), sigmaX=max(iod / 10.0, 0.5))
    soft[m == 0] = 0.0  # the feather stays inside the grown hull
    return soft


def merge_face(model: FaceSwapAE, plate: np.ndarray, points: np.ndarray, *, coverage: float, colour: str = "mean-std",
               erode: float = 0.0, blur: float = 2.0, hull_margin: float = 0.25,
               device: str = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Swap the face on ``plate`` (H, W, 3 uint8 or float) to the young identity.

    Returns (image (H, W, 3) float32 [0, 1] = swapped face under the mask and the plate elsewhere, mask (H, W)
    float32 [0, 1], crop-space swapped face (S, S, 3) for previews). ``erode``/``blur`` are in crop pixels.
    """
    f = plate.astype(np.float32) / 255.0 if plate.dtype == np.uint8 else plate.astype(np.float32)
    size = model.size
    M = align_matrix(points, size, coverage)
    crop = warp_to_crop(f, M, size)
    rgb, m = swap_crop(model, crop, "young", device)
    rgb = colour_transfer(rgb, crop, m, colour)
    m = shape_mask(m, erode, blur)
    h, w = f.shape[:2]
    # warp back (pixels outside the crop get mask 0); a crop smaller than the plate face is upscaled (softer)
    img_back = warp_to_plate(rgb.astype(np.float32), M, (h, w))
    mask_back = np.clip(warp_to_plate(m.astype(np.float32), M, (h, w)), 0, 1)
    if hull_margin >= 0 and len(points) >= 68:  # iBUG 68 points outline the face; 5 points do not
        mask_back = np.minimum(mask_back, hull_mask(points, (h, w), hull_margin))
    image = np.where(mask_back[..., None] > 0, img_back, f).astype(np.float32)
    return image, mask_back.astype(np.float32), rgb.astype(np.float32)
