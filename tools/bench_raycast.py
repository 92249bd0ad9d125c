"""Benchmark: the raycast renderer on the ICT face model at 1280x720 (CPU), next to pytorch3d's CPU rasterizer.

Usage: .venv/bin/python tools/bench_raycast.py [--repeats 5] [--no-pytorch3d] [--quick]
Prints rasterize and full render (albedo + Lambert/SH shading) times, and the ratio to pytorch3d's hard
``MeshRasterizer`` on the CPU for the same mesh, camera and resolution, measured in the same run. ``--quick``: both at
320x180 (pytorch3d's CPU rasterizer needs minutes at 720p on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> list[dict]:
    """Print the timings and return them as rows of the bench suite (docs/benchmarks.md)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=None, help="raycast repeats, median reported (default 5)")
    ap.add_argument("--no-pytorch3d", action="store_true", help="skip the pytorch3d baseline (slow: 40-260 s on 2 cores)")
    ap.add_argument("--quick", action="store_true",
                    help="short run: both renderers at 320x180 (pytorch3d on the CPU takes seconds there, not minutes)")
    ap.add_argument("--session", help="(bench suite) ignored: this benchmark uses the built-in ICT model")
    args, _ = ap.parse_known_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    w, h = (320, 180) if args.quick else (1280, 720)
    res = f"{w}x{h}" + (" (quick)" if args.quick else "")
    import torch

    torch.set_num_threads(2)
    from reconstruct.camera import CameraModel, look_at
    from reconstruct.render import Lighting, Mesh, sh_from_directional
    from reconstruct.render.raycast import RaycastRenderer

    from reconstruct.assets import ict_light_path

    d = np.load(ict_light_path())
    v = d["mean"].astype(np.float64) * 0.01 * np.array([1, -1, -1])  # cm, y up -> m, OpenCV world (y down)
    f = d["triangles"]
    R, t = look_at(np.array([0.05, -0.02, -0.6]), np.zeros(3))
    s = w / 1280  # same framing at every resolution
    K = np.array([[1500.0 * s, 0, (w - 1) / 2], [0, 1500.0 * s, (h - 1) / 2], [0, 0, 1]])
    cam = CameraModel("hero", K, np.zeros(5), R, t, (w, h))
    r = RaycastRenderer()
    mesh = Mesh(v, f, vertex_colors=np.full((len(v), 3), 0.6))
    light = Lighting(sh=sh_from_directional([0.3, -0.4, -1.0]))
    r.render(mesh, cam, light)  # warm-up (ray grid cache)

    def timeit(fn):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    t_rast = timeit(lambda: r.rasterize(v, f, cam))
    t_render = timeit(lambda: r.render(mesh, cam, light))
    print(f"ICT face ({len(v)} vertices, {len(f)} triangles), {res}, CPU, torch threads {torch.get_num_threads()}")
    print(f"raycast rasterize: {t_rast * 1000:8.1f} ms")
    print(f"raycast render   : {t_render * 1000:8.1f} ms (rasterize + albedo + normals + SH shading)")
    t_p3d = None
    if not args.no_pytorch3d:
        from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
        from pytorch3d.structures import Meshes
        from pytorch3d.utils import cameras_from_opencv_projection

        cams = cameras_from_opencv_projection(torch.tensor(R[None], dtype=torch.float32),
                                              torch.tensor(t[None], dtype=torch.float32),
                                              torch.tensor(K[None], dtype=torch.float32), torch.tensor([[h, w]]))
        rast = MeshRasterizer(cameras=cams, raster_settings=RasterizationSettings(image_size=(h, w),
                                                                                   faces_per_pixel=1, bin_size=0))
        meshes = Meshes([torch.tensor(v, dtype=torch.float32)], [torch.tensor(f, dtype=torch.long)])
        t0 = time.perf_counter()
        rast(meshes)
        t_p3d = time.perf_counter() - t0
        print(f"pytorch3d MeshRasterizer (CPU, 1 run): {t_p3d * 1000:8.1f} ms")
        print(f"ratio pytorch3d / raycast rasterize: {t_p3d / t_rast:6.1f}x;  / raycast render: {t_p3d / t_render:6.1f}x")
    base = "baseline: pytorch3d hard MeshRasterizer on the CPU (1 run), same mesh/camera/resolution, same run"
    return [
        {"stage": "raycast", "metric": f"rasterize frames/s, ICT face {res}", "value": 1 / t_rast,
         "baseline": None if t_p3d is None else 1 / t_p3d, "ratio": None if t_p3d is None else t_p3d / t_rast,
         "notes": f"median of {repeats}; " + (base if t_p3d is not None else "pytorch3d skipped")},
        {"stage": "raycast", "metric": f"render frames/s (raster+shading), {res}", "value": 1 / t_render,
         "baseline": None if t_p3d is None else 1 / t_p3d, "ratio": None if t_p3d is None else t_p3d / t_render,
         "notes": "baseline: pytorch3d rasterization alone (no shading)" if t_p3d is not None else "pytorch3d skipped"},
    ]


if __name__ == "__main__":
    main(sys.argv[1:])
