"""FRAN inference: align the face, run the U-Net in blended sliding windows, paste the delta back, measure flicker.

Sliding windows: the aligned crop is padded (reflect) to cover whole windows; each window's output delta is
weighted by a separable Hann-shaped blend mask (floor 1e-3 so borders still count) and the weighted sum is
normalised, so seams vanish for any stride <= window and any image size.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from reconstruct.training.align import align_matrix, warp_to_crop, warp_to_plate

from .net import FranUNet
from .train import age_input


def blend_window(n: int) -> np.ndarray:
    """(n, n) float32 blend weights: Hann squared-sine profile per axis, floor 1e-3."""
    w = np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2
    return np.maximum(np.outer(w, w), 1e-3).astype(np.float32)


def _starts(length: int, window: int, stride: int) -> list[int]:
    if length <= window:
        return [0]
    s = list(range(0, length - window + 1, stride))
    if s[-1] != length - window:
        s.append(length - window)
    return s


@torch.no_grad()
def reage(net: FranUNet, image: np.ndarray, skin: np.ndarray, input_age: float, target_age: float, *,
          window: int = 512, stride: int = 256, device: str = "cpu") -> np.ndarray:
    """Re-age an (H, W, 3) float RGB image at any resolution; ``skin`` (H, W) in [0, 1] scales the age maps.

    Returns the (H, W, 3) float32 delta (output - input) so callers can mask, smooth or paste it.
    """
    h, w = image.shape[:2]
    m = net.multiple
    h0, w0 = -(-h // m) * m, -(-w // m) * m  # sizes rounded up to the network's multiple
    win = min(max(m, (window // m) * m), max(h0, w0))
    ph, pw = max(win, h0), max(win, w0)
    pad = ((0, ph - h), (0, pw - w))
    mode = "reflect" if ph - h < h and pw - w < w else "edge"
    img = np.pad(image.astype(np.float32), pad + ((0, 0),), mode=mode)
    sk = np.pad(skin.astype(np.float32), pad, mode="constant")
    acc = np.zeros((ph, pw, 3), np.float32)
    wsum = np.zeros((ph, pw, 1), np.float32)
    bw = blend_window(win)[..., None]
    for y in _starts(ph, win, stride):
        for x in _starts(pw, win, stride):
            t = torch.from_numpy(np.ascontiguousarray(img[y:y + win, x:x + win].transpose(2, 0, 1)))[None].to(device)
            s = torch.from_numpy(np.ascontiguousarray(sk[y:y + win, x:x + win]))[None, None].to(device)
            a = torch.tensor([float(input_age)], device=device)
            b = torch.tensor([float(target_age)], device=device)
            out = net(age_input(t, s, a, b))
            delta = (out - t)[0].permute(1, 2, 0).cpu().numpy()
            acc[y:y + win, x:x + win] += delta * bw
            wsum[y:y + win, x:x + win] += bw
    return (acc / wsum)[:h, :w]


def reage_face(net: FranUNet, plate: np.ndarray, points: np.ndarray, skin: np.ndarray, input_age: float,
               target_age: float, *, size: int, coverage: float, window: int, stride: int, feather: float | None = None,
               device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Align the face of ``plate`` (H, W, 3 float [0, 1]) to a ``size`` px crop, re-age it, and return the plate-space
    delta (H, W, 3) and paste mask (H, W) = skin mask inside the crop, feathered by ``feather`` crop pixels (default
    ``size / 128``; the composite stage feathers again)."""
    h, w = plate.shape[:2]
    M = align_matrix(points, size, coverage)
    crop = warp_to_crop(plate.astype(np.float32), M, size)
    skin_c = cv2.warpAffine(skin.astype(np.float32), M, (size, size), flags=cv2.INTER_LINEAR)
    delta_c = reage(net, crop, skin_c, input_age, target_age, window=window, stride=stride, device=device)
    feather = size / 128.0 if feather is None else feather
    mask_c = cv2.GaussianBlur(skin_c, (0, 0), feather) if feather > 0 else skin_c
    delta = warp_to_plate(delta_c, M, (h, w))
    mask = np.clip(warp_to_plate(mask_c, M, (h, w)), 0, 1)
    return delta.astype(np.float32), mask.astype(np.float32)


def flicker(frames: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """Mean absolute temporal difference inside the masks: mean over t of mean_{m_t * m_t-1} |f_t - f_{t-1}|."""
    vals = []
    for t in range(1, len(frames)):
        m = (masks[t] > 0.5) & (masks[t - 1] > 0.5)
        if m.any():
            vals.append(float(np.abs(frames[t].astype(np.float64) - frames[t - 1])[m].mean()))
    return float(np.mean(vals)) if vals else float("nan")
