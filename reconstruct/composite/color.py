"""Colour transfer: make the edited face's colour statistics match the plate's face region.

``gain`` (default of the composite): one robust per-channel gain (median of ``target / source``) measured on a
*ring along the mask boundary* (the caller passes the feather band as both masks), so the face's brightness and
colour match the plate exactly where the two meet -- the paste-back seam -- whatever the rest of the face does.
``lab``: Reinhard et al. 2001 ("Color transfer between images"): per-channel mean and standard deviation in
CIE Lab. ``histogram``: per-channel CDF matching in RGB (quantile mapping). All are measured only under the
given masks, and return float32 sRGB in [0, 1].
"""

from __future__ import annotations

import numpy as np

from ..errors import RenderError

METHODS = ("none", "gain", "lab", "mean", "histogram")

#: ``gain``: per-channel gains are clamped to this range (a ring mostly off the face must not blow the face up).
GAIN_RANGE = (0.5, 2.0)


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)


def _rgb(lab: np.ndarray) -> np.ndarray:
    import cv2

    return np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB), 0.0, 1.0)


def ring_gain(source: np.ndarray, target: np.ndarray, mask: np.ndarray, min_pixels: int = 20) -> np.ndarray | None:
    """(3,) float32 per-channel gain taking ``source`` to ``target`` under ``mask`` (both float32 sRGB in [0, 1]):
    the median of per-pixel ratios, robust to features that differ between face and plate (brows or lips crossing
    the ring), clamped to :data:`GAIN_RANGE`. Pixels too dark to give a ratio are left out; None when fewer than
    ``min_pixels`` remain."""
    ok = (np.asarray(mask) > 0.5) & (source.min(-1) > 0.02)
    if np.count_nonzero(ok) < min_pixels:
        return None
    gain = np.median(target[ok] / source[ok], axis=0)
    return np.clip(gain, *GAIN_RANGE).astype(np.float32)


def transfer_color(source: np.ndarray, target: np.ndarray, source_mask: np.ndarray, target_mask: np.ndarray,
                   method: str = "lab", min_pixels: int = 20) -> np.ndarray:
    """Recolour ``source`` so that its statistics under ``source_mask`` match ``target`` under ``target_mask``.

    Args:
        source: (H, W, 3) float32 sRGB in [0, 1], the edited face.
        target: (H, W, 3) float32 sRGB in [0, 1] (or uint8), the plate.
        source_mask, target_mask: (H, W) bool/float, > 0.5 where statistics are measured.
        method: ``"none"``, ``"gain"`` (robust per-channel gain, see the module docstring), ``"lab"`` (mean and
            std in Lab), ``"mean"`` (mean only, in Lab) or ``"histogram"``.

    Returns:
        (H, W, 3) float32 recoloured source (unchanged when either mask has fewer than ``min_pixels`` pixels).
    """
    if method not in METHODS:
        raise RenderError(f"unknown colour transfer {method!r}", hint=f"use one of {', '.join(METHODS)}")
    src = np.asarray(source, np.float32)
    if method == "none":
        return src
    tgt = np.asarray(target)
    tgt = tgt.astype(np.float32) / 255.0 if tgt.dtype == np.uint8 else tgt.astype(np.float32)
    sm, tm = np.asarray(source_mask) > 0.5, np.asarray(target_mask) > 0.5
    if method == "none" or sm.sum() < min_pixels or tm.sum() < min_pixels:
        return src
    if method == "gain":
        gain = ring_gain(src, tgt, sm & tm, min_pixels)
        return src if gain is None else np.clip(src * gain, 0.0, 1.0)
    if method in ("lab", "mean"):
        ls, lt = _lab(src), _lab(tgt)
        mu_s, mu_t = ls[sm].mean(0), lt[tm].mean(0)
        if method == "mean":
            return _rgb(ls - mu_s + mu_t)
        sd_s, sd_t = ls[sm].std(0) + 1e-6, lt[tm].std(0) + 1e-6
        return _rgb((ls - mu_s) * (sd_t / sd_s) + mu_t)
    out = src.copy()
    q = np.linspace(0.0, 1.0, 257)
    for c in range(3):
        qs = np.quantile(src[..., c][sm], q)
        qt = np.quantile(tgt[..., c][tm], q)
        qs = np.maximum.accumulate(qs + np.arange(qs.size) * 1e-9)  # strictly increasing for interp
        out[..., c] = np.interp(src[..., c], qs, qt)
    return np.clip(out, 0.0, 1.0)
