#!/usr/bin/env python
"""Benchmark the learned aging methods: training steps/s and per-frame inference time, CPU and (when present) CUDA.

Baseline, measured in the same run: the same work on the CPU with one torch thread. Every other row prints its
ratio to that baseline (>1 = faster). Data: procedural synthetic faces (reconstruct/training/synthetic_faces.py).

    python tools/bench_methods.py                       # CPU (1 thread baseline + --threads), CUDA if available
    python tools/bench_methods.py --device cuda --fran-size 256 --deepfake-size 128 --steps 30
    python tools/bench_methods.py --json bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from deage_plugins.deepfake.data import extract_crops  # noqa: E402
from deage_plugins.deepfake.merge import merge_face  # noqa: E402
from deage_plugins.deepfake.train import DeepfakeSettings, DeepfakeTask  # noqa: E402
from deage_plugins.fran.data import synthetic_pairs  # noqa: E402
from deage_plugins.fran.infer import reage_face  # noqa: E402
from deage_plugins.fran.train import FranSettings, FranTask  # noqa: E402
from reconstruct.training.synthetic_faces import IDENTITY_A, IDENTITY_B, draw_face, footage, random_identity, \
    random_pose  # noqa: E402


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_steps(task, steps: int, device: str, warmup: int = 2) -> float:
    rng = torch.Generator().manual_seed(0)
    for i in range(warmup):
        task.train_step(i, rng)
    sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        task.train_step(i, rng)
    sync(device)
    return steps / (time.perf_counter() - t0)


def bench_fran(args, device: str) -> dict:
    s = FranSettings(size=args.fran_size, crop=args.fran_crop, width=args.fran_width, depth=args.fran_depth,
                     batch=args.fran_batch, persons=6, holdout=1, window=args.fran_window,
                     stride=args.fran_window // 2).check()
    pairs = synthetic_pairs(s.persons, s.size, ages=(20, 70), seed=0, coverage=s.coverage)
    task = FranTask(s, *pairs.split(1), device=device)
    sps = time_steps(task, args.steps, device)
    net = task.gen.eval()
    f = draw_face(random_identity(np.random.default_rng(5)), random_pose(np.random.default_rng(6)), 70,
                  int(s.size * 1.5))
    with torch.no_grad():
        reage_face(net, f.image, f.points5, f.skin_mask, 70, 30, size=s.size, coverage=s.coverage,
                   window=s.window, stride=s.stride, device=device)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(args.frames):
            reage_face(net, f.image, f.points5, f.skin_mask, 70, 30, size=s.size, coverage=s.coverage,
                       window=s.window, stride=s.stride, device=device)
        sync(device)
    return {"train_steps_per_s": sps, "infer_s_per_frame": (time.perf_counter() - t0) / args.frames}


def bench_deepfake(args, device: str) -> dict:
    s = DeepfakeSettings(size=args.deepfake_size, width=args.deepfake_width, latent=args.deepfake_latent,
                         batch=args.deepfake_batch, w_perceptual=0.1).check()
    plate = max(96, s.size * 2)

    def crops(idn, seed):
        shot = footage(idn, 12, plate, 40, seed)
        return extract_crops(((str(i), f.image, f.points5) for i, f in enumerate(shot)), s.size, s.coverage, "bench",
                             masks=[f.face_mask for f in shot]), shot

    (a, shot), (b, _) = crops(IDENTITY_A, 1), crops(IDENTITY_B, 2)
    task = DeepfakeTask(s, a, b, device=device)
    sps = time_steps(task, args.steps, device)
    model = task.model.eval()
    f = shot[0]
    merge_face(model, f.image, f.points5, coverage=s.coverage, device=device)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(args.frames):
        merge_face(model, f.image, f.points5, coverage=s.coverage, device=device)
    sync(device)
    return {"train_steps_per_s": sps, "infer_s_per_frame": (time.perf_counter() - t0) / args.frames}


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark; returns rows in the tools/bench.py convention (stage, metric, value, baseline, ratio,
    notes). ``--session`` (from the suite) is ignored: the data is generated here."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer timed steps and frames")
    p.add_argument("--session", help=argparse.SUPPRESS)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CPU rows plus a CUDA row when a GPU is visible; cuda: require it")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of the second CPU row (default 2)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per row")
    p.add_argument("--frames", type=int, default=3, help="timed inference frames per row")
    p.add_argument("--fran-size", type=int, default=128)
    p.add_argument("--fran-crop", type=int, default=64)
    p.add_argument("--fran-width", type=int, default=16)
    p.add_argument("--fran-depth", type=int, default=4)
    p.add_argument("--fran-batch", type=int, default=4)
    p.add_argument("--fran-window", type=int, default=64)
    p.add_argument("--deepfake-size", type=int, default=64)
    p.add_argument("--deepfake-width", type=int, default=16)
    p.add_argument("--deepfake-latent", type=int, default=128)
    p.add_argument("--deepfake-batch", type=int, default=8)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.frames = min(args.steps, 4), 1

    has_cuda = torch.cuda.is_available()
    if args.device == "cuda" and not has_cuda:
        raise SystemExit("--device cuda: torch sees no CUDA GPU")
    rows = [("cpu", 1), ("cpu", args.threads)]
    if args.device == "cuda" or (args.device == "auto" and has_cuda):
        rows.append(("cuda", torch.get_num_threads()))
    results = {"host": platform.node(), "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name(0) if has_cuda else None, "config": vars(args) | {"json": None},
               "rows": []}
    print(f"torch {torch.__version__}; GPU: {results['gpu'] or 'none'}; baseline = CPU, 1 thread")
    base = {}
    table = []
    for device, threads in rows:
        torch.set_num_threads(threads)
        for name, fn in (("fran", bench_fran), ("deepfake", bench_deepfake)):
            r = fn(args, device)
            key = (name,)
            if key not in base:  # the first row (CPU, 1 thread) is the baseline
                base[key] = r
            b = base[key]
            row = {"method": name, "device": device, "threads": threads, **r,
                   "train_ratio": r["train_steps_per_s"] / b["train_steps_per_s"],
                   "infer_ratio": b["infer_s_per_frame"] / r["infer_s_per_frame"]}
            results["rows"].append(row)
            print(f"{name:9s} {device:4s} threads={threads:<2d} train {r['train_steps_per_s']:8.2f} steps/s "
                  f"(x{row['train_ratio']:.2f})   infer {1000 * r['infer_s_per_frame']:8.1f} ms/frame "
                  f"(x{row['infer_ratio']:.2f})")
            where = f"{device}, {threads} thread(s)" if device == "cpu" else f"cuda ({results['gpu']})"
            table.append({"stage": f"{name} train", "metric": f"steps/s, {where}", "value": r["train_steps_per_s"],
                          "baseline": b["train_steps_per_s"], "ratio": row["train_ratio"],
                          "notes": "baseline: same training on the CPU with 1 thread"})
            table.append({"stage": f"{name} apply", "metric": f"s/frame, {where}", "value": r["infer_s_per_frame"],
                          "baseline": b["infer_s_per_frame"],
                          "ratio": r["infer_s_per_frame"] / b["infer_s_per_frame"],
                          "notes": "baseline: same inference on the CPU with 1 thread"})
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return table


if __name__ == "__main__":
    main()
