"""The plate mode's geometry at a coarser resolution (issue 16): the warp's flow computed at 1/2 of the roi and
resized is the full-resolution flow within a fraction of a pixel, and the skin retouch restricted to its weights'
box gives the very same pixels."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.camera import CameraModel
from reconstruct.retouch import face_roi, face_warp
from reconstruct.retouch.roi import coarse_size, scale_camera
from reconstruct.retouch.warp import geometry_scale
from tests.retouch.flows import fold_flow


def _scene():
    from reconstruct.face.store import load_model_by_name
    from reconstruct.render.raycast import RaycastRenderer

    model = load_model_by_name("demo")
    ident = np.zeros(model.n_identity)
    v = model.vertices(ident, np.zeros(model.n_expression))
    size = 0.16 / float(np.ptp(v[:, 1]))  # a head 16 cm tall, 0.6 m in front of a 1080p camera
    src = v * size + np.array([0.0, 0.0, 0.6])
    ident[:3] = (2.0, -1.5, 1.0)
    dst = model.vertices(ident, np.zeros(model.n_expression)) * size + np.array([0.0, 0.0, 0.6])
    cam = CameraModel(name="hero", K=np.array([[1800.0, 0, 959.5], [0, 1800.0, 539.5], [0, 0, 1]]),
                      image_size=(1920, 1080))
    # OpenCV camera looks down +z with y down: flip the model's y up
    src, dst = src * [1, -1, 1], dst * [1, -1, 1]
    return RaycastRenderer(), model, cam, src, dst


def test_scale_camera_keeps_pixel_centres():
    cam = CameraModel(name="c", K=np.array([[1000.0, 0, 300.2], [0, 990.0, 200.7], [0, 0, 1]]), image_size=(601, 401))
    small = scale_camera(cam, coarse_size(601, 401, 2))
    assert small.image_size == (301, 201)
    p = np.array([[0.05, -0.03, 1.0], [-0.1, 0.08, 2.0]])
    kx, ky = 301 / 601, 201 / 401
    np.testing.assert_allclose(small.project(p), (cam.project(p) + 0.5) * [kx, ky] - 0.5, atol=1e-9)


def test_geometry_scale_keeps_the_eyes_64_px_apart():
    assert geometry_scale(60) == 1 and geometry_scale(127) == 1
    assert geometry_scale(128) == 2 and geometry_scale(176) == 2 and geometry_scale(260) == 4


def test_half_resolution_flow_matches_the_full_one():
    import cv2

    renderer, model, cam, src, dst = _scene()
    roi = face_roi(cam.project(src), cam.image_size, margin=0.4)
    full = face_warp(renderer, cam, model.triangles, src, dst, roi)
    half = face_warp(renderer, cam, model.triangles, src, dst, roi, scale=2)
    assert half.scale == 2 and half.flow.shape == full.flow.shape and half.coverage.shape == full.coverage.shape
    assert half.fragments.mask.shape == (-(-roi.h // 2), -(-roi.w // 2))
    moved = np.abs(full.flow).max(-1)
    assert moved.max() > 3.0  # the young shape moves the face by pixels
    # away from the silhouette (whose step the coarse grid smooths over 2 px), the same flow to a fraction of a px
    inner = cv2.erode(full.coverage.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    err = np.linalg.norm(half.flow - full.flow, axis=-1)
    # measured on this scene (flow up to 28 px): median 0.0004 px, 99th percentile 0.064 px inside, face size 1.0003x
    assert np.median(err[inner]) < 0.05 and np.percentile(err[inner], 99) < 0.3
    assert abs(half.face_px / full.face_px - 1) < 0.02
    # zero far past the face both ways: the frame is untouched there
    far = np.zeros(moved.shape, bool)
    far[:5], far[-5:], far[:, :5], far[:, -5:] = True, True, True, True
    assert not np.any(half.flow[far & (moved == 0)])


def test_skin_retouch_on_the_weights_box_is_the_whole_image_computation():
    """The box restriction changes no pixel: compared with the band arithmetic over the whole image."""
    from reconstruct.retouch.skin import (BANDS, EDGE_CONTRAST, SPOT_BAND, SkinSettings, _suppress, band,
                                          luminance, retouch_skin)
    from reconstruct.retouch.regions import AGE_REGIONS

    rng = np.random.default_rng(3)
    img = np.clip(0.5 + 0.1 * rng.standard_normal((200, 240, 3)), 0, 1).astype(np.float32)
    masks = {r: np.zeros((200, 240), np.float32) for r in AGE_REGIONS}
    masks["forehead"][40:90, 60:180] = 1.0
    masks["nasolabial"][120:160, 90:130] = 0.6
    skin = np.zeros((200, 240), np.float32)
    skin[30:170, 50:190] = 0.8
    s, iod, gain = SkinSettings(), 60.0, np.array([1.05, 1.0, 0.95], np.float32)
    # the whole-image arithmetic (the code before the box)
    out = img.copy()
    y = luminance(out)
    delta = np.zeros_like(y)
    for kind, (lo, hi) in BANDS.items():
        w = np.zeros_like(y)
        for region, k in AGE_REGIONS.items():
            if k == kind:
                w = np.maximum(w, s.strength(region) * masks[region])
        if w.any():
            delta += w * _suppress(band(y, lo * iod, hi * iod))
    out -= delta[..., None]
    b = band(out, SPOT_BAND[0] * iod, SPOT_BAND[1] * iod)
    out -= s.spots * skin[..., None] * (b / (1.0 + (b / EDGE_CONTRAST) ** 2))
    g = 1.0 + s.tone * (gain - 1.0)
    out *= 1.0 + skin[..., None] * (g[None, None] - 1.0)
    expect = np.clip(out, 0, 1)
    got = retouch_skin(img, masks, iod, s, skin=skin, tone_gain=gain)
    np.testing.assert_array_equal(got, expect)
    assert np.array_equal(got[:20], img[:20])  # outside every weight: the image itself


def _relax_folds_whole(flow, sigma, min_det=0.5, rounds=6):
    """The fold relaxation as it was before it worked on windows (every blur over the whole flow)."""
    import cv2

    from reconstruct.retouch.blur import gaussian_blur
    from reconstruct.retouch.warp import jacobian_det

    flow = flow.copy()
    for _ in range(rounds):
        bad = jacobian_det(flow) < min_det
        if not bad.any():
            break
        zone = gaussian_blur(cv2.dilate(bad.astype(np.float32), np.ones((3, 3), np.uint8),
                                        iterations=max(1, int(sigma))), sigma)
        smooth = gaussian_blur(flow, sigma)
        flow += np.clip(zone, 0, 1)[..., None] * (smooth - flow)
    return flow


@pytest.mark.parametrize("sigma", [1.0, 3.5, 9.0])
def test_fold_relaxation_on_windows_is_the_whole_flows(sigma, monkeypatch):
    """relax_folds blurs only the window around the folds (issue 16), with the same numbers as blurring the whole
    flow every round (compared value for value: -0.0 and 0.0 are the same flow)."""
    import reconstruct.retouch.warp as warp_mod
    from reconstruct.retouch import blur

    flow = fold_flow()  # a squeeze and a fold near (150, 110): det < 0.5 there only
    h, w = flow.shape[:2]
    assert (warp_mod.jacobian_det(flow) < 0.5).mean() < 0.02  # the folds are local
    want = _relax_folds_whole(flow, sigma)
    shapes = []
    real = blur.gaussian_blur

    def recording(image, s):
        shapes.append(image.shape[:2])
        return real(image, s)

    monkeypatch.setattr(blur, "gaussian_blur", recording)
    monkeypatch.setattr(warp_mod, "gaussian_blur", recording)
    got = warp_mod.relax_folds(flow, sigma)
    assert np.array_equal(got, want)
    assert np.abs(got - flow).max() > 0.1  # it did relax (measured 0.84, 4.5, 5.8 px)
    assert shapes and max(a * b for a, b in shapes) < 0.7 * h * w  # windows: measured 0.05, 0.11, 0.63 of it


@pytest.mark.parametrize("roi", [(40, 30, 200, 180), (0, 0, 150, 120), (170, 130, 150, 110)])
def test_the_warp_samples_a_window_of_the_frame_exactly(roi):
    """warp_region on the window :func:`sampled_window` gives (the plate converted to floats there only, issue 16)
    is warp_region on the whole frame, bit for bit -- inside the frame and where the roi meets its border."""
    from reconstruct.retouch import Roi, warp_region
    from reconstruct.retouch.warp import FaceWarp, sampled_window

    rng = np.random.default_rng(2)
    H, W = 260, 320
    frame = rng.random((H, W, 3)).astype(np.float32)
    r = Roi(*roi)
    r = Roi(r.x0, r.y0, min(r.w, W - r.x0), min(r.h, H - r.y0))
    yy, xx = np.mgrid[0:r.h, 0:r.w].astype(np.float32)
    bump = np.exp(-((xx - r.w / 2) ** 2 + (yy - r.h / 2) ** 2) / (2 * (r.w / 5) ** 2))
    flow = np.stack([9.3 * bump, -6.7 * bump], -1).astype(np.float32)
    flow[bump < 0.05] = 0.0
    warp = FaceWarp(r, flow, bump > 0.5, float(r.w))
    want = warp_region(frame, warp)
    win = sampled_window(warp, (W, H), grow=2)
    assert win.w * win.h < W * H or roi[2] >= W
    # the largest flow given by a caller that has it (the plate mode reports it): the same window
    assert sampled_window(warp, (W, H), grow=2, flow_max=float(np.abs(flow).max())) == win
    assert sampled_window(warp, (W, H), grow=2, flow_max=30.0) != win  # the reach does follow it
    got = warp_region(frame[win.slices], warp, origin=(win.x0, win.y0))
    np.testing.assert_array_equal(got, want)
    assert np.abs(want - frame[r.slices]).max() > 0.1  # the warp moved pixels
