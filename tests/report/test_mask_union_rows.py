"""The flicker's union mask from the patch's rows only (reconstruct/report/union.py): bit for bit the whole mask's
downscale, for odd offsets, patches at and over the plate's edge, and plate sizes with and without an integer
factor."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from reconstruct.report.data import MAX_ANALYSIS_WIDTH, ReportData, _downscale
from reconstruct.report.union import _area_fast, downscaled_mask_rows


def _write_patch(folder, frame: int, patch: np.ndarray, offset: tuple[int, int], size: tuple[int, int]) -> None:
    cv2.imwrite(str(folder / f"{frame:06d}_mask.png"), patch)
    (folder / f"{frame:06d}.json").write_text(json.dumps({"offset_px": list(offset), "plate_size": list(size)}))


@pytest.mark.parametrize("size", [(1920, 1080), (2880, 1620), (1280, 1024), (960, 540)])
def test_rows_equal_the_whole_masks_downscale(tmp_path, size):
    rng = np.random.default_rng(7)
    W, H = size
    d = ReportData(None, mask_dir=tmp_path)
    cases = [((301, 257), (417, 513)), ((300, 256), (416, 512)), ((0, 0), (40, 33)), ((W - 35, H - 21), (35, 21)),
             ((W - 20, H - 9), (64, 48)), ((17, H - 1), (30, 30))]
    for frame, ((x, y), (w, h)) in enumerate(cases):
        patch = rng.integers(0, 65536, (h, w), dtype=np.uint16)
        patch[: h // 3] = 65535  # runs of equal values too
        _write_patch(tmp_path, frame, patch, (x, y), size)
        rows, r0, shape = downscaled_mask_rows(d, frame, size, MAX_ANALYSIS_WIDTH)
        got = np.zeros(shape)
        got[r0:r0 + rows.shape[0]] = rows
        want = np.clip(_downscale(d.mask(frame, (H, W)), MAX_ANALYSIS_WIDTH).astype(np.float64), 0, 1)
        assert got.shape == want.shape and got.tobytes() == want.tobytes(), (size, (x, y), (w, h))


def test_without_a_patch_none():
    assert downscaled_mask_rows(ReportData(None), 0, (1920, 1080), MAX_ANALYSIS_WIDTH) is None


def test_area_fast_factor_follows_opencv_test():
    assert _area_fast(1920, 960) == 2 and _area_fast(1080, 540) == 2
    assert _area_fast(1280, 960) is None and _area_fast(1024, 768) is None
