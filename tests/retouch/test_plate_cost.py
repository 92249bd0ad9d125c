"""The plate mode's per-frame cost (issue 16, branch age6): the Lanczos resampling of the moved pixels only, the
fold relaxation's determinant on the changed zone only, the skin steps on the pixels they weigh -- each the very
same numbers as the whole-array computation it replaces (compared bit for bit, or value for value where only the
sign of a zero could differ)."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.retouch import Roi, SkinSettings, retouch_skin, warp_region
from reconstruct.retouch.warp import FaceWarp
from tests.retouch.flows import fold_flow


def _round_warp(h=300, w=340, seed=4):
    """A frame and a warp whose moved pixels are a disc (as a face's are: ~79 % of their bounding box)."""
    rng = np.random.default_rng(seed)
    frame = rng.random((h + 40, w + 60, 3)).astype(np.float32)
    r = Roi(30, 20, w, h)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d2 = ((xx - w / 2) / (0.45 * w)) ** 2 + ((yy - h / 2) / (0.45 * h)) ** 2
    bump = np.clip(1.0 - d2, 0.0, None)
    flow = np.stack([7.3 * bump, -4.1 * bump], -1).astype(np.float32)
    return frame, FaceWarp(r, flow, bump > 0.5, float(w))


def _whole_box_remap(frame, warp):
    """warp_region as it was before (issue 16, main dce00ec): the moved pixels' bounding box resampled in one."""
    import cv2

    from reconstruct.retouch.roi import mask_box

    r = warp.roi
    out = np.array(frame[r.slices], np.float32)
    moved = warp.moved
    y0, y1, x0, x1 = mask_box(moved)
    gx = np.arange(x0, x1, dtype=np.float32)[None, :]
    gy = np.arange(y0, y1, dtype=np.float32)[:, None]
    res = cv2.remap(frame, gx + warp.flow[y0:y1, x0:x1, 0] + r.x0, gy + warp.flow[y0:y1, x0:x1, 1] + r.y0,
                    cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
    np.copyto(out[y0:y1, x0:x1], res, where=moved[y0:y1, x0:x1, None])
    return out


def test_the_warp_resamples_only_the_moved_pixels(monkeypatch):
    """Lanczos (8x8 taps per pixel, ~45 ms of a 1080p face) runs on row bands cut to their moved columns: within
    ~5 % of the moved pixels (main: their whole bounding box, 1.26x here), the same values."""
    import cv2

    frame, warp = _round_warp()
    want = _whole_box_remap(frame, warp)
    sampled = []
    real = cv2.remap

    def counting(src, map_x, map_y, *a, **k):
        sampled.append(map_x.size)
        return real(src, map_x, map_y, *a, **k)

    monkeypatch.setattr(cv2, "remap", counting)
    got = warp_region(frame, warp)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    moved = int(warp.moved.sum())
    assert np.abs(got - frame[warp.roi.slices]).max() > 0.1  # it moved pixels
    assert sum(sampled) <= 1.08 * moved  # measured 1.05x (the bands' ragged ends); main 1.26x


def test_the_warp_resamples_a_grey_frame_as_each_channel():
    """warp_region copies the resampled band channel by channel (age11; before, a (h, w, 1) mask broadcast over
    the channels, which a grey (H, W) frame could not take): a grey frame warps as each channel of a colour one."""
    frame, warp = _round_warp()
    colour = warp_region(frame, warp)
    for c in range(3):
        grey = warp_region(np.ascontiguousarray(frame[..., c]), warp)
        assert grey.shape == colour.shape[:2]
        assert np.array_equal(grey.view(np.uint32), colour[..., c].view(np.uint32))


def test_the_fold_relaxation_recomputes_the_determinant_on_the_changed_zone(monkeypatch):
    """After the first round, the determinant is recomputed where the flow changed (the zone grown by 2 px), not
    on the whole flow: the same relaxed flow as the whole-flow rounds."""
    import reconstruct.retouch.warp as warp_mod

    flow = fold_flow()
    h, w = flow.shape[:2]
    sigma = 3.5
    want = flow.copy()  # the rounds as they were: one round at a time, each from the whole flow's determinant
    for _ in range(6):
        want = warp_mod.relax_folds(want, sigma, rounds=1)
    real = warp_mod.jacobian_det
    areas = []

    def recording(f):
        areas.append(f.shape[0] * f.shape[1])
        return real(f)

    monkeypatch.setattr(warp_mod, "jacobian_det", recording)
    got = warp_mod.relax_folds(flow, sigma)
    assert np.array_equal(got, want)
    assert np.abs(got - flow).max() > 0.1  # it relaxed
    assert areas[0] == h * w and len(areas) > 1  # measured 6 rounds
    assert max(areas[1:]) < 0.2 * h * w  # the zone's window: measured 0.044-0.051 of the flow (main: 1.0 every round)


def _skin_scene(seed=5, h=220, w=260):
    rng = np.random.default_rng(seed)
    img = np.clip(0.55 + 0.08 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = lambda cx, cy, r: np.clip(1.0 - ((xx - cx) ** 2 + (yy - cy) ** 2) / r ** 2, 0, 1).astype(np.float32)
    masks = {"forehead": blob(130, 60, 40), "crows_feet": blob(80, 110, 20), "nasolabial": blob(150, 150, 25)}
    skin = blob(130, 110, 70)
    return img, masks, skin


def test_retouch_skin_luminance_on_the_bands_window_is_the_whole_images(monkeypatch):
    """The luminance is computed on the window the bands read only: the same retouched pixels as with the whole
    image's luminance (main), bit for bit."""
    from reconstruct.retouch import skin as skin_mod

    img, masks, skin = _skin_scene()
    s = SkinSettings()
    got = retouch_skin(img, masks, 40.0, s, skin=skin, tone_gain=np.array([1.05, 1.0, 0.95], np.float32))
    calls = []
    real = skin_mod.luminance

    def whole(image, **kw):  # ``out=``: the luminance written into the window of the whole-image array
        calls.append(image.shape)
        return real(image, **kw)

    # the reference: every band given the whole image's luminance
    y = real(img)
    box = skin_mod.weights_box([skin, *masks.values()])
    want = np.asarray(img, np.float32).copy()
    ob, yb = want[box], y[box]
    delta = np.zeros_like(yb)
    for kind, (lo, hi) in skin_mod.BANDS.items():
        wgt = np.zeros_like(yb)
        for region, k in skin_mod.AGE_REGIONS.items():
            if k == kind and region in masks:
                wgt = np.maximum(wgt, s.strength(region) * masks[region][box])
        if wgt.any():
            delta += wgt * skin_mod._suppress(skin_mod.band(y, lo * 40.0, hi * 40.0, box))
    ob -= delta[..., None]
    lo, hi = skin_mod.SPOT_BAND
    b = skin_mod.band(want, lo * 40.0, hi * 40.0, box)
    sb = skin[box]
    ob -= s.spots * sb[..., None] * (b / (1.0 + (b / skin_mod.EDGE_CONTRAST) ** 2))
    g = 1.0 + s.tone * (np.array([1.05, 1.0, 0.95], np.float32) - 1.0)
    ob *= 1.0 + sb[..., None] * (g[None, None] - 1.0)
    want = np.clip(want, 0, 1)
    assert np.array_equal(got, want)
    monkeypatch.setattr(skin_mod, "luminance", whole)
    retouch_skin(img, masks, 40.0, s, skin=skin)
    assert calls and calls[0][0] * calls[0][1] < img.shape[0] * img.shape[1]  # a window, not the whole image


@pytest.mark.parametrize("seed", [0, 1])
def test_adaptive_skin_channel_by_channel_is_the_summed_distance(seed):
    """adaptive_skin's Lab distance summed channel by channel, left to right: the same floats as ``.sum(-1)``."""
    import cv2

    from reconstruct.retouch.skin import adaptive_skin

    img, _, prior = _skin_scene(seed)
    got = adaptive_skin(img, prior)
    lab = cv2.cvtColor(np.clip(img, 0, 1).astype(np.float32), cv2.COLOR_RGB2LAB)
    x = lab[prior > 0.5]
    med = np.median(x, axis=0)
    scale = np.maximum(np.median(np.abs(x - med), axis=0) * 1.4826 * 3.0, np.array([25.0, 4.0, 4.0]))
    want = np.exp(-0.5 * (((lab - med) / scale) ** 2).sum(-1)).astype(np.float32)
    assert np.array_equal(got, want)
    assert 0.2 < float(got.mean()) < 1.0  # a spread of skin likeness (measured ~0.6)
