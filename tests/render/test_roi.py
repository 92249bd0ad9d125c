"""Rendering on the face's region: rays of a cropped camera are the same rays as the whole camera's, and a mesh
edit is drawn with one render of its region (the plate lighting estimated through that render's fragments)."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.camera import CameraModel
from reconstruct.render import fragments as F
from reconstruct.retouch import Roi, crop_camera


def _cam(dist):
    return CameraModel("hero", K=np.array([[900.0, 0, 319.37], [0, 905.0, 241.81], [0, 0, 1]]),
                       dist=np.array(dist, float), image_size=(640, 480))


@pytest.mark.parametrize("dist", [[0, 0, 0, 0, 0], [-0.21, 0.08, 0.001, -0.002, 0.01]])
def test_rays_of_a_crop_are_the_whole_cameras_rays_whatever_was_cached_before(dist, monkeypatch):
    import cv2

    cam = _cam(dist)
    rois = [Roi(100, 60, 200, 150), Roi(0, 0, 640, 480), Roi(333, 201, 57, 88), Roi(90, 50, 230, 190)]
    first = F._RayGrids()
    monkeypatch.setattr(F, "_GRIDS", first)
    got = [F.pixel_rays(crop_camera(cam, r)).copy() for r in rois]  # grows the grid crop after crop
    full = F.pixel_rays(cam)
    for r, g in zip(rois, got):
        np.testing.assert_array_equal(g, full[r.slices])  # exactly: a ray depends on u - cx only
    monkeypatch.setattr(F, "_GRIDS", F._RayGrids())  # a fresh cache, another order: the same numbers
    np.testing.assert_array_equal(F.pixel_rays(crop_camera(cam, rois[2])), got[2])
    # and the same rays as OpenCV's undistortion of the pixel centres with K (the implementation before)
    uu, vv = np.meshgrid(np.arange(640.0), np.arange(480.0))
    xn = cv2.undistortPoints(np.stack([uu.ravel(), vv.ravel()], 1).reshape(-1, 1, 2), cam.K, cam.dist)
    assert np.abs(full[..., :2].reshape(-1, 2) - xn.reshape(-1, 2)).max() < 1e-6


def test_a_mesh_edit_is_rendered_once_on_its_region():
    from reconstruct.conventions import rodrigues
    from reconstruct.methods import FaceEdit
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.render import Mesh, linear_to_srgb
    from reconstruct.render.edits import MeshEditDrawer
    from reconstruct.render.raycast import RaycastRenderer
    from reconstruct.synth.scene import key_light

    model = make_plugin_manager().components().get("face_model", "demo").load()
    w, h = 960, 720
    cam = CameraModel("hero", K=np.array([[1400.0, 0, w / 2 - 0.5], [0, 1400.0, h / 2 - 0.5], [0, 0, 1]]),
                      image_size=(w, h))
    rng = np.random.default_rng(0)
    R = rodrigues(np.radians([0.0, 10.0, 0.0])) @ np.diag([1.0, -1.0, -1.0])
    t = np.array([0.0, 0.0, 0.9])
    ident = rng.normal(size=model.n_identity)
    fit_v = model.vertices(ident, np.zeros(model.n_expression)) @ R.T + t
    young_v = model.vertices(0.6 * ident, np.zeros(model.n_expression)) @ R.T + t
    r = RaycastRenderer()
    out = r.render(Mesh(fit_v, model.triangles, vertex_colors=model.albedo_mean), cam, key_light())
    plate = np.round(linear_to_srgb(np.where(out.mask[..., None], out.image, 0.3)) * 255).astype(np.uint8)

    class Counting(RaycastRenderer):
        renders, rays = 0, 0

        def render(self, *a, **k):
            type(self).renders += 1
            return super().render(*a, **k)

        def rasterize(self, vertices, triangles, camera):
            type(self).rays += camera.image_size[0] * camera.image_size[1]
            return super().rasterize(vertices, triangles, camera)

    edit = FaceEdit(frame=0, kind="mesh", vertices=young_v.astype(np.float32),
                    vertex_albedo=np.asarray(model.albedo_mean, np.float32))
    d = MeshEditDrawer(model, Counting()).draw(plate, fit_v, cam, edit)
    assert Counting.renders == 1  # before: 2 (the fitted face for the lighting, then the edit)
    region = d.coverage.shape[0] * d.coverage.shape[1]
    assert region < 0.3 * w * h  # measured 0.14 of the frame
    assert Counting.rays < 1.3 * region  # the region, plus the fitted eyes' own small box: measured 1.06
    assert d.info["lighting"]["n_pixels"] > 1000 and d.coverage.sum() > 1000
    x0, y0 = d.origin
    assert 0 < x0 < w and 0 < y0 < h
