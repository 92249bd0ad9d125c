"""Rendering meshes through calibrated cameras: the renderer contract and the shared shading code.

Frames and units
    Meshes are in the project's world frame (OpenCV convention, metres); cameras are
    :class:`reconstruct.camera.CameraModel` (world-to-camera ``R, t``, K in pixels, OpenCV lens distortion, pixel
    (0, 0) = centre of the top-left pixel). Images are ``(H, W)`` with ``(W, H) = camera.image_size``. Colours are
    linear RGB floats (``linear_to_srgb`` encodes for 8-bit files). Lighting directions/normals are world-frame.

The contract of a renderer backend (what ``register_renderers`` returns; see :class:`RendererBase`)
    ``name: str`` and ``priority: int`` class attributes; ``available(device) -> bool`` classmethod;
    ``Renderer(device="cpu")``; and

    ``rasterize(vertices (V, 3) float metres world, triangles (F, 3) int, camera) -> Fragments``:
        per pixel the first triangle hit (``triangle`` (H, W) int32, -1 = background), its 3D barycentrics
        (``bary`` (H, W, 3) float32) and camera-frame z-depth (``depth`` (H, W) float32 metres, inf = background).
        Distortion is honoured: a point rendered at pixel p projects to p with ``camera.project`` (the raycast
        backend is exact to < 0.01 px; a backend that cannot distort must say its tolerance).

    ``render(mesh: Mesh, camera, lighting: Lighting | None = None, background=0.0) -> RenderOutput``:
        inherited from :class:`RendererBase` (albedo from the texture or vertex colours, times Lambert + ambient +
        SH irradiance, :mod:`.shading`). ``render_meshes(renderer, meshes, camera, ...)`` draws several meshes
        with mutual occlusion (e.g. a textured face plus vertex-coloured eyeballs).

Helpers on fragments (backend-independent, :mod:`.fragments`)
    ``interpolate(fragments, triangles, attr (V, C)) -> (H, W, C)``; ``interpolate_uv`` + ``sample_texture``
    (UV origin bottom-left, bilinear); torch versions ``interpolate_torch`` (differentiable w.r.t. attributes),
    ``barycentrics_torch`` (w.r.t. camera-frame vertex positions), ``sample_texture_torch`` (w.r.t. texture);
    ``pixel_rays(camera) -> (H, W, 3)`` undistorted camera-frame ray directions with z = 1.

Choosing a backend: :func:`get_renderer` (``"auto"`` = the available backend with the highest priority).
Backends: ``raycast`` (open3d Embree, CPU, priority 10, :mod:`.raycast`); ``pytorch3d`` (PyTorch3D rasterizer, chosen
by ``auto`` only on a CUDA device, priority 20, :mod:`.pytorch3d_backend`).
"""

from __future__ import annotations

from typing import Any

from ..errors import RenderError
from .base import Mesh, RendererBase, RenderOutput, concat_meshes, render_meshes, shade
from .fragments import (Fragments, barycentrics_torch, interpolate, interpolate_torch, interpolate_uv, pixel_rays,
                        sample_texture, sample_texture_torch)
from .shading import (Lighting, linear_to_srgb, sh_basis, sh_basis_torch, sh_from_directional, srgb_to_linear,
                      vertex_normals, vertex_normals_torch)


def renderer_class(components: Any, name: str = "auto", device: str = "cpu") -> type:
    """The renderer class ``name`` would use on ``device`` (``"auto"``: the available one with the highest
    priority), without building it. RenderError when none is available."""
    if name != "auto":
        cls = components.get("renderer", name)
        if not cls.available(device):
            raise RenderError(f"renderer {name!r} is not available on device {device!r}",
                              hint="use --renderer auto, or install what the backend needs (docs/rendering.md)")
        return cls
    ranked = sorted(components.all("renderer").values(), key=lambda c: -int(getattr(c, "priority", 0)))
    for cls in ranked:
        if cls.available(device):
            return cls
    raise RenderError(f"no renderer is available on device {device!r} (registered: "
                      f"{', '.join(c.name for c in ranked) or 'none'})",
                      hint="install open3d (the raycast backend) or check `reconstruct plugins`")


def get_renderer(components: Any, name: str = "auto", device: str = "cpu") -> RendererBase:
    """Instantiate the renderer ``name`` (or the best available one for ``device`` when ``"auto"``).

    ``components``: a :class:`reconstruct.plugins.Components` (``host.components()``).
    """
    return renderer_class(components, name, device)(device=device)


__all__ = [
    "Fragments", "Lighting", "Mesh", "RenderOutput", "RendererBase", "barycentrics_torch", "concat_meshes",
    "get_renderer", "renderer_class", "interpolate", "interpolate_torch", "interpolate_uv", "linear_to_srgb", "pixel_rays", "render_meshes",
    "sample_texture", "sample_texture_torch", "sh_basis", "sh_basis_torch", "sh_from_directional", "shade",
    "srgb_to_linear", "vertex_normals", "vertex_normals_torch",
]
