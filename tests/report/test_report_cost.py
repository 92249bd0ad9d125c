"""The report's per-frame work, cut without changing a number: the seam score on the band's box, the wrinkle bands
shared by the regions of one kind, the face model and renderer loaded only where frames are measured."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np

from reconstruct.report import flags as F
from reconstruct.report import measures as M
from reconstruct.retouch.regions import AGE_REGIONS


def _seam_full_frame(composite, mask, plate, width=2):
    """seam_score as it was: the gradient of the whole frame's edit."""
    band = F._boundary_band(mask, width)
    return float(2.0 * np.percentile(F._grad_mag(F._gray(composite) - F._gray(plate))[band], 90))


def test_seam_score_on_the_band_box_equals_the_whole_frame():
    rng = np.random.default_rng(0)
    plate = rng.integers(0, 255, (120, 160, 3)).astype(np.uint8)
    for cx, cy, r in ((80, 60, 30), (10, 60, 25), (150, 110, 40), (80, 60, 200)):  # inside, at the edges, all over
        yy, xx = np.mgrid[0:120, 0:160]
        mask = cv2.GaussianBlur(((xx - cx) ** 2 + (yy - cy) ** 2 < r * r).astype(np.float32), (0, 0), 2.0)
        comp = np.clip(plate + 14.0 * mask[..., None] + rng.normal(0, 2, plate.shape), 0, 255).astype(np.uint8)
        if not F._boundary_band(mask, 2).any():
            continue
        assert F.seam_score(comp, mask, plate) == _seam_full_frame(comp, mask, plate)


def test_the_bands_of_one_kind_are_blurred_once(monkeypatch):
    """5 age regions of 2 kinds: 2 blurs per kind and image (result, plate) instead of per region, plus the finest
    band's one per image: 10 blurs a frame instead of 22 (the same arrays, so the same energies)."""
    from reconstruct.retouch import blur

    calls = []
    real = blur.gaussian_blur
    monkeypatch.setattr(blur, "gaussian_blur", lambda y, s: calls.append(s) or real(y, s))
    h, w = 90, 80
    rng = np.random.default_rng(1)
    regions = {name: (rng.random((h, w)) > 0.5).astype(np.float32) for name in AGE_REGIONS}
    masks = SimpleNamespace(for_frame=lambda f, b: ((slice(0, h), slice(0, w)), np.ones((h, w), bool),
                                                    np.ones((h, w), np.float32), regions, 40.0))
    data = SimpleNamespace(intent=lambda m: ("", {}))
    m = M.MethodMeasurer(data, "x", masks, None, [0])
    b = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
    a = np.clip(b.astype(np.int16) + rng.integers(-5, 5, b.shape), 0, 255).astype(np.uint8)
    m.add(0, b, a)
    assert len(calls) == 10, calls
    assert np.isfinite(m.res.wrinkle_ratio[0])


def test_the_finest_band_shares_the_wrinkle_lines_blur(monkeypatch):
    """From an IOD of 70 px the fine detail's blur (0.01 IOD) is the wrinkle lines' finer one: made once per image,
    8 blurs a frame instead of 10, the same energies as each band blurred on its own."""
    from reconstruct.retouch import blur
    from reconstruct.retouch.skin import BANDS

    calls = []
    real = blur.gaussian_blur
    monkeypatch.setattr(blur, "gaussian_blur", lambda y, s: calls.append(s) or real(y, s))
    h, w, iod = 120, 110, 200.0
    rng = np.random.default_rng(2)
    regions = {name: (rng.random((h, w)) > 0.5).astype(np.float32) for name in AGE_REGIONS}
    skin = rng.random((h, w)).astype(np.float32)
    masks = SimpleNamespace(for_frame=lambda f, b: ((slice(0, h), slice(0, w)), np.ones((h, w), bool), skin,
                                                    regions, iod))
    m = M.MethodMeasurer(SimpleNamespace(intent=lambda m: ("", {})), "x", masks, None, [0])
    b = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
    a = np.clip(b.astype(np.int16) + rng.integers(-9, 9, b.shape), 0, 255).astype(np.uint8)
    m.add(0, b, a)
    assert len(calls) == 8, calls
    yb, ya = M._y(b.astype(np.float32)), M._y(a.astype(np.float32))
    assert m.res.detail_ratio[0] == M._energy(ya, skin, 2.0, None) / M._energy(yb, skin, 2.0, None)

    def wrinkles(y):  # every band blurred on its own, as before
        return sum(M._energy(y, regions[r], BANDS[k][0] * iod, BANDS[k][1] * iod, None, regions[r].sum())
                   * regions[r].sum() for r, k in AGE_REGIONS.items())

    assert m.res.wrinkle_ratio[0] == wrinkles(ya) / wrinkles(yb)

def test_face_masks_load_the_model_only_when_a_frame_is_measured():
    """The driver of a report measured in worker processes builds FaceMasks but measures nothing there: the model
    and the renderer (open3d's import: ~1 s) are not loaded."""
    loaded = []
    comps = SimpleNamespace(face_model=lambda name: loaded.append(name))
    fits = SimpleNamespace(frames=np.array([0, 1]), model_name="ict")
    cam = object()
    session = SimpleNamespace(calibration_path=SimpleNamespace(exists=lambda: True), cameras=lambda: {"hero": cam})
    masks = M.FaceMasks(SimpleNamespace(fits=fits, session=session, hero="hero"), comps)
    assert masks.ok and loaded == []
    assert masks.for_frame(5, None) is None and loaded == []  # a frame the fit has not: nothing to load
    masks.prepare([5, 6])
    assert loaded == []
    unfit = M.FaceMasks(SimpleNamespace(fits=None, session=session, hero="hero"), comps)  # a session not fitted
    unfit.prepare([0, 1])
    assert not unfit.ok and unfit.for_frame(0, None) is None and loaded == []


def test_channel_mean_by_the_channel_sum_equals_numpys_mean():
    """The edit and the seam's grey come from a table of the channel sum (12.6 -> 1.9 ms on a 960x540 frame): the
    same float32 and float64 values as ``astype(dtype).mean(-1)``, for every sum and on a frame."""
    rng = np.random.default_rng(5)
    every = F._sum_pixels().reshape(1, -1, 3)
    frame = rng.integers(0, 256, (54, 96, 3)).astype(np.uint8)
    for img in (every, frame, frame[5:40, 7:90]):
        for dt in (np.float32, np.float64):
            got, want = F.channel_mean(img, dt), img.astype(dt).mean(-1)
            assert got.dtype == want.dtype and np.array_equal(got, want)
    assert np.array_equal(F._gray(frame), np.asarray(frame, np.float64).mean(-1))
    grey = frame[..., 0]  # not RGB: the plain computation
    assert np.array_equal(F._gray(grey), grey.astype(np.float64))


def test_darkest_at_the_dark_pixels_alone_equals_the_whole_map():
    """The dark-hole measure needs the plate's darkest only where the result is dark on the face: the same values
    there as the whole map's (the reach's levels still spread to the largest reach anywhere)."""
    rng = np.random.default_rng(6)
    y = (rng.random((70, 90)) * 255).astype(np.float32)
    reach = cv2.resize((rng.random((18, 23)) * 9).astype(np.float32), (90, 70), interpolation=cv2.INTER_NEAREST)
    where = rng.random((70, 90)) < 0.1
    for r in (None, reach, np.zeros_like(reach)):
        np.testing.assert_array_equal(M.darkest_within(y, 2, r, where=where), M.darkest_within(y, 2, r)[where])
    far = reach.copy()
    far[~where] += 20  # a larger reach outside the pixels asked for still sets the levels
    np.testing.assert_array_equal(M.darkest_within(y, 2, far, where=where), M.darkest_within(y, 2, far)[where])


def test_face_masks_prepare_the_rays_of_all_a_chunks_face_boxes_at_once(monkeypatch):
    """A worker's frames each cast rays through their own face box: ``prepare`` builds the rays of the box around
    all of them once (the bench take's chunk: 1 build of 0.08 s instead of 2 of 0.5-0.7 s on a loaded machine); each
    frame's rays are then a view of it, the same numbers as built alone."""
    from reconstruct.camera import CameraModel
    from reconstruct.render import fragments
    from reconstruct.retouch import crop_camera

    cam = CameraModel("hero", K=np.array([[1400.0, 0, 959.3], [0, 1400.0, 539.6], [0, 0, 1]]),
                      dist=np.array([-0.12, 0.05, 0.001, -0.0005, 0.0]), image_size=(1920, 1080))
    rng = np.random.default_rng(7)
    face = rng.normal(0, 0.06, (300, 3)) + [0, 0, 1.6]
    verts = [face + [dx, dy, 0] for dx, dy in ((-0.25, 0.0), (0.0, 0.05), (0.3, -0.1))]  # the head moves
    fits = SimpleNamespace(frames=np.arange(3), model_name="ict",
                           frame=lambda i: SimpleNamespace(vertices=verts[i], valid=True))
    session = SimpleNamespace(calibration_path=SimpleNamespace(exists=lambda: True), cameras=lambda: {"hero": cam})
    masks = M.FaceMasks(SimpleNamespace(fits=fits, session=session, hero="hero"), None)
    monkeypatch.setattr(masks, "_load", lambda: setattr(masks, "model", object()))
    masks.renderer = SimpleNamespace(name="raycast")
    builds = []
    real = fragments._ray_grid
    monkeypatch.setattr(fragments, "_ray_grid", lambda *a: builds.append(a) or real(*a))
    monkeypatch.setattr(fragments, "_GRIDS", fragments._RayGrids())
    masks.prepare([0, 1, 2])
    crops = [crop_camera(cam, masks._roi(fits.frame(i))[1]) for i in range(3)]
    rays = [fragments.pixel_rays(c).copy() for c in crops]
    assert len(builds) == 1
    monkeypatch.setattr(fragments, "_GRIDS", fragments._RayGrids())
    for c, r in zip(crops, rays):
        np.testing.assert_array_equal(fragments.pixel_rays(c), r)
    assert len(builds) == 1 + 3  # without prepare: the first frame's box, then a grown grid for each of the others


def test_face_masks_interpolate_the_weights_only_where_a_triangle_carries_them(monkeypatch):
    """The age regions cover a third of a face's triangles (bench take: 29 %; the skin prior 43 %): their masks are
    interpolated at those triangles' pixels only, and are :func:`region_masks`'s bit for bit -- elsewhere the
    interpolation is 0 exactly, with barycentrics a little below 0 too (+0.0, never -0.0: the bytes compare)."""
    from reconstruct.render import fragments as R
    from reconstruct.render.fragments import Fragments
    from reconstruct.retouch.regions import region_masks

    rng = np.random.default_rng(11)
    n_v, h, w = 400, 60, 70
    tris = np.arange(n_v - 2)[:, None] + np.arange(3)  # a strip: a vertex's triangles are its neighbours'
    weights = {}
    for k, name in enumerate(AGE_REGIONS):  # each region on 15 vertices, fading out (exact 0 beyond)
        weights[name] = np.zeros(n_v, np.float32)
        weights[name][40 + 60 * k:55 + 60 * k] = rng.random(15)
    weights["_skin"] = (np.arange(n_v) < 200).astype(np.float32)
    tri = np.where(rng.random((h, w)) < 0.7, rng.integers(0, len(tris), (h, w)), -1).astype(np.int32)
    bary = rng.random((h, w, 3)).astype(np.float32)
    bary[..., 0] -= 0.3  # some barycentrics below 0, as a ray caster gives at a triangle's edge
    bary /= bary.sum(-1, keepdims=True)
    bary[tri < 0] = 0
    frags = Fragments(triangle=tri, bary=bary, depth=np.where(tri >= 0, 1.0, np.inf).astype(np.float32), camera=None)
    groups = [M.weight_group({n: weights[n] for n in AGE_REGIONS}, tris),
              M.weight_group({"_skin": weights["_skin"]}, tris)]
    sizes = []  # the pixels' lists interpolated (interpolate's own numbers, without its whole-image masks)
    real = R.interpolate_at
    monkeypatch.setattr(R, "interpolate_at", lambda t, b, f, a: sizes.append((t.size, a.shape[1])) or real(t, b, f, a))
    got = M.sparse_region_masks(frags, tris, groups)
    monkeypatch.setattr(R, "interpolate_at", real)
    want = region_masks(frags, tris, weights)
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].tobytes() == want[name].tobytes(), name
    hit = int((tri >= 0).sum())
    assert (bary[tri >= 0] < 0).any() and any((want[n] == 0).sum() > 0 for n in AGE_REGIONS)
    # region_masks: 6 weights at every face pixel; here the regions' fifth of them and the skin's half
    assert len(sizes) == 2 and sum(p * c for p, c in sizes) < 0.5 * hit * len(weights), (sizes, hit)
