"""Compositing on the edit's region: an edit that is a crop of the plate is composited on that crop (grown by what
the compositor needs to see) and the whole frame is made only when the plate is written. Same files as the
whole-frame composite, bit for bit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reconstruct.composite import (BUILTIN_COMPOSITORS, AlphaCompositor, CompositeCrop, CompositeSettings,
                                   composite_face, composite_region, context_px)
from reconstruct.composite.outputs import PlateWriter, frame_arrays, preview_frame, to_uint16
from reconstruct.errors import RenderError
from reconstruct.render import srgb_to_linear


def _scene(h=600, w=800, seed=0):
    rng = np.random.default_rng(seed)
    plate = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    cov = (((yy - 301) / 60.0) ** 2 + ((xx - 437) / 50.0) ** 2 < 1).astype(np.float32)
    face = np.clip(0.5 + 0.2 * np.sin(xx / 5.0)[..., None] + rng.normal(0, 0.02, (h, w, 3)), 0, 1).astype(np.float32)
    face = np.where(cov[..., None] > 0, face, plate / np.float32(255)).astype(np.float32)
    ys, xs = np.nonzero(cov)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    return plate, face, cov, box, (int(xs.min()), int(ys.min()))


def test_exact_alpha_on_the_crop_is_the_whole_frame_composite_bit_for_bit(tmp_path):
    plate, face, cov, box, origin = _scene()
    s = CompositeSettings(color="none")
    full = composite_face(plate, face, cov, s, AlphaCompositor(), alpha=cov)
    crop = composite_region(plate, face[box], cov[box], s, AlphaCompositor(), alpha=cov[box], origin=origin)
    assert crop.origin == origin and crop.image.shape[:2] == cov[box].shape  # no margin for a ready alpha
    png, lin = frame_arrays(crop)
    np.testing.assert_array_equal(png, to_uint16(full.image))
    np.testing.assert_array_equal(lin, srgb_to_linear(full.image))
    np.testing.assert_array_equal(crop.on_plate().image, full.image)
    np.testing.assert_array_equal(preview_frame(plate, crop, 400), preview_frame(plate, full.image, 400))
    with PlateWriter(tmp_path / "a", tmp_path / "sa") as wa, PlateWriter(tmp_path / "b", tmp_path / "sb") as wb:
        wa.write_plate(4, full)
        wb.write_plate(4, crop)
    a = cv2.imread(str(tmp_path / "a" / "000004.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "b" / "000004.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(a, b)
    for f in ("000004_face.png", "000004_mask.png", "000004.json"):
        assert (tmp_path / "sa" / "patches" / f).read_bytes() == (tmp_path / "sb" / "patches" / f).read_bytes()


@pytest.mark.parametrize("compositor", [c.name for c in BUILTIN_COMPOSITORS])
def test_feathered_blends_on_the_grown_crop_match_the_whole_frame(compositor):
    plate, face, cov, box, origin = _scene()
    comp = {c.name: c for c in BUILTIN_COMPOSITORS}[compositor]
    s = CompositeSettings(compositor=compositor)
    full = composite_face(plate, face, cov, s, comp())
    crop = composite_region(plate, face[box], cov[box], s, comp(), origin=origin)
    pad = context_px(s, comp())
    assert crop.origin[0] <= max(origin[0] - pad, 0) and crop.origin[1] <= max(origin[1] - pad, 0)
    whole = crop.on_plate()
    np.testing.assert_array_equal(whole.alpha, full.alpha)  # erosion and feather see the same zeros
    outside = full.alpha == 0
    assert (to_uint16(whole.image)[outside] == plate[outside].astype(np.uint16) * 257).all()  # bit-exact
    # measured: identical for all three (the region starts on the pyramid's grid and reaches 2^(levels+2) px past
    # the crop, further than the multi-band blend's filters carry)
    np.testing.assert_array_equal(whole.image, full.image)
    assert crop.image.shape[0] * crop.image.shape[1] < 0.35 * plate.shape[0] * plate.shape[1]  # a region, not the frame


def test_an_empty_or_misplaced_crop():
    plate, face, cov, box, origin = _scene()
    s = CompositeSettings()
    empty = composite_region(plate, np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), s,
                             AlphaCompositor())
    assert isinstance(empty, CompositeCrop) and empty.image.size == 0
    png, _ = frame_arrays(empty)
    np.testing.assert_array_equal(png, plate.astype(np.uint16) * 257)
    with pytest.raises(RenderError, match="do not lie on the plate"):
        composite_region(plate, face[box], cov[box], s, AlphaCompositor(), origin=(790, 0))
