"""Benchmark: the two renderer backends (``raycast`` on the CPU, ``pytorch3d``) rendering the ICT face at 1280x720
through the same ``Renderer.render`` call (rasterize + UV-texture albedo + SH shading), in the same run.

Usage:
  .venv/bin/python tools/bench_render.py                 # raycast (CPU) vs pytorch3d on the CPU, ratio printed
  .venv/bin/python tools/bench_render.py --device cuda   # pytorch3d on the GPU as well (where there is one)

Also prints how far the two backends' images are apart (mean absolute linear-RGB difference, coverage mismatch).
pytorch3d on the CPU takes 40-260 s per 720p frame on 2 busy cores; it runs once, raycast ``--repeats`` times.
``--quick``: 320x180 and a 512 px texture for both backends (the suite's ``./dev bench --quick``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ICT = ROOT / "reconstruct" / "assets" / "ict_facekit_light" / "ict_face_light_facearea.npz"  # shipped with the package


def _timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> list[dict]:
    """Print the timings and return them as rows of the bench suite (docs/benchmarks.md)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=None, help="raycast repeats (median reported; default 5)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: also time pytorch3d on the GPU (the CPU baseline still runs)")
    ap.add_argument("--model", type=Path, default=ICT, help="ICT-FaceKit light npz")
    ap.add_argument("--size", default=None, help="WIDTHxHEIGHT (default 1280x720; --quick: 320x180)")
    ap.add_argument("--quick", action="store_true", help="short run: 320x180, 512 px texture, 3 raycast repeats")
    ap.add_argument("--session", help="(bench suite) ignored: this benchmark uses the built-in ICT model")
    args, _ = ap.parse_known_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    size = args.size or ("320x180" if args.quick else "1280x720")
    import torch

    torch.set_num_threads(2)
    from reconstruct.camera import CameraModel, look_at
    from reconstruct.face.ict import load_ict_light
    from reconstruct.render import Lighting, Mesh, sh_from_directional
    from reconstruct.render.pytorch3d_backend import PyTorch3DRenderer
    from reconstruct.render.raycast import RaycastRenderer

    w, h = (int(x) for x in size.split("x"))
    res = f"{w}x{h}" + (" (quick)" if args.quick else "")
    model = load_ict_light(args.model, texture_size=512 if args.quick else 1024)
    flip = np.diag([1.0, -1.0, -1.0])  # model +y up, +z out of the face -> world y down, face towards the camera
    verts = model.mean.astype(np.float64) @ flip.T + np.array([0.0, 0.0, 0.6])
    mesh = Mesh(verts, model.triangles, uvs=model.uvs, triangle_uvs=model.triangle_uvs, texture=model.albedo_texture)
    R, t = look_at([0.05, -0.03, 0.0], [0.0, 0.0, 0.6])
    f = 1.4 * w
    cam = CameraModel("hero", K=np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]]),
                      dist=np.zeros(5), R=R, t=t, image_size=(w, h))
    light = Lighting(ambient=np.full(3, 0.3), sh=sh_from_directional([0.4, -0.5, -1.0], [0.8, 0.8, 0.8]))
    print(f"ICT face: {model.n_vertices} vertices, {len(model.triangles)} triangles, {w}x{h}, torch threads 2")

    ray = RaycastRenderer("cpu")
    ray.render(mesh, cam, light)  # warm-up (open3d import, ray grid cache)
    t_ray, out_ray = _timed(lambda: ray.render(mesh, cam, light), repeats)
    print(f"raycast   (cpu): {t_ray * 1000:9.1f} ms  (median of {repeats})")
    p3 = PyTorch3DRenderer("cpu")
    t_p3, out_p3 = _timed(lambda: p3.render(mesh, cam, light), 1)
    print(f"pytorch3d (cpu): {t_p3 * 1000:9.1f} ms  (1 run)")
    print(f"ratio pytorch3d-cpu / raycast-cpu: {t_p3 / t_ray:.1f}x  (target >= 10x)")
    both = out_ray.mask & out_p3.mask
    mismatch = int((out_ray.mask != out_p3.mask).sum())
    mad = float(np.abs(out_ray.image[both] - out_p3.image[both]).mean())
    print(f"agreement: coverage mismatch {mismatch} of {int(out_ray.mask.sum())} px, "
          f"mean |diff| {mad:.2e} linear RGB on shared pixels")
    rows = [{"stage": "render", "metric": f"raycast render frames/s, ICT face {res}", "value": 1 / t_ray,
             "baseline": 1 / t_p3, "ratio": t_p3 / t_ray,
             "notes": f"baseline: PyTorch3DRenderer on the CPU (1 run), same render() call, same run; raycast median "
                      f"of {repeats}"},
            {"stage": "render", "metric": "raycast vs pytorch3d: mean |diff| linear RGB", "value": mad,
             "baseline": None, "ratio": None,
             "notes": f"coverage mismatch {mismatch} of {int(out_ray.mask.sum())} px, {res}"}]
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("pytorch3d (cuda): no CUDA GPU visible; skipped")
            return rows
        gpu = PyTorch3DRenderer("cuda")
        gpu.render(mesh, cam, light)
        torch.cuda.synchronize()
        t_gpu, out_gpu = _timed(lambda: gpu.render(mesh, cam, light), repeats)
        print(f"pytorch3d (cuda, {torch.cuda.get_device_name()}): {t_gpu * 1000:9.1f} ms  (median of {repeats}; "
              "numpy shading on the host included)")
        print(f"ratio raycast-cpu / pytorch3d-cuda: {t_ray / t_gpu:.2f}x")
        both = out_ray.mask & out_gpu.mask
        print(f"agreement (cuda): coverage mismatch {int((out_ray.mask != out_gpu.mask).sum())} px, mean |diff| "
              f"{np.abs(out_ray.image[both] - out_gpu.image[both]).mean():.2e}")
        rows.append({"stage": "render", "metric": f"pytorch3d cuda frames/s, {res}", "value": 1 / t_gpu,
                     "baseline": 1 / t_ray, "ratio": t_ray / t_gpu,
                     "notes": f"baseline: raycast on the CPU, same run; {torch.cuda.get_device_name()}"})
    return rows


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
