"""Benchmark: the two renderer backends (``raycast`` on the CPU, ``pytorch3d``) rendering the ICT face at 1280x720
through the same ``Renderer.render`` call (rasterize + UV-texture albedo + SH shading), in the same run.

Usage:
  .venv/bin/python tools/bench_render.py                 # raycast (CPU) vs pytorch3d on the CPU, ratio printed
  .venv/bin/python tools/bench_render.py --device cuda   # pytorch3d on the GPU as well (where there is one)

Also prints how far the two backends' images are apart (mean absolute linear-RGB difference, coverage mismatch).
pytorch3d on the CPU takes 40-260 s per 720p frame on 2 busy cores; it runs once, raycast ``--repeats`` times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ICT = ROOT.parent / "shared" / "data" / "models" / "ict_facekit_light" / "ict_face_light_facearea.npz"


def _timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="raycast repeats (median reported)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: also time pytorch3d on the GPU (the CPU baseline still runs)")
    ap.add_argument("--model", type=Path, default=ICT, help="ICT-FaceKit light npz")
    ap.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from reconstruct.camera import CameraModel, look_at
    from reconstruct.face.ict import load_ict_light
    from reconstruct.render import Lighting, Mesh, sh_from_directional
    from reconstruct.render.pytorch3d_backend import PyTorch3DRenderer
    from reconstruct.render.raycast import RaycastRenderer

    w, h = (int(x) for x in args.size.split("x"))
    model = load_ict_light(args.model, texture_size=1024)
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
    t_ray, out_ray = _timed(lambda: ray.render(mesh, cam, light), args.repeats)
    print(f"raycast   (cpu): {t_ray * 1000:9.1f} ms  (median of {args.repeats})")
    p3 = PyTorch3DRenderer("cpu")
    t_p3, out_p3 = _timed(lambda: p3.render(mesh, cam, light), 1)
    print(f"pytorch3d (cpu): {t_p3 * 1000:9.1f} ms  (1 run)")
    print(f"ratio pytorch3d-cpu / raycast-cpu: {t_p3 / t_ray:.1f}x  (target >= 10x)")
    both = out_ray.mask & out_p3.mask
    print(f"agreement: coverage mismatch {int((out_ray.mask != out_p3.mask).sum())} of {int(out_ray.mask.sum())} px, "
          f"mean |diff| {np.abs(out_ray.image[both] - out_p3.image[both]).mean():.2e} linear RGB on shared pixels")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("pytorch3d (cuda): no CUDA GPU visible; skipped")
            return 0
        gpu = PyTorch3DRenderer("cuda")
        gpu.render(mesh, cam, light)
        torch.cuda.synchronize()
        t_gpu, out_gpu = _timed(lambda: gpu.render(mesh, cam, light), args.repeats)
        print(f"pytorch3d (cuda, {torch.cuda.get_device_name()}): {t_gpu * 1000:9.1f} ms  (median of {args.repeats}; "
              "numpy shading on the host included)")
        print(f"ratio raycast-cpu / pytorch3d-cuda: {t_ray / t_gpu:.2f}x")
        both = out_ray.mask & out_gpu.mask
        print(f"agreement (cuda): coverage mismatch {int((out_ray.mask != out_gpu.mask).sum())} px, mean |diff| "
              f"{np.abs(out_ray.image[both] - out_gpu.image[both]).mean():.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
