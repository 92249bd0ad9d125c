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
    # the written arrays: converted on the mask's box only (the margin the blend needed is the plate), same values
    assert (crop.alpha == 0).any()
    png, lin = frame_arrays(crop)
    np.testing.assert_array_equal(png, to_uint16(full.image))
    np.testing.assert_array_equal(lin, srgb_to_linear(full.image))
    np.testing.assert_array_equal(frame_arrays(crop, half=True)[1].view(np.uint16),
                                  srgb_to_linear(full.image).astype(np.float16).view(np.uint16))


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


def _preview_whole(plate, image, width):
    """The preview frame as defined: the whole side-by-side frame, converted, then shrunk."""
    after = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    side = cv2.cvtColor(np.concatenate([plate, after], axis=1), cv2.COLOR_RGB2BGR)
    scale = min(1.0, width / side.shape[1])
    size = (int(side.shape[1] * scale) // 2 * 2, int(side.shape[0] * scale) // 2 * 2)
    return cv2.resize(side, size, interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("shape, origin, region, width", [
    ((60, 80), (13, 7), (21, 33), 80),      # shrunk 2x: the region's blocks only (odd origin and size)
    ((60, 80), (0, 0), (60, 80), 80),       # the region is the frame
    ((60, 80), (13, 7), (21, 33), 400),     # not shrunk
    ((90, 120), (31, 44), (40, 50), 80),    # shrunk 3x
    ((61, 80), (13, 7), (21, 33), 80),      # odd height: not whole factors, the whole frame
    ((60, 80), (13, 7), (21, 33), 53),      # not a whole factor
    ((60, 80), (13, 7), (0, 0), 80),        # no region
])
def test_preview_from_the_region_is_the_whole_frame_preview(shape, origin, region, width):
    rng = np.random.default_rng(5)
    plate = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    image = rng.random((*region, 3), dtype=np.float32)
    alpha = np.ones(region, np.float32)
    if min(region) > 6:  # a mask smaller than the region, as composite_region makes: the plate where alpha is 0
        alpha[:3], alpha[:, -4:] = 0, 0
        x0, y0 = origin
        under = plate[y0:y0 + region[0], x0:x0 + region[1]] / np.float32(255)
        image = np.where(alpha[..., None] > 0, image, under).astype(np.float32)
    crop = CompositeCrop(plate, origin, image, alpha, image)
    want = _preview_whole(plate, crop.on_plate().image, width)
    np.testing.assert_array_equal(preview_frame(plate, crop, width), want)
    np.testing.assert_array_equal(preview_frame(plate, crop.on_plate().image, width), want)
