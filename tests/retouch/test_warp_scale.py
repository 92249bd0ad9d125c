"""The plate mode's geometry at a coarser resolution (issue 16): the warp's flow computed at 1/2 of the roi and
resized is the full-resolution flow within a fraction of a pixel, and the skin retouch restricted to its weights'
box gives the very same pixels."""

from __future__ import annotations

import numpy as np

from reconstruct.camera import CameraModel
from reconstruct.retouch import face_roi, face_warp
from reconstruct.retouch.roi import coarse_size, scale_camera
from reconstruct.retouch.warp import geometry_scale


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
