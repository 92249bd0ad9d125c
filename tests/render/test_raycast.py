"""The raycast renderer agrees with CameraModel.project; fragments, interpolation, texture and shading helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reconstruct import make_plugin_manager
from reconstruct.camera import CameraModel, look_at
from reconstruct.errors import RenderError
from reconstruct.render import (Lighting, Mesh, barycentrics_torch, concat_meshes, get_renderer, interpolate,
                                interpolate_torch, interpolate_uv, pixel_rays, sample_texture, sample_texture_torch,
                                sh_basis, sh_from_directional, vertex_normals, vertex_normals_torch)
from reconstruct.render.raycast import RaycastRenderer

torch.set_num_threads(1)


def _grid_plane(n: int = 8, size: float = 0.4, z: float = 0.0):
    """A (n+1)^2-vertex plane in z = const, facing -z (towards a camera at negative z)."""
    xs = np.linspace(-size / 2, size / 2, n + 1)
    xx, yy = np.meshgrid(xs, xs)
    v = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, z)], axis=1)
    f = []
    for i in range(n):
        for j in range(n):
            a, b, c, d = i * (n + 1) + j, i * (n + 1) + j + 1, (i + 1) * (n + 1) + j, (i + 1) * (n + 1) + j + 1
            f += [[a, c, b], [b, c, d]]
    return v, np.array(f, np.int32)


def _camera(dist=(0.0, 0.0, 0.0, 0.0, 0.0), eye=(0.05, -0.03, -0.8), size=(320, 240), model="pinhole"):
    R, t = look_at(np.array(eye), np.zeros(3))
    w, h = size
    K = np.array([[300.0, 0, w / 2 - 0.5 + 3.2], [0, 302.0, h / 2 - 0.5 - 2.1], [0, 0, 1]])
    return CameraModel("cam", K, np.array(dist), R, t, size, model)


@pytest.mark.parametrize("dist,model", [((0, 0, 0, 0, 0), "pinhole"), ((-0.25, 0.08, 0.001, -0.0015, 0.0), "pinhole"),
                                        ((0.05, -0.02, 0.01, 0.0), "fisheye")])
def test_rendered_points_project_onto_their_pixels(dist, model):
    v, f = _grid_plane(size=1.2)  # fills the image, so the distorted corners are tested too
    cam = _camera(dist, model=model)
    fr = RaycastRenderer().rasterize(v, f, cam)
    assert fr.mask.sum() > 0.9 * fr.mask.size
    P = interpolate(fr, f, v)[fr.mask]  # world point each pixel sees
    uv = cam.project(P)
    yy, xx = np.nonzero(fr.mask)
    err = np.hypot(uv[:, 0] - xx, uv[:, 1] - yy)
    # tolerance 0.5 px (brief); measured max ~0.003 px pinhole, ~0.01 px with distortion (float32 rays)
    assert err.max() < 0.05, err.max()
    # depth is the camera-frame z of the hit point
    z = cam.to_camera(P)[:, 2]
    assert np.abs(fr.depth[fr.mask] - z).max() < 1e-5


def test_fragments_background_and_barycentrics():
    v, f = _grid_plane(n=2, size=0.1)
    cam = _camera()
    fr = RaycastRenderer().rasterize(v, f, cam)
    bg = ~fr.mask
    assert bg.any() and fr.mask.any()
    assert np.all(fr.triangle[bg] == -1) and np.all(np.isinf(fr.depth[bg])) and np.all(fr.bary[bg] == 0)
    b = fr.bary[fr.mask]
    assert np.allclose(b.sum(1), 1, atol=1e-5) and b.min() > -1e-5
    assert fr.triangle.dtype == np.int32 and fr.bary.dtype == np.float32 and fr.shape == (240, 320)


def test_cube_depth_and_occlusion():
    import trimesh

    box = trimesh.creation.box(extents=(0.2, 0.2, 0.2))
    cam = _camera(eye=(0.0, 0.0, -1.0))
    fr = RaycastRenderer().rasterize(box.vertices, box.faces, cam)
    # the centre pixel sees the front face at z = 1.0 - 0.1 = 0.9 m (the back face is hidden)
    u, v = cam.project(np.zeros((1, 3)))[0]
    assert abs(fr.depth[int(round(v)), int(round(u))] - 0.9) < 1e-5
    normals = box.face_normals[fr.triangle[fr.mask]]
    assert np.all(normals[:, 2] < -0.99)  # only the face towards the camera (-z) is visible


def test_torch_interpolation_matches_numpy_and_has_gradients():
    v, f = _grid_plane()
    cam = _camera((-0.1, 0.02, 0, 0, 0))
    fr = RaycastRenderer().rasterize(v, f, cam)
    attr = np.random.default_rng(0).random((len(v), 3)).astype(np.float32)
    ref = interpolate(fr, f, attr)
    ta = torch.tensor(attr, requires_grad=True)
    out = interpolate_torch(fr, f, ta)
    assert np.abs(out.detach().numpy() - ref).max() < 1e-5
    out.sum().backward()
    assert ta.grad.abs().sum() > 0
    # barycentrics recomputed from camera-frame vertices reproduce the ray caster's, with gradients to vertices
    vc = torch.tensor(cam.to_camera(v), dtype=torch.float64, requires_grad=True)
    b = barycentrics_torch(fr, f, vc)
    assert np.abs(b.detach().numpy() - fr.bary[fr.mask]).max() < 1e-4
    (b[:, 1] * 3 + b[:, 2]).sum().backward()
    assert torch.isfinite(vc.grad).all() and vc.grad.abs().sum() > 0


def test_texture_sampling_numpy_and_torch_agree():
    rng = np.random.default_rng(1)
    tex = rng.random((16, 24, 3)).astype(np.float32)
    uv = rng.random((500, 2)).astype(np.float32)
    a = sample_texture(tex, uv)
    b = sample_texture_torch(torch.tensor(tex), torch.tensor(uv)).numpy()
    assert np.abs(a - b).max() < 1e-5
    # texel centres return the texel: texel (row 0, col 0) is at u = 0.5/W, v = 1 - 0.5/H (origin bottom-left)
    assert np.allclose(sample_texture(tex, np.array([[0.5 / 24, 1 - 0.5 / 16]])), tex[0, 0])


def test_textured_render_uses_uvs():
    v, f = _grid_plane(n=1, size=0.3)
    uvs = (v[:, :2] / 0.3 + 0.5).astype(np.float32)
    tex = np.zeros((2, 2, 3), np.float32)
    tex[:, 1] = 1.0  # right half (u > 0.5) white
    cam = _camera(eye=(0, 0, -0.8))
    out = RaycastRenderer().render(Mesh(v, f, uvs=uvs, triangle_uvs=f, texture=tex), cam,
                                   Lighting(ambient=np.ones(3)))
    uvi = interpolate_uv(out.fragments, f, uvs)
    m = out.mask & (np.abs(uvi[..., 0] - 0.5) > 0.3)
    right = uvi[..., 0] > 0.5
    assert np.allclose(out.albedo[m & right], 1, atol=1e-5) and np.allclose(out.albedo[m & ~right], 0, atol=1e-5)


def test_sh_directional_approximates_lambert():
    rng = np.random.default_rng(2)
    n = rng.normal(size=(2000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    l = np.array([0.3, -0.4, -0.8])
    sh = sh_from_directional(l, (1.0, 0.5, 0.2))
    e_sh = Lighting(ambient=np.zeros(3), sh=sh).irradiance(n)
    e_dir = Lighting(ambient=np.zeros(3), directions=l[None], colors=[[1.0, 0.5, 0.2]]).irradiance(n)
    # order-2 SH approximates the clamped cosine to ~9% of its peak (Ramamoorthi & Hanrahan 2001); measured 0.075
    assert np.abs(e_sh - e_dir).max() < 0.1
    assert sh_basis(n).shape == (2000, 9)
    with pytest.raises(RenderError):
        Lighting(sh=np.zeros((4, 3)))


def test_vertex_normals_and_render_shading():
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    n = vertex_normals(s.vertices, s.faces)
    assert np.min(np.sum(n * s.vertices / 0.1, axis=1)) > 0.99  # outward
    nt = vertex_normals_torch(torch.tensor(s.vertices), torch.tensor(s.faces, dtype=torch.long)).numpy()
    assert np.abs(nt - n).max() < 1e-6
    cam = _camera(eye=(0, 0, -0.6))
    light = Lighting(ambient=np.zeros(3), directions=[[0, 0, -1.0]], colors=[[1, 1, 1]])  # towards the camera
    out = RaycastRenderer().render(Mesh(s.vertices, s.faces, vertex_colors=np.full((len(s.vertices), 3), 0.5)), cam,
                                   light, background=0.25)
    u, v = cam.project(np.array([[0, 0, -0.1]]))[0]
    assert abs(out.image[int(round(v)), int(round(u)), 0] - 0.5) < 0.01  # albedo 0.5 x cos(0)
    assert np.all(out.image[~out.mask] == 0.25)


def test_pixel_rays_are_undistorted_directions():
    cam = _camera((-0.2, 0.05, 0, 0, 0))
    d = pixel_rays(cam)
    assert d.shape == (240, 320, 3) and np.all(d[..., 2] == 1)
    uv = cam.distort_normalized(d[::37, ::41, :2].reshape(-1, 2))
    yy, xx = np.mgrid[0:240:37, 0:320:41]
    # OpenCV's iterative undistortion converges to ~0.002 px in the corners (measured 0.00196); tolerance 0.01
    assert np.abs(uv - np.stack([xx.ravel(), yy.ravel()], 1)).max() < 0.01


def test_concat_meshes_offsets_triangles():
    v, f = _grid_plane(n=1)
    m = concat_meshes([Mesh(v, f), Mesh(v + [0, 0, 0.1], f, vertex_colors=np.ones((len(v), 3)))])
    assert m.triangles.max() == 2 * len(v) - 1 and m.vertex_colors[:len(v)].max() == pytest.approx(0.7)


def test_renderer_registered_through_plugin_hook():
    host = make_plugin_manager()
    r = get_renderer(host.components(), "auto", device="cpu")
    assert r.name == "raycast" and r.priority == 10 and RaycastRenderer.available("cpu")
    assert get_renderer(host.components(), "raycast").name == "raycast"


def test_render_meshes_occlusion_and_per_mesh_albedo():
    from reconstruct.render import render_meshes

    back, f = _grid_plane(n=2, size=0.4)
    front, _ = _grid_plane(n=2, size=0.1, z=-0.1)  # nearer the camera at z = -0.8
    tex = np.full((4, 4, 3), 0.2, np.float32)
    uvs = (back[:, :2] / 0.4 + 0.5).astype(np.float32)
    meshes = [Mesh(back, f, uvs=uvs, triangle_uvs=f, texture=tex),
              Mesh(front, f, vertex_colors=np.full((len(front), 3), 0.9))]
    cam = _camera(eye=(0, 0, -0.8))
    out = render_meshes(RaycastRenderer(), meshes, cam, Lighting(ambient=np.ones(3)))
    u, v = cam.project(np.array([[0.0, 0.0, -0.1]]))[0]
    centre = out.albedo[int(round(v)), int(round(u))]
    u2, v2 = cam.project(np.array([[0.15, 0.15, 0.0]]))[0]
    corner = out.albedo[int(round(v2)), int(round(u2))]
    assert np.allclose(centre, 0.9) and np.allclose(corner, 0.2)  # the small front plane hides the textured one
    assert out.fragments.triangle.max() >= len(f)  # fragments index the concatenated triangles


def _full_cast(renderer, v, f, cam, monkeypatch):
    """The fragments with every pixel's ray cast (the window forced to the whole image)."""
    from reconstruct.render import raycast

    with monkeypatch.context() as m:
        m.setattr(raycast, "mesh_window", lambda camera, vertices, size: (0, 0, *size))
        return renderer.rasterize(v, f, cam)


@pytest.mark.parametrize("dist,model", [((0, 0, 0, 0, 0), "pinhole"), ((-0.25, 0.08, 0.001, -0.0015, 0.0), "pinhole"),
                                        ((0.05, -0.02, 0.01, 0.0), "fisheye")])
@pytest.mark.parametrize("size,offset", [(0.3, (0, 0, 0)), (1.2, (0, 0, 0)), (0.3, (0.35, 0.1, 0))])
def test_rays_are_cast_only_where_the_mesh_can_be_and_give_the_whole_images_fragments(dist, model, size, offset,
                                                                                         monkeypatch):
    """A small mesh (centre, and past the image's right edge) and one filling the image, under three lenses: the
    fragments are the whole image's bit for bit, and a small mesh casts a fraction of the rays."""
    import open3d as o3d

    v, f = _grid_plane(n=12, size=size)
    v = v + np.array(offset)
    cam = _camera(dist, model=model)
    r = RaycastRenderer()
    full = _full_cast(r, v, f, cam, monkeypatch)
    cast = []
    real = o3d.t.geometry.RaycastingScene.cast_rays

    class Counting(o3d.t.geometry.RaycastingScene):
        def cast_rays(self, rays, *a, **k):
            cast.append(int(np.prod(rays.shape[:-1])))
            return real(self, rays, *a, **k)

    monkeypatch.setattr(o3d.t.geometry, "RaycastingScene", Counting)
    win = r.rasterize(v, f, cam)
    np.testing.assert_array_equal(win.triangle, full.triangle)
    np.testing.assert_array_equal(win.bary, full.bary)
    np.testing.assert_array_equal(win.depth, full.depth)
    ys, xs = np.nonzero(full.mask)
    box = (np.ptp(xs) + 1 + 10) * (np.ptp(ys) + 1 + 10)  # the hits' box grown by the 4 px margin and a pixel of rounding
    assert full.mask.any() and cast and cast[0] <= max(box, 0), (cast, box, full.mask.size)
    if size < 1:
        assert cast[0] < 0.5 * full.mask.size, (cast, full.mask.size)


def test_a_mesh_behind_the_camera_or_off_the_image_casts_no_hit():
    v, f = _grid_plane(n=2, size=0.1)
    cam = _camera()
    r = RaycastRenderer()
    assert not r.rasterize(v + np.array([0, 0, -5.0]), f, cam).mask.any()  # behind: whole image cast, no hit
    assert not r.rasterize(v + np.array([5.0, 0, 0]), f, cam).mask.any()  # beside: nothing cast
    assert not r.rasterize(v, f[:0], cam).mask.any()


def test_available_does_not_import_open3d(repo_root):
    # the render stage's cache key asks on every run; before (main e919757) it imported open3d.core (0.55 CPU-s,
    # with its plotly/dash visualisation) -> "True True" printed
    import subprocess
    import sys

    pytest.importorskip("open3d")
    code = ("import sys; from reconstruct.render.raycast import RaycastRenderer; "
            "print(RaycastRenderer.available('cpu'), 'open3d' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False"]


@pytest.mark.skipif(__import__("sys").platform == "win32", reason="Windows: the import decides (None)")
def test_extension_loads_without_importing_the_package(tmp_path, monkeypatch):
    import sys

    from reconstruct.lazy_imports import extension_loads

    for name, files in (("broken_ext_pkg", {"__init__.py": "raise RuntimeError('imported')",
                                            "core.so": "not an ELF file"}),
                        ("plain_pkg", {"__init__.py": ""})):
        (tmp_path / name).mkdir()
        for f, text in files.items():
            (tmp_path / name / f).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert extension_loads("broken_ext_pkg", "core") is False  # the loader refuses it (as a missing libusb would)
    assert "broken_ext_pkg" not in sys.modules  # its __init__ never ran
    assert extension_loads("plain_pkg", "core") is None  # no extension file: the caller imports
    assert extension_loads("no_such_pkg_anywhere", "core") is False
    assert extension_loads("numpy._core", "_multiarray_umath") is True


def test_available_follows_the_extension_check(monkeypatch):
    import sys

    from reconstruct import lazy_imports

    monkeypatch.delitem(sys.modules, "open3d", raising=False)  # restored after the test
    monkeypatch.setattr(lazy_imports, "extension_loads", lambda package, extension: False)
    assert RaycastRenderer.available("cpu") is False
    monkeypatch.setattr(lazy_imports, "extension_loads", lambda package, extension: True)
    assert RaycastRenderer.available("cpu") is True


def test_preload_whose_import_fails_is_a_render_error(monkeypatch):
    # available() only loads the extension: an import that fails after it (open3d's own __init__) must still read as
    # the renderer's error with what to install, not a bare ImportError from a driver's preload
    import sys

    monkeypatch.setitem(sys.modules, "open3d.core", None)  # the import system raises ImportError for it
    monkeypatch.setitem(sys.modules, "open3d", None)
    with pytest.raises(RenderError, match="failed to import") as e:
        RaycastRenderer.preload()
    assert "pip install open3d" in e.value.hint
