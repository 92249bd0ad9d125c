"""The pytorch3d backend: pixel-exact camera convention, and agreement with the raycast backend.

PyTorch3D on the CPU is slow, so every render here is tiny (<= 96x72)."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.camera import CameraModel, look_at
from reconstruct.render import Mesh, interpolate
from reconstruct.render.pytorch3d_backend import PyTorch3DRenderer
from reconstruct.render.raycast import RaycastRenderer


def _sphere(subdiv=3, radius=0.1):
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=subdiv, radius=radius)
    v = np.asarray(s.vertices, np.float64)
    v[:, 2] *= 1.3  # not a sphere: normals and depth vary non-trivially
    v[:, 0] += 0.02 * np.sin(v[:, 1] * 40)
    return v, np.asarray(s.faces, np.int32)


def _camera(w=96, h=72, dist=None):
    R, t = look_at([0.08, -0.05, -0.6], [0, 0, 0])
    K = np.array([[110.0, 0, w / 2 - 2.3], [0, 112.0, h / 2 + 1.7], [0, 0, 1]])
    return CameraModel("hero", K=K, dist=np.zeros(5) if dist is None else dist, R=R, t=t, image_size=(w, h))


def test_rasterized_points_project_onto_their_pixel_centres():
    """The convention check that matters: the surface point rendered at pixel (u, v) projects to (u, v) with the
    OpenCV camera model (PyTorch3D's own cameras_from_opencv_projection would be 0.5 px off)."""
    v, f = _sphere()
    cam = _camera()
    fr = PyTorch3DRenderer("cpu").rasterize(v, f, cam)
    X = interpolate(fr, f, v)[fr.mask]
    vv, uu = np.nonzero(fr.mask)
    err = cam.project(X) - np.stack([uu, vv], 1)
    assert np.abs(err).max() < 2e-3  # px; measured 6.8e-6
    assert np.abs(err.mean(0)).max() < 1e-4  # no half-pixel bias; measured 4.9e-7


@pytest.mark.parametrize("distorted", [False, True])
def test_agrees_with_raycast_backend(distorted):
    v, f = _sphere()
    cam = _camera(dist=np.array([-0.12, 0.05, 0.001, -0.0005, 0.0]) if distorted else None)
    a = RaycastRenderer("cpu").rasterize(v, f, cam)
    b = PyTorch3DRenderer("cpu").rasterize(v, f, cam)
    # coverage: only silhouette pixels may differ (with distortion, pytorch3d samples the pinhole raster at
    # integer pixel centres next to each distorted pixel's undistorted position)
    import scipy.ndimage as nd

    diff = a.mask != b.mask
    silhouette = nd.binary_dilation(a.mask & ~nd.binary_erosion(a.mask))
    assert not (diff & ~silhouette).any()
    assert diff.sum() <= 0.03 * a.mask.sum()  # measured 0 of 1104 px (pinhole), 20 of 1099 px (distorted)
    both = a.mask & b.mask
    depth_err = np.abs(a.depth[both] - b.depth[both])
    assert np.percentile(depth_err, 99) < 1e-5  # metres; measured 1.2e-7 (both cases)
    Xa = interpolate(a, f, v)[both]
    Xb = interpolate(b, f, v)[both]
    assert np.percentile(np.linalg.norm(Xa - Xb, axis=1), 99) < 1e-5  # metres; measured 1.3e-7 / 5e-8
    # shaded images (same shading code): mean abs difference over the union of coverage
    mesh = Mesh(v, f, vertex_colors=np.clip(0.5 + v * 3, 0, 1))
    ia = RaycastRenderer("cpu").render(mesh, cam).image
    ib = PyTorch3DRenderer("cpu").render(mesh, cam).image
    assert np.abs(ia - ib).mean() < 2e-3  # linear RGB; measured 7e-9 (pinhole) / 7.4e-4 (distorted: silhouette)


def test_auto_choice_needs_a_gpu():
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.render import get_renderer

    assert not PyTorch3DRenderer.available("cpu")
    comps = make_plugin_manager().components()
    assert "pytorch3d" in comps.all("renderer")
    assert get_renderer(comps, "auto", "cpu").name == "raycast"
