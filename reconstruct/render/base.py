"""What every renderer backend shares: the :class:`Mesh` it draws, the :class:`RenderOutput` it returns, and
:class:`RendererBase`, which turns a backend's ``rasterize`` into shaded images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from ..camera import CameraModel
from ..errors import RenderError
from .fragments import Fragments, sample_texture
from .shading import Lighting, vertex_normals


@dataclass(frozen=True, slots=True, eq=False)
class Mesh:
    """A triangle mesh in world coordinates, with its albedo.

    Attributes:
        vertices: (V, 3) float world positions, metres (OpenCV-convention world).
        triangles: (F, 3) int32 vertex indices, counter-clockwise seen from outside.
        vertex_colors: (V, 3) float32 linear-RGB albedo in [0, 1], or None.
        uvs: (T, 2) float32 texture coordinates (origin bottom-left) or None.
        triangle_uvs: (F, 3) int32 indices into ``uvs`` or None.
        texture: (Ht, Wt, 3) float32 linear-RGB albedo texture, or None. Where a texture is given it is used;
            else vertex colours; else grey 0.7.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    vertex_colors: np.ndarray | None = None
    uvs: np.ndarray | None = None
    triangle_uvs: np.ndarray | None = None
    texture: np.ndarray | None = None

    def __post_init__(self) -> None:
        v = np.asarray(self.vertices, np.float64)
        f = np.asarray(self.triangles, np.int32)
        if v.ndim != 2 or v.shape[1] != 3:
            raise RenderError(f"mesh vertices have shape {v.shape}, expected (V, 3)")
        if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or f.max() >= len(v))):
            raise RenderError(f"mesh triangles must be (F, 3) indices below {len(v)}")
        object.__setattr__(self, "vertices", v)
        object.__setattr__(self, "triangles", f)
        if self.vertex_colors is not None and np.shape(self.vertex_colors) != v.shape:
            raise RenderError(f"vertex_colors have shape {np.shape(self.vertex_colors)}, expected {v.shape}")
        if self.texture is not None and (self.uvs is None or self.triangle_uvs is None):
            raise RenderError("a textured mesh needs uvs and triangle_uvs")


def concat_meshes(meshes: Sequence[Mesh]) -> Mesh:
    """One mesh from several (e.g. face + eyeballs). Albedo becomes per-vertex: meshes with a texture contribute
    their texture sampled at their vertices' UVs, so use this for extra geometry, not for textured faces."""
    if not meshes:
        raise RenderError("concat_meshes needs at least one mesh")
    vs, fs, cs, off = [], [], [], 0
    for m in meshes:
        vs.append(m.vertices)
        fs.append(m.triangles + off)
        off += len(m.vertices)
        cs.append(_vertex_albedo(m))
    return Mesh(np.concatenate(vs), np.concatenate(fs), vertex_colors=np.concatenate(cs))


def _vertex_albedo(m: Mesh) -> np.ndarray:
    if m.vertex_colors is not None:
        return np.asarray(m.vertex_colors, np.float32)
    if m.texture is not None:
        uv = np.zeros((len(m.vertices), 2), np.float32)
        uv[m.triangles.ravel()] = np.asarray(m.uvs)[np.asarray(m.triangle_uvs).ravel()]
        return sample_texture(m.texture, uv)
    return np.full((len(m.vertices), 3), 0.7, np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class RenderOutput:
    """A shaded render.

    Attributes:
        image: (H, W, 3) float32 linear RGB radiance (background pixels hold ``background``).
        albedo: (H, W, 3) float32 linear-RGB albedo per pixel (0 on background).
        normals: (H, W, 3) float32 unit world-frame normals facing the camera (0 on background).
        fragments: the visibility it was shaded from.
    """

    image: np.ndarray
    albedo: np.ndarray
    normals: np.ndarray
    fragments: Fragments

    @property
    def mask(self) -> np.ndarray:
        return self.fragments.mask


class RendererBase:
    """Base of renderer backends. A backend implements :meth:`rasterize`; shading is shared here.

    ``device``: where torch outputs of a backend live (``"cpu"``/``"cuda"``); numpy outputs are always host arrays.
    """

    name: ClassVar[str] = ""
    priority: ClassVar[int] = 0

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    @classmethod
    def available(cls, device: str = "cpu") -> bool:  # pragma: no cover - overridden
        return False

    @classmethod
    def preload(cls) -> None:
        """Import now what :meth:`rasterize` will need (called in a driver before it forks workers, so that each
        does not import it again). Nothing by default."""

    def rasterize(self, vertices: np.ndarray, triangles: np.ndarray, camera: CameraModel) -> Fragments:
        """Visibility of a mesh ((V, 3) world metres, (F, 3) int) through ``camera``: see :class:`Fragments`."""
        raise NotImplementedError

    def render(self, mesh: Mesh, camera: CameraModel, lighting: Lighting | None = None,
               background: float | Sequence[float] = 0.0) -> RenderOutput:
        """Rasterize ``mesh`` and shade it: albedo (texture, else vertex colours) times Lambert/SH irradiance."""
        lighting = lighting or Lighting.key_light()
        frags = self.rasterize(mesh.vertices, mesh.triangles, camera)
        return shade(frags, mesh, lighting, background)


def render_meshes(renderer: "RendererBase", meshes: Sequence[Mesh], camera: CameraModel,
                  lighting: Lighting | None = None, background: float | Sequence[float] = 0.0) -> RenderOutput:
    """Render several meshes together (mutual occlusion), each shaded with its own albedo source (texture or
    vertex colours). The returned fragments index the *concatenated* triangles (mesh order, offsets added)."""
    if not meshes:
        raise RenderError("render_meshes needs at least one mesh")
    lighting = lighting or Lighting.key_light()
    offs = np.cumsum([0] + [len(m.vertices) for m in meshes])
    tri_offs = np.cumsum([0] + [len(m.triangles) for m in meshes])
    V = np.concatenate([m.vertices for m in meshes])
    F = np.concatenate([m.triangles + o for m, o in zip(meshes, offs[:-1])])
    frags = renderer.rasterize(V, F, camera)
    return _shade_parts(frags, meshes, tri_offs, lighting, background)


def shade(frags: Fragments, mesh: Mesh, lighting: Lighting, background: float | Sequence[float] = 0.0) -> RenderOutput:
    """Shade fragments of ``mesh`` (backend-independent; see :mod:`reconstruct.render.shading`)."""
    return _shade_parts(frags, [mesh], np.array([0, len(mesh.triangles)]), lighting, background)


def _shade_parts(frags: Fragments, meshes: Sequence[Mesh], tri_offs: np.ndarray, lighting: Lighting,
                 background: float | Sequence[float]) -> RenderOutput:
    cam = frags.camera
    H, W = frags.shape
    pix = np.flatnonzero(frags.mask)  # visible pixels, row-major
    tri_all = frags.triangle.reshape(-1)[pix]
    bary_all = frags.bary.reshape(-1, 3)[pix]
    alb = np.zeros((len(pix), 3), np.float32)
    nrm = np.zeros((len(pix), 3), np.float32)
    back = np.zeros(len(pix), bool)  # the pixel sees its triangle from behind
    for k, mesh in enumerate(meshes):
        if len(meshes) == 1:
            sel = slice(None)
            tri = tri_all
            b = bary_all
        else:
            sel = np.flatnonzero((tri_all >= tri_offs[k]) & (tri_all < tri_offs[k + 1]))
            if not len(sel):
                continue
            tri = tri_all[sel] - tri_offs[k]
            b = bary_all[sel]
        f = mesh.triangles[tri]  # (P, 3) vertex ids
        vn = vertex_normals(mesh.vertices, mesh.triangles).astype(np.float32)
        v0 = mesh.vertices[mesh.triangles[:, 0]]
        fn = np.cross(mesh.vertices[mesh.triangles[:, 1]] - v0, mesh.vertices[mesh.triangles[:, 2]] - v0)
        back[sel] = (np.einsum("fd,fd->f", fn, v0 - cam.center) > 0)[tri]
        if mesh.texture is None and mesh.vertex_colors is not None:
            attr = np.concatenate([vn, np.asarray(mesh.vertex_colors, np.float32)], axis=1)  # (V, 6): one gather
            vals = np.einsum("pk,pkc->pc", b, attr[f])
            nrm[sel], alb[sel] = vals[:, :3], vals[:, 3:]
            continue
        nrm[sel] = np.einsum("pk,pkc->pc", b, vn[f])
        if mesh.texture is not None:
            t = np.asarray(mesh.triangle_uvs)[tri]
            uv = np.einsum("pk,pkc->pc", b, np.asarray(mesh.uvs, np.float32)[t])
            alb[sel] = sample_texture(mesh.texture, uv)[..., :3]
        else:
            alb[sel] = 0.7
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    nrm[back] *= -1  # seen from behind (e.g. inside the mouth): light the side that faces the camera
    img = np.empty((H * W, 3), np.float32)
    img[...] = np.asarray(background, np.float32)
    img[pix] = alb * lighting.irradiance(nrm)
    albedo = np.zeros((H * W, 3), np.float32)
    albedo[pix] = alb
    normals = np.zeros((H * W, 3), np.float32)
    normals[pix] = nrm
    return RenderOutput(image=img.reshape(H, W, 3), albedo=albedo.reshape(H, W, 3), normals=normals.reshape(H, W, 3),
                        fragments=frags)
