"""Lambertian shading: ambient + directional lights + second-order spherical-harmonics (SH) irradiance.

All directions and normals are in the **world frame** (the project's OpenCV-convention world, metres); colours and
irradiance are linear RGB. A surface of albedo ``a`` (linear RGB in [0, 1]) with unit normal ``n`` gets

    radiance(n) = a * (ambient + sum_i color_i * max(0, n . l_i) + sum_k sh[k] * Y_k(n))

where ``l_i`` points from the surface *towards* light ``i`` and ``Y_k`` are the nine real SH basis functions of
bands 0-2 in the order (l, m) = (0,0), (1,-1), (1,0), (1,1), (2,-2), (2,-1), (2,0), (2,1), (2,2):

    Y = [0.282095, 0.488603 y, 0.488603 z, 0.488603 x, 1.092548 xy, 1.092548 yz, 0.315392 (3z^2 - 1),
         1.092548 xz, 0.546274 (x^2 - y^2)]

``sh`` (9, 3) are *irradiance* coefficients (the clamped-cosine convolution of Ramamoorthi & Hanrahan 2001,
"An efficient representation for irradiance environment maps", is already folded in): :func:`sh_from_directional`
turns a directional light into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import RenderError

SH_BAND_FACTORS = np.array([np.pi] + [2 * np.pi / 3] * 3 + [np.pi / 4] * 5)  # A_l of the clamped cosine


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """(N, 3) unit normals -> (N, 9) real SH basis values (order in the module docstring)."""
    n = np.asarray(normals, np.float64).reshape(-1, 3)
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    return np.stack([np.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x, 1.092548 * x * y,
                     1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z, 0.546274 * (x * x - y * y)],
                    axis=1)


def sh_basis_f32(n: np.ndarray) -> np.ndarray:
    """float32 :func:`sh_basis` for (N, 3) float32 unit normals (the shading hot path)."""
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    out = np.empty((len(n), 9), np.float32)
    out[:, 0] = 0.282095
    out[:, 1], out[:, 2], out[:, 3] = 0.488603 * y, 0.488603 * z, 0.488603 * x
    out[:, 4], out[:, 5] = 1.092548 * x * y, 1.092548 * y * z
    out[:, 6] = 0.315392 * (3 * z * z - 1)
    out[:, 7], out[:, 8] = 1.092548 * x * z, 0.546274 * (x * x - y * y)
    return out


def sh_basis_torch(normals):
    """Torch version of :func:`sh_basis` ((N, 3) tensor -> (N, 9)), differentiable."""
    import torch

    x, y, z = normals[:, 0], normals[:, 1], normals[:, 2]
    return torch.stack([torch.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x, 1.092548 * x * y,
                        1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z,
                        0.546274 * (x * x - y * y)], dim=1)


def sh_from_directional(direction: np.ndarray, color=(1.0, 1.0, 1.0)) -> np.ndarray:
    """(9, 3) SH irradiance coefficients of a directional light (band-limited approximation of
    ``color * max(0, n . l)``); ``direction`` points from the surface towards the light (world frame)."""
    l = np.asarray(direction, np.float64).reshape(3)
    l = l / np.linalg.norm(l)
    return (SH_BAND_FACTORS * sh_basis(l[None])[0])[:, None] * np.asarray(color, np.float64)[None, :]


@dataclass(frozen=True, slots=True, eq=False)
class Lighting:
    """A light rig (world frame, linear RGB).

    Attributes:
        ambient: (3,) uniform irradiance.
        directions: (L, 3) unit vectors from the surface towards each directional light.
        colors: (L, 3) irradiance of each directional light at normal incidence.
        sh: (9, 3) SH irradiance coefficients (module docstring), or None.
    """

    ambient: np.ndarray = field(default_factory=lambda: np.full(3, 0.35))
    directions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    sh: np.ndarray | None = None

    def __post_init__(self) -> None:
        amb = np.broadcast_to(np.asarray(self.ambient, np.float64), (3,)).copy()
        d = np.asarray(self.directions, np.float64).reshape(-1, 3)
        c = np.asarray(self.colors, np.float64).reshape(-1, 3)
        if d.shape != c.shape:
            raise RenderError(f"lighting: {len(d)} light directions but {len(c)} colours")
        norms = np.linalg.norm(d, axis=1, keepdims=True)
        if np.any(norms < 1e-12):
            raise RenderError("lighting: a light direction is zero; give a unit vector towards the light")
        object.__setattr__(self, "ambient", amb)
        object.__setattr__(self, "directions", d / norms)
        object.__setattr__(self, "colors", c)
        if self.sh is not None:
            sh = np.asarray(self.sh, np.float64)
            if sh.shape != (9, 3):
                raise RenderError(f"lighting: SH coefficients have shape {sh.shape}, expected (9, 3)")
            object.__setattr__(self, "sh", sh)

    @classmethod
    def key_light(cls, direction=(0.4, -0.5, -1.0), color=0.75, ambient=0.3) -> "Lighting":
        """One directional key light plus ambient (``direction`` towards the light, world frame)."""
        return cls(ambient=np.full(3, ambient), directions=np.asarray(direction, float)[None],
                   colors=np.full((1, 3), color))

    def irradiance(self, normals: np.ndarray) -> np.ndarray:
        """(N, 3) unit world-frame normals -> (N, 3) float32 irradiance (multiply by albedo for radiance)."""
        n = np.asarray(normals, np.float32).reshape(-1, 3)
        e = np.empty(n.shape, np.float32)
        e[...] = self.ambient.astype(np.float32)
        if len(self.directions):
            e += np.clip(n @ self.directions.T.astype(np.float32), 0, None) @ self.colors.astype(np.float32)
        if self.sh is not None:
            e += sh_basis_f32(n) @ self.sh.astype(np.float32)
        return e


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals (outward for counter-clockwise triangles); zero for unused vertices."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(triangles)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    idx = f.reshape(-1)
    n = np.stack([np.bincount(idx, weights=np.repeat(fn[:, c], 3), minlength=len(v)) for c in range(3)], axis=1)
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)


def vertex_normals_torch(vertices, triangles):
    """Torch version of :func:`vertex_normals` ((V, 3) tensor, (F, 3) long tensor), differentiable."""
    import torch

    v0, v1, v2 = vertices[triangles[:, 0]], vertices[triangles[:, 1]], vertices[triangles[:, 2]]
    fn = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)
    n = torch.zeros_like(vertices)
    for k in range(3):
        n = n.index_add(0, triangles[:, k], fn)
    return torch.nn.functional.normalize(n, dim=-1, eps=1e-12)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB-encoded [0, 1] (IEC 61966-2-1)."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear [0, 1] (exact inverse of :func:`linear_to_srgb` on [0, 1]), float32:
    ``where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)`` of ``clip(x, 0, 1)``, every step in float32,
    worked in place on two arrays (the same values as that expression; a 1080p face region in a third of its
    time: no array per step, the linear branch only where it applies)."""
    a = np.asarray(x, np.float32)
    x = np.clip(a, 0.0, 1.0, out=np.empty(a.shape, np.float32))  # a new array (0-d too): divided in place below
    out = np.add(x, np.float32(0.055), out=np.empty_like(x))
    out /= np.float32(1.055)
    np.power(out, np.float32(2.4), out=out)
    np.divide(x, np.float32(12.92), out=out, where=x <= np.float32(0.04045))
    return out
