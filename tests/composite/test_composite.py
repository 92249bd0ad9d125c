"""Compositing: mask, colour transfer, the three blends, bit-exact plate outside the mask, output files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reconstruct.composite import (BUILTIN_COMPOSITORS, CompositeSettings, LaplacianCompositor, PoissonCompositor,
                                   composite_face, face_mask, transfer_color)
from reconstruct.composite.blend import laplacian_blend, poisson_blend
from reconstruct.composite.outputs import PlateWriter, patch_box, to_uint16
from reconstruct.errors import ConfigError, RenderError


def _scene(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    plate = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    cov = (((yy - h / 2) / (h * 0.3)) ** 2 + ((xx - w / 2) / (w * 0.25)) ** 2 < 1).astype(np.float32)
    face = np.clip(0.5 + 0.2 * np.sin(xx / 5.0)[..., None] + rng.normal(0, 0.02, (h, w, 3)), 0, 1).astype(np.float32)
    return plate, face, cov


def test_mask_is_zero_outside_eroded_coverage_and_soft_inside():
    _, _, cov = _scene()
    a = face_mask(cov, erode_px=3, feather_px=6)
    assert a.dtype == np.float32 and a.max() == 1.0
    import cv2

    eroded = cv2.erode(cov.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))) > 0
    assert (a[~eroded] == 0).all()
    soft = (a > 0) & (a < 1)
    assert soft.sum() > 0.1 * (a > 0).sum()  # a real feather band
    excl = np.zeros_like(cov, bool)
    excl[40:50, 55:70] = True
    assert (face_mask(cov, 3, 6, exclude=excl)[excl] == 0).all()


@pytest.mark.parametrize("compositor", [c.name for c in BUILTIN_COMPOSITORS])
@pytest.mark.parametrize("color", ["none", "gain", "lab", "histogram"])
def test_plate_is_bit_exact_outside_the_mask(compositor, color):
    plate, face, cov = _scene()
    comp = {c.name: c for c in BUILTIN_COMPOSITORS}[compositor]()
    res = composite_face(plate, face, cov, CompositeSettings(compositor=compositor, color=color), comp)
    out = res.alpha == 0
    assert out.sum() > 0.5 * out.size
    assert (to_uint16(res.image)[out] == plate[out].astype(np.uint16) * 257).all()
    assert (np.round(res.image[out] * 255).astype(np.uint8) == plate[out]).all()
    inside = res.alpha == 1
    assert np.abs(res.image[inside] - plate[inside] / 255.0).mean() > 0.05  # the face did go in


def test_written_png_and_exr_keep_the_plate_outside_the_mask(tmp_path):
    from reconstruct.provenance import read_exr
    from reconstruct.render import srgb_to_linear

    plate, face, cov = _scene()
    res = composite_face(plate, face, cov, CompositeSettings(), LaplacianCompositor())
    with PlateWriter(tmp_path / "plates", tmp_path / "stage", fps=24) as w:
        w.write_frame(7, plate, res)
    import cv2

    png = cv2.cvtColor(cv2.imread(str(tmp_path / "plates/000007.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert png.dtype == np.uint16
    out = res.alpha == 0
    assert (png[out] == plate[out].astype(np.uint16) * 257).all()
    exr = read_exr(tmp_path / "plates/000007.exr")
    assert exr.shape == plate.shape
    ref = srgb_to_linear(plate.astype(np.float32) / 255).astype(np.float16).astype(np.float32)
    assert (exr[out] == ref[out]).all()  # half-float linear: exactly the plate's value rounded to half
    info = json.loads((tmp_path / "stage/patches/000007.json").read_text())
    x, y = info["offset_px"]
    pw, ph = info["patch_size"]
    patch = cv2.imread(str(tmp_path / "stage/patches/000007_face.png"), cv2.IMREAD_UNCHANGED)
    assert patch.shape == (ph, pw, 4)
    alpha = patch[..., 3].astype(np.float32) / 65535
    np.testing.assert_allclose(alpha, res.alpha[y:y + ph, x:x + pw], atol=1 / 65535)
    assert (res.alpha[:y] == 0).all() and (res.alpha[y + ph:] == 0).all()  # the patch holds the whole mask
    assert (tmp_path / "stage/preview.mp4").stat().st_size > 0


def test_colour_transfer_matches_lab_statistics():
    import cv2

    rng = np.random.default_rng(1)
    src = np.clip(rng.normal([0.3, 0.5, 0.6], 0.05, (64, 64, 3)), 0, 1).astype(np.float32)
    tgt = np.clip(rng.normal([0.6, 0.4, 0.3], 0.1, (64, 64, 3)), 0, 1).astype(np.float32)
    m = np.ones((64, 64), bool)
    out = transfer_color(src, tgt, m, m, "lab")
    lo, lt = cv2.cvtColor(out, cv2.COLOR_RGB2Lab), cv2.cvtColor(tgt, cv2.COLOR_RGB2Lab)
    np.testing.assert_allclose(lo.reshape(-1, 3).mean(0), lt.reshape(-1, 3).mean(0), atol=0.5)  # Lab units
    np.testing.assert_allclose(lo.reshape(-1, 3).std(0), lt.reshape(-1, 3).std(0), rtol=0.05)
    h = transfer_color(src, tgt, m, m, "histogram")
    np.testing.assert_allclose(np.sort(h[..., 0].ravel())[::64], np.sort(tgt[..., 0].ravel())[::64], atol=0.02)
    with pytest.raises(RenderError):
        transfer_color(src, tgt, m, m, "nope")


def test_poisson_blend_takes_plate_border_and_face_gradients():
    h, w = 64, 80
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    plate = np.repeat((0.2 + 0.004 * xx)[..., None], 3, 2)
    face = np.repeat((0.5 + 0.1 * np.sin(yy / 6.0))[..., None], 3, 2).astype(np.float32)  # no clipping
    alpha = np.zeros((h, w), np.float32)
    alpha[16:48, 20:60] = 1
    out = poisson_blend(plate, face, alpha)
    # interior gradients are the face's (up to the smooth membrane): compare second differences
    lap = lambda im: im[17:47, 21:59] * 4 - im[16:46, 21:59] - im[18:48, 21:59] - im[17:47, 20:58] - im[17:47, 22:60]  # noqa: E731
    assert np.abs(lap(out) - lap(face)).max() < 1e-4  # measured 2.7e-7: Lap(h) = 0
    # at the support's border the result continues the plate (first pixel inside ~ plate next to it)
    assert np.abs(out[16, 20:60, 0] - plate[15, 20:60, 0]).max() < 0.05  # measured 0.011 (one pixel step of a gradient)


def test_laplacian_blend_of_identical_images_is_identity():
    plate, _, cov = _scene()
    p = plate.astype(np.float32) / 255
    np.testing.assert_allclose(laplacian_blend(p, p, face_mask(cov)), p, atol=1e-5)


def test_settings_from_options_validate():
    s = CompositeSettings.from_options({"composite.compositor": "poisson", "composite.feather_px": "12",
                                        "composite.skin_only": "yes", "other": 1})
    assert (s.compositor, s.feather_px, s.skin_only) == ("poisson", 12, True)
    with pytest.raises(ConfigError):
        CompositeSettings.from_options({"composite.colour": "lab"})
    with pytest.raises(ConfigError):
        CompositeSettings.from_options({"composite.color": "sepia"})
    with pytest.raises(RenderError):
        composite_face(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.float32), np.zeros((8, 9)),
                       CompositeSettings(), PoissonCompositor())
    assert patch_box(np.zeros((5, 5))) is None


def test_compositors_are_registered_as_plugins():
    from reconstruct.plugins import make_plugin_manager

    comps = make_plugin_manager().components().all("compositor")
    assert {"alpha", "laplacian", "poisson"} <= set(comps)
