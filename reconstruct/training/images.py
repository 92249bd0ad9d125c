"""Image helpers for training: PNG previews, tensor <-> image conversion, PSNR."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import MethodError
from ..session import atomic_path


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 (H, W, 3) or float [0, 1] image as PNG (atomically)."""
    img = to_uint8(rgb)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise MethodError(f"could not write preview {path}", hint="check free space and permissions")


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as RGB float32 (H, W, 3) in [0, 1]."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise MethodError(f"cannot read image {path}", hint="use PNG or JPEG files")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_tensor(imgs: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """(N, H, W, C) or (H, W, C) float images -> (N, C, H, W) float32 tensor."""
    a = np.asarray(imgs, np.float32)
    if a.ndim == 3:
        a = a[None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(device)


def to_image(t: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) or (C, H, W) tensor -> (N, H, W, C) or (H, W, C) float32 numpy."""
    a = t.detach().float().cpu().numpy()
    return a.transpose(1, 2, 0) if a.ndim == 3 else a.transpose(0, 2, 3, 1)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two float images in [0, 1] (optionally only where ``mask`` (H, W) > 0.5)."""
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    if mask is not None:
        m = np.asarray(mask) > 0.5
        d = d[..., m, :] if d.ndim == 4 else d[m]
    mse = float(d.mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def tile(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Stack equally sized (H, W, 3) images into a grid (rows of columns), uint8."""
    return np.concatenate([np.concatenate([to_uint8(x) for x in r], axis=1) for r in rows], axis=0)
