"""Benchmark: the raycast renderer on the ICT face model at 1280x720 (CPU), next to pytorch3d's CPU rasterizer.

Usage: .venv/bin/python tools/bench_raycast.py [--repeats 5] [--no-pytorch3d]
Prints rasterize and full render (albedo + Lambert/SH shading) times, and the ratio to pytorch3d's hard
``MeshRasterizer`` on the CPU for the same mesh, camera and resolution, measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-pytorch3d", action="store_true", help="skip the pytorch3d baseline (slow: 40-260 s on 2 cores)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from reconstruct.camera import CameraModel, look_at
    from reconstruct.render import Lighting, Mesh, sh_from_directional
    from reconstruct.render.raycast import RaycastRenderer

    d = np.load(ROOT.parent / "shared/data/models/ict_facekit_light/ict_face_light_facearea.npz")
    v = d["mean"].astype(np.float64) * 0.01 * np.array([1, -1, -1])  # cm, y up -> m, OpenCV world (y down)
    f = d["triangles"]
    R, t = look_at(np.array([0.05, -0.02, -0.6]), np.zeros(3))
    K = np.array([[1500.0, 0, 639.5], [0, 1500.0, 359.5], [0, 0, 1]])
    cam = CameraModel("hero", K, np.zeros(5), R, t, (1280, 720))
    r = RaycastRenderer()
    mesh = Mesh(v, f, vertex_colors=np.full((len(v), 3), 0.6))
    light = Lighting(sh=sh_from_directional([0.3, -0.4, -1.0]))
    r.render(mesh, cam, light)  # warm-up (ray grid cache)

    def timeit(fn):
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    t_rast = timeit(lambda: r.rasterize(v, f, cam))
    t_render = timeit(lambda: r.render(mesh, cam, light))
    print(f"ICT face ({len(v)} vertices, {len(f)} triangles), 1280x720, CPU, torch threads {torch.get_num_threads()}")
    print(f"raycast rasterize: {t_rast * 1000:8.1f} ms")
    print(f"raycast render   : {t_render * 1000:8.1f} ms (rasterize + albedo + normals + SH shading)")
    if not args.no_pytorch3d:
        from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
        from pytorch3d.structures import Meshes
        from pytorch3d.utils import cameras_from_opencv_projection

        cams = cameras_from_opencv_projection(torch.tensor(R[None], dtype=torch.float32),
                                              torch.tensor(t[None], dtype=torch.float32),
                                              torch.tensor(K[None], dtype=torch.float32), torch.tensor([[720, 1280]]))
        rast = MeshRasterizer(cameras=cams, raster_settings=RasterizationSettings(image_size=(720, 1280),
                                                                                   faces_per_pixel=1, bin_size=0))
        meshes = Meshes([torch.tensor(v, dtype=torch.float32)], [torch.tensor(f, dtype=torch.long)])
        t0 = time.perf_counter()
        rast(meshes)
        t_p3d = time.perf_counter() - t0
        print(f"pytorch3d MeshRasterizer (CPU, 1 run): {t_p3d * 1000:8.1f} ms")
        print(f"ratio pytorch3d / raycast rasterize: {t_p3d / t_rast:6.1f}x;  / raycast render: {t_p3d / t_render:6.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
