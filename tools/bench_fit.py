"""Benchmark of the multi-view 3DMM fit: throughput (frames/s) for 1 and 3 views of the fit's solver
(``linear="band"``) next to the solver it replaced (``linear="sparse-lu"``, the same steps) and to a plain
``scipy.optimize.least_squares`` baseline of the same energy, all measured in the same run, and the accuracy
table (synthetic ICT scene, known cameras and parameters, 1 px landmark noise).

    .venv/bin/python tools/bench_fit.py [--frames 16] [--device cpu|cuda] [--baseline-frames 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# One BLAS/OpenMP thread unless told otherwise: on a shared small machine spinning threads cost 10-100x (both sides).
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")


def load_model():
    from reconstruct.face.store import load_builtin_ict
    from reconstruct.fitting.pipeline import ensure_scheme

    return ensure_scheme(load_builtin_ict(), "mediapipe478")


def face_region(model):
    from reconstruct.assets import mediapipe_canonical_path
    from reconstruct.face.correspondence import mediapipe_face_region

    return mediapipe_face_region(model, mediapipe_canonical_path())


def biased_observations(model, seq, cams, obs, bias, noise_px: float, seed: int) -> np.ndarray:
    """``obs`` moved to where the biased detector would mark the landmarks (``bias``, its view term per camera),
    same visibility, Gaussian noise: the observations the fit with the detector bias is timed on."""
    from reconstruct.fitting.fit import fitted_landmarks

    rng = np.random.default_rng(seed)
    out = obs.copy()
    for c, cam in enumerate(cams):
        P = fitted_landmarks(model, "mediapipe478", seq.identity, seq.expression, seq.R, seq.t, bias, cam)
        uv = cam.project(P.reshape(-1, 3)).reshape(P.shape[:2] + (2,)) + rng.normal(0, noise_px, P.shape[:2] + (2,))
        out[:, c] = np.where(np.isfinite(obs[:, c]), uv, np.nan)
    return out


def scipy_baseline(model, scheme, cams, obs, conf, settings, rv0, t0):
    """The same energy (data with fixed visibility weights, Huber, priors, 2nd-difference smoothing, [0, 1] box)
    solved by scipy.optimize.least_squares (trf, finite-difference Jacobian, no sparsity hint: a plain use)."""
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    from reconstruct.fitting.landmark_basis import LandmarkBasis

    b = LandmarkBasis.from_model(model, scheme)
    mean, A, B = b.mean.numpy(), b.A.numpy(), b.B.numpy()
    Ki, Ke = A.shape[2], B.shape[2]
    T, C, N, _ = obs.shape
    w = np.where(np.isfinite(obs).all(-1), conf, 0) * b.weight.numpy()
    o = np.nan_to_num(obs)
    sw = np.sqrt(w)[..., None] / settings.sigma_px
    sm = np.concatenate([np.full(3, settings.smooth_rotation), np.full(3, settings.smooth_translation),
                         np.full(Ke, settings.smooth_expression)])

    def unpack(x):
        return x[:Ki], x[Ki:].reshape(T, 6 + Ke)

    def fun(x):
        alpha, th = unpack(x)
        L = mean + A @ alpha + np.einsum("ndk,tk->tnd", B, th[:, 6:])
        R = Rotation.from_rotvec(th[:, :3]).as_matrix()
        Xw = np.einsum("tij,tnj->tni", R, L) + th[:, None, 3:6]
        res = []
        for c, cam in enumerate(cams):
            uv = cam.project(Xw.reshape(-1, 3)).reshape(T, N, 2)
            res.append((sw[:, c] * (uv - o[:, c])).reshape(-1))
        res.append(alpha / settings.sigma_identity)
        res.append(th[:, 6:].reshape(-1) / settings.sigma_expression)
        if T >= 3:
            res.append(((th[:-2] - 2 * th[1:-1] + th[2:]) / sm).reshape(-1))
        return np.concatenate(res)

    x0 = np.concatenate([np.zeros(Ki), np.concatenate([rv0, t0, np.zeros((T, Ke))], 1).reshape(-1)])
    lo = np.full_like(x0, -np.inf)
    hi = np.full_like(x0, np.inf)
    bidx = Ki + (np.arange(T)[:, None] * (6 + Ke) + 6 + np.arange(Ke)[None]).reshape(-1)
    lo[bidx], hi[bidx] = 0.0, 1.0
    x0[bidx] = 1e-6
    t = time.perf_counter()
    r = least_squares(fun, x0, bounds=(lo, hi), loss="huber", f_scale=settings.robust_px / settings.sigma_px,
                      method="trf", max_nfev=60)
    secs = time.perf_counter() - t
    alpha, th = unpack(r.x)
    R = Rotation.from_rotvec(th[:, :3]).as_matrix()
    V = np.array([(model.vertices(alpha, th[f, 6:]) @ R[f].T + th[f, 3:6]) for f in range(T)])
    return secs, V, r.nfev


def main(argv=None) -> list[dict]:
    """Print the tables and return rows of the bench suite (docs/benchmarks.md)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=None, help="frames of the accuracy run (default 16; --quick 8)")
    ap.add_argument("--baseline-frames", type=int, default=None, help="frames of the scipy comparison (default 4; "
                    "--quick 2)")
    ap.add_argument("--quick", action="store_true", help="short run: 8 frames, scipy baseline on 2 frames")
    ap.add_argument("--session", help="(bench suite) ignored: this benchmark makes its own synthetic scene")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=3)
    a, _ = ap.parse_known_args(argv)
    a.frames = a.frames or (8 if a.quick else 16)
    a.baseline_frames = a.baseline_frames or (2 if a.quick else 4)
    q = "quick; " if a.quick else ""
    from dataclasses import replace

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(a.threads)
    threadpool_limits(a.threads)
    from reconstruct.fitting.fit import fit_sequence, world_vertices
    from reconstruct.fitting.init import init_poses
    from reconstruct.fitting.landmark_basis import LandmarkBasis
    from reconstruct.fitting.solver import FitSettings
    from reconstruct.fitting.synthetic import jitter, make_sequence, observe, three_camera_rig, vertex_error

    model = load_model()
    region = face_region(model)
    cams = three_camera_rig()
    seq = make_sequence(model, frames=a.frames, seed=a.seed)
    s = FitSettings()
    from reconstruct.face.detector_bias import builtin_bias

    bias = builtin_bias(model, "mediapipe478")  # the fit stage's default; timed on landmarks it biased (+ 1 px noise)
    print(f"# bench_fit: ICT ({model.n_vertices} vertices, {model.n_identity} identity, {model.n_expression} "
          f"expression), {a.frames} frames, 1 px noise, device {a.device}, torch threads {a.threads}")
    print(f"# face region: {int(region.sum())} vertices")
    rows = []
    speed = {}  # (views, solver) -> frames/s, mediapipe478
    for scheme in ("mediapipe478", "ibug68"):
        obs, conf = observe(model, seq, cams, scheme, noise_px=1.0, seed=a.seed + 1)
        obs_b = biased_observations(model, seq, cams, obs, bias, 1.0, a.seed + 2) if scheme == "mediapipe478" else None
        res = {}
        for name, sel in (("3 views", [0, 1, 2]), ("hero only", [0])):
            fit_sequence(model, scheme, [cams[i] for i in sel], obs[:2, sel], conf[:2, sel], s, a.device)  # warm-up
            solvers = ("band", "sparse-lu", "band+bias") if scheme == "mediapipe478" else ("band",)
            for solver in solvers:
                o = obs_b if solver.endswith("+bias") else obs
                t = time.perf_counter()
                sol = fit_sequence(model, scheme, [cams[i] for i in sel], o[:, sel], conf[:, sel],
                                   replace(s, linear=solver.split("+")[0]), a.device,
                                   bias=bias if solver.endswith("+bias") else None)
                if a.device == "cuda":
                    torch.cuda.synchronize()
                secs = time.perf_counter() - t
                if scheme == "mediapipe478":
                    speed[(name, solver)] = a.frames / secs
                if solver != "sparse-lu":
                    V = world_vertices(model, sol)
                    key = name + (" + bias" if solver.endswith("+bias") else "")
                    res[key] = (vertex_error(V, seq.vertices, region),
                                 jitter(V, region) / jitter(seq.vertices, region), a.frames / secs, sol.iterations)
        rows.append((scheme, res))
    print("\n## accuracy (mean vertex error over the face region; jitter = mean |2nd difference| fit / truth)")
    print(f"{'scheme':14s} {'views':17s} {'error mm':>9s} {'jitter x':>9s} {'frames/s':>9s} {'iters':>6s}")
    for scheme, res in rows:
        for name, (e, j, fps, it) in res.items():
            print(f"{scheme:14s} {name:17s} {1e3 * e:9.3f} {j:9.2f} {fps:9.2f} {it:6d}")
        print(f"{scheme:14s} hero/3-view error ratio: {res['hero only'][0] / res['3 views'][0]:.1f} (must be >= 2)")
    print(f"\n## landmark fit speed, mediapipe478, {a.frames} frames: band solver vs the sparse-LU solver it replaced "
          "(same steps)")
    out = []
    for name in ("3 views", "hero only"):
        fb, fs, fd = speed[(name, "band")], speed[(name, "sparse-lu")], speed[(name, "band+bias")]
        print(f"{name:10s} band {fb:7.2f} frames/s   sparse-lu {fs:7.2f} frames/s   {fb / fs:5.1f}x   "
              f"band + detector bias (the stage's default) {fd:7.2f} frames/s   {fd / fs:5.1f}x")
        out.append({"stage": "fit", "metric": f"frames/s, {name}, band solver + detector bias", "value": fd,
                    "baseline": fs, "ratio": fd / fs,
                    "notes": f"{q}{a.frames} frames, same run; the fit stage's default (fit.bias=auto); baseline: the "
                             f"sparse-LU solver without the bias (main's fit), torch threads {a.threads}"})
        out.append({"stage": "fit", "metric": f"frames/s, {name}, band solver", "value": fb, "baseline": fs,
                    "ratio": fb / fs, "notes": f"{q}{a.frames} frames, same run; baseline: the sparse-LU solver before "
                                                f"(identical steps), torch threads {a.threads}"})
    for scheme, res in rows:
        e3, eh = res["3 views"][0], res["hero only"][0]
        out.append({"stage": "fit", "metric": f"vertex error mm, 3 views, {scheme}", "value": 1e3 * e3,
                    "baseline": 1e3 * eh, "ratio": e3 / eh,
                    "notes": f"{q}synthetic ICT scene, {a.frames} frames, 1 px noise, known truth; baseline: same fit "
                             f"from the hero view only; jitter {res['3 views'][1]:.2f}x truth"})
    # throughput vs scipy on the same energy, fewer frames (the plain baseline is slow)
    print(f"\n## throughput vs scipy.optimize.least_squares, mediapipe478, {a.baseline_frames} frames")
    sub = make_sequence(model, frames=a.baseline_frames, seed=a.seed)
    obs, conf = observe(model, sub, cams, "mediapipe478", noise_px=1.0, seed=a.seed + 1)
    b = LandmarkBasis.from_model(model, "mediapipe478")
    print(f"{'views':10s} {'ours f/s':>9s} {'scipy f/s':>9s} {'speed-up':>9s} {'ours mm':>8s} {'scipy mm':>8s}")
    for name, sel in (("3 views", [0, 1, 2]), ("hero only", [0])):
        cs = [cams[i] for i in sel]
        t = time.perf_counter()
        sol = fit_sequence(model, "mediapipe478", cs, obs[:, sel], conf[:, sel], s, a.device)
        ours = time.perf_counter() - t
        e_ours = vertex_error(world_vertices(model, sol), sub.vertices, region)
        # the baseline gets the same initial poses and the visibility our fit ended with (fixed weights)
        rv0, t0, _ = init_poses(b.mean.numpy(), b.weight.numpy(), cs, obs[:, sel], conf[:, sel])
        c2 = np.where(sol.used, conf[:, sel], 0.0)
        secs, V, nfev = scipy_baseline(model, "mediapipe478", cs, obs[:, sel], c2, s, rv0, t0)
        e_sc = vertex_error(V, sub.vertices, region)
        n = a.baseline_frames
        print(f"{name:10s} {n / ours:9.2f} {n / secs:9.3f} {secs / ours:8.1f}x {1e3 * e_ours:8.3f} {1e3 * e_sc:8.3f}"
              f"   (scipy: {nfev} evaluations)")
        out.append({"stage": "fit", "metric": f"frames/s, {name}, mediapipe478", "value": n / ours,
                    "baseline": n / secs, "ratio": secs / ours,
                    "notes": f"{q}baseline: scipy least_squares on the same energy, same init, same run, {n} frames; "
                             f"error ours {1e3 * e_ours:.3f} mm vs scipy {1e3 * e_sc:.3f} mm"})
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
