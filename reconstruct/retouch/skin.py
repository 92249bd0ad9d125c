"""Age features reduced in image space: the wrinkle frequency band inside the age regions, blotches evened out,
the skin's low-frequency tone moved toward a reference. Pore-scale detail and film grain (the band finer than
the wrinkles) are never touched, so the skin keeps reading as a photograph.

Bands are difference-of-Gaussians of the luminance, sized in inter-ocular distances (IOD) so that they follow the
shot's scale: fine lines (forehead, crow's feet, under-eye) between 0.010 and 0.05 IOD, folds (nasolabial,
marionette) between 0.025 and 0.14 IOD, blotches between 0.05 and 0.30 IOD. Creases are darker than the skin
around them, so the dark half of a band is reduced fully and the bright half by 0.85; strong edges (a nostril, a
lid, a mole: band contrast far above a wrinkle's) are kept by a robust weight ``1 / (1 + (band / 0.15)^2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .blur import blur_window
from .regions import AGE_REGIONS
from .roi import mask_box

BANDS = {"lines": (0.010, 0.05), "folds": (0.025, 0.14)}
SPOT_BAND = (0.05, 0.30)
EDGE_CONTRAST = 0.15  # band contrast (0..1 sRGB) above which a feature is an edge to keep, not a wrinkle


@dataclass(frozen=True, slots=True)
class SkinSettings:
    """How strongly each age feature is reduced, 0 (untouched) to 1 (the band removed)."""

    forehead: float = 0.9
    crows_feet: float = 0.9
    under_eye: float = 0.75
    nasolabial: float = 0.65
    marionette: float = 0.65
    spots: float = 0.35
    tone: float = 0.3

    def strength(self, region: str) -> float:
        return float(getattr(self, region))


def luminance(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(H, W) Rec. 601 luma of an (H, W, 3) RGB image (``R * 0.299 + G * 0.587 + B * 0.114``, summed in that order;
    float32 for float32 images, float64 for float64 and integer ones); ``out``: an (H, W) array of that dtype to
    write it into (a window of a larger array included). One temporary, not four."""
    dtype = np.result_type(image, 0.299)
    if out is None:
        out = np.empty(image.shape[:-1], dtype)
    np.multiply(image[..., 0], 0.299, out=out)
    t = np.multiply(image[..., 1], 0.587, out=np.empty(out.shape, dtype))
    out += t
    np.multiply(image[..., 2], 0.114, out=t)
    out += t
    return out


def band(image: np.ndarray, lo_px: float, hi_px: float, box: tuple[slice, slice] | None = None) -> np.ndarray:
    """Difference of Gaussians ``G(lo) * image - G(hi) * image`` (the detail between the two scales); with ``box``
    only ``band(image, lo_px, hi_px)[box]``, computed on the part of the image it depends on (the same numbers:
    :func:`.blur.gaussian_blur_box`)."""
    from .blur import gaussian_blur, gaussian_blur_box

    lo, hi = max(lo_px, 0.3), max(hi_px, lo_px * 1.5, 0.5)
    if box is not None:
        return gaussian_blur_box(image, lo, box) - gaussian_blur_box(image, hi, box)
    return gaussian_blur(image, lo) - gaussian_blur(image, hi)


def _robust(b: np.ndarray) -> np.ndarray:
    """``1.0 + (b / EDGE_CONTRAST) ** 2`` in ``b``'s float type, in one new array (``x ** 2`` is ``x * x``)."""
    q = b / EDGE_CONTRAST
    q *= q
    q += 1.0
    return q


def _suppress(b: np.ndarray) -> np.ndarray:
    """How much of a band value is a wrinkle to remove: the dark half fully, the bright half 0.6, edges kept.
    ``(k / (1.0 + (b / EDGE_CONTRAST) ** 2)) * b`` with ``k`` float64 (so float64 from there), written into ``k``."""
    k = np.where(b < 0, 1.0, 0.85)
    np.divide(k, _robust(b), out=k)
    return np.multiply(k, b, out=k)


def retouch_skin(image: np.ndarray, masks: Mapping[str, np.ndarray], iod_px: float, settings: SkinSettings,
                 skin: np.ndarray | None = None, tone_gain: np.ndarray | None = None) -> np.ndarray:
    """Reduce age features of ``image`` ((H, W, 3) float32 sRGB in [0, 1]).

    Args:
        masks: region -> (H, W) weight in [0, 1] (:func:`.regions.region_masks`), names from :data:`AGE_REGIONS`.
        iod_px: the inter-ocular distance in pixels (sets the bands' scales).
        skin: (H, W) weight of skin for the blotch and tone steps (None: the union of the regions).
        tone_gain: (3,) per-channel gain toward a reference tone (luminance-neutral), applied with
            ``settings.tone`` under ``skin``; None skips it.

    Returns the retouched (H, W, 3) float32 image; pixels where every weight is 0 are returned unchanged.
    """
    out = np.asarray(image, np.float32).copy()
    if skin is None:
        skin = np.max(np.stack(list(masks.values())), axis=0) if masks else np.zeros(out.shape[:2], np.float32)
    # every step changes only pixels with a weight: the bands are blurs of the image (their context) computed for
    # the weights' bounding box (on the part of the image they reach), and so is the per-pixel arithmetic (the
    # same values, a fraction of the pixels)
    box = weights_box([skin, *masks.values()])
    if box is None:
        return np.clip(out, 0.0, 1.0)
    # the luminance on the window the bands read (each band's widest blur), not the whole image
    y = np.zeros(out.shape[:2], np.float32)
    reads = [blur_window(y.shape, box, max(hi * iod_px, lo * iod_px * 1.5, 0.5))[0] for lo, hi in BANDS.values()]
    win = (slice(min(r[0].start for r in reads), max(r[0].stop for r in reads)),
           slice(min(r[1].start for r in reads), max(r[1].stop for r in reads)))
    luminance(out[win], out=y[win])
    ob, yb = out[box], y[box]
    delta = np.zeros_like(yb)
    for kind, (lo, hi) in BANDS.items():
        w = np.zeros_like(yb)
        for region, k in AGE_REGIONS.items():
            if k == kind and region in masks:
                w = np.maximum(w, settings.strength(region) * masks[region][box])
        if w.any():  # ``delta += w * _suppress(...)``: the float64 product written over the float64 suppression
            s = _suppress(band(y, lo * iod_px, hi * iod_px, box))
            delta += np.multiply(s, w, out=s)
    # the (h, w) weights are applied channel by channel: the same float32 operations as broadcasting them over the
    # 3 channels, which ran numpy's inner loop 3 elements at a time (~3x slower)
    for c in range(3):
        ob[..., c] -= delta
    sb = skin[box]
    if settings.spots > 0 and sb.any():
        lo, hi = SPOT_BAND
        b = band(out, lo * iod_px, hi * iod_px, box)  # a new array: divided in place
        b /= _robust(b)
        ws = settings.spots * sb
        for c in range(3):
            ob[..., c] -= ws * b[..., c]
    if tone_gain is not None and settings.tone > 0 and sb.any():
        g = 1.0 + settings.tone * (np.asarray(tone_gain, np.float32) - 1.0)
        for c in range(3):
            ob[..., c] *= 1.0 + sb * (g[c] - 1.0)
    return np.clip(out, 0.0, 1.0, out=out)


def weights_box(weights) -> tuple[slice, slice] | None:
    """The slices of the bounding box of the pixels where any of ``weights`` ((H, W) arrays) is not 0; None if
    there is none."""
    any_w = np.zeros(np.shape(weights[0]), bool)
    nz = np.empty_like(any_w)  # one comparison buffer for all the weights
    for w in weights:
        any_w |= np.not_equal(w, 0, out=nz)
    box = mask_box(any_w)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    return slice(y0, y1), slice(x0, x1)


def tone_gain(reference_rgb: np.ndarray, current_rgb: np.ndarray) -> np.ndarray:
    """(3,) per-channel gain moving ``current_rgb``'s chromaticity to ``reference_rgb``'s (mean skin colours,
    linear or sRGB alike), with the luminance kept: ``luminance(current * gain) == luminance(current)``."""
    ref = np.asarray(reference_rgb, np.float64)
    cur = np.asarray(current_rgb, np.float64)
    ref_c = ref / max(float(luminance(ref[None])[0]), 1e-6)
    cur_c = cur / max(float(luminance(cur[None])[0]), 1e-6)
    g = ref_c / np.maximum(cur_c, 1e-6)
    g /= float(luminance((cur * g)[None])[0]) / max(float(luminance(cur[None])[0]), 1e-6)
    return np.clip(g, 0.5, 2.0).astype(np.float32)


def adaptive_skin(image: np.ndarray, prior: np.ndarray, spread: float = 3.0) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much each pixel of ``image`` ((H, W, 3) sRGB float in [0, 1]) looks like this
    face's own skin, learned from the pixels where ``prior`` (e.g. the model's skin region) is > 0.5: a robust
    (median / MAD) Gaussian in CIE Lab, chroma and lightness, so dark and light skin alike, under any light, while
    hair, brows, beard, lips and background fall away. Zero where ``prior`` has too few pixels to learn from."""
    import cv2

    sel = np.asarray(prior) > 0.5
    if np.count_nonzero(sel) < 50:  # ``sel.sum()``: the same count, without summing the bools as integers
        return np.zeros(image.shape[:2], np.float32)
    lab = cv2.cvtColor(np.clip(image, 0, 1).astype(np.float32, copy=False), cv2.COLOR_RGB2LAB)
    x = lab[sel]
    med = np.median(x, axis=0)
    mad = np.median(np.abs(x - med), axis=0) * 1.4826
    # floors: L in 0..100 (generous: shading across a face moves lightness far more than chroma), a/b in -100..100
    scale = np.maximum(mad * spread, np.array([25.0, 4.0, 4.0]))
    # ``(((lab - med) / scale) ** 2).sum(-1)`` channel by channel (the same sum, left to right: a reduction over a
    # last axis of 3 is slow), float32 differences scaled in float64 as there
    d2 = ((lab[..., 0] - med[0]) / scale[0]) ** 2
    d2 += ((lab[..., 1] - med[1]) / scale[1]) ** 2
    d2 += ((lab[..., 2] - med[2]) / scale[2]) ** 2
    return np.exp(-0.5 * d2).astype(np.float32)
