"""The fit stage's world-frame meshes, one per frame: ``out/fit/meshes/<frame:06d>.ply``.

Binary little-endian PLY: float32 ``x y z`` per vertex (metres, the world of ``calibration.json``) and a
``vertex_indices`` list (uchar count 3, int32 indices) per triangle -- the layout trimesh wrote before; written
directly (importing trimesh cost the fit stage 0.5 s). Any PLY reader (trimesh, open3d, Blender) reads them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: binary PLY records of a triangle: the vertex count (uchar, 3) and three int32 vertex indices
PLY_FACE = np.dtype([("n", "u1"), ("v", "<i4", (3,))])


def mesh_path(folder: Path, frame: int) -> Path:
    """Frame ``frame``'s mesh in ``folder``."""
    return Path(folder) / f"{int(frame):06d}.ply"


def ply_faces(triangles: np.ndarray) -> np.ndarray:
    """(F,) :data:`PLY_FACE` records of ``triangles`` (F, 3), for :func:`write_ply`."""
    tri = np.asarray(triangles)
    faces = np.empty(len(tri), PLY_FACE)
    faces["n"] = 3
    faces["v"] = tri
    return faces


def write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """One mesh: ``vertices`` (V, 3) and ``faces`` from :func:`ply_faces` (the same records serve every frame)."""
    v = np.ascontiguousarray(vertices, "<f4").reshape(-1, 3)
    header = ("ply\nformat binary_little_endian 1.0\ncomment reconstruct fit stage\n"
              f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(v.tobytes())
        f.write(np.ascontiguousarray(faces, PLY_FACE).tobytes())


def write_meshes(folder: Path, frames: np.ndarray, vertices: np.ndarray, triangles: np.ndarray,
                 sync: bool = False) -> None:
    """:func:`mesh_path` of every frame: ``vertices[i]`` (F, V, 3) as frame ``frames[i]``'s mesh, each file
    written atomically (``sync=False``: no fsync per file, for a stage's temporary folder, whose commit flushes it)."""
    from ..session import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    faces = ply_faces(triangles)
    for f, v in zip(frames, vertices):
        with atomic_path(mesh_path(folder, f), suffix=".ply", sync=sync) as tmp:
            write_ply(tmp, v, faces)
