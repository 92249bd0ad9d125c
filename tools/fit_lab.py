"""Fit experiments on synthetic sessions scored against their ground truth (the numbers in docs/fitting.md).

    .venv/bin/python tools/fit_lab.py make ROOT [--rig rigs/test-small.toml] [--seed 0] [--frames 24]
                                       [--expressions all] [--gaze-deg 0] [--identity-of SESSION]
    .venv/bin/python tools/fit_lab.py score ROOT [--views all|hero] [--bias auto|none|FILE]
                                        [--lips edges|computed] [--lids edges|computed] [--option KEY=VALUE ...]
                                        [--identity FITS_OR_IDENTITY_FILE] [--save-fits OUT.npz]

``make`` renders a session (``--identity-of``: with the true identity of another synthetic session, i.e. another
take of the same actor; the seed still draws its own motion and camera placement), writes the *true* calibration
(no calibrate solve: the fit is what is measured) and runs sync and detect (MediaPipe on the rendered frames).
``score`` fits the detections in process (``--identity``: that actor identity held fixed, as ``fit.identity``) and
prints the mean vertex error per region (also after a per-frame similarity and after one scale about the hero
camera's centre), jitter per region, the mouth opening / lip-corner errors per extreme expression and frames/s.
Both are importable (:func:`make_session`, :func:`score_session`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")


def make_session(rig_path: Path, root: Path, seed: int = 0, frames: int = 24, extremes: tuple[str, ...] = (),
                 gaze_deg: float = 0.0, gaze_style: str = "smooth", model=None, identity=None) -> Path:
    """Render a synthetic session with the true calibration, then sync and detect (cached in the session).
    ``identity``: the actor's identity coefficients (None: the seed's random one)."""
    from reconstruct.calibration.result import RigCalibration
    from reconstruct.engine import run_pipeline
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.rig import load_rig
    from reconstruct.stage import RunConfig
    from reconstruct.synth import SynthSpec, generate_session, load_truth
    from reconstruct.synth.timeline import TimelineSpec

    rig = load_rig(rig_path)
    root = Path(root)
    if not (root / "out" / "detect" / "landmarks.npz").exists():
        spec = SynthSpec(frames=frames, seed=seed, model="ict", calib_poses=0, extremes=tuple(extremes),
                         gaze_deg=gaze_deg, gaze_style=gaze_style, timeline=TimelineSpec(jitter_frac=0.05),
                         identity=None if identity is None else tuple(float(a) for a in identity))
        s = generate_session(rig, root, spec, model=model)
        truth = load_truth(root)
        s.write_calibration(RigCalibration(cameras=truth.cameras, reference=rig.hero.name).to_dict())
        host = make_plugin_manager()
        for stage in ("sync", "calibrate", "detect"):
            run_pipeline(RunConfig(session=root, only_stage=stage), host)
    return root


def stage_settings(bias=None):
    """The fit stage's default solver settings for a fit with / without a detector bias (its stronger smoothing)."""
    from reconstruct.fitting.solver import BIAS_SMOOTH, FitSettings

    return FitSettings().smoothed(BIAS_SMOOTH) if bias is not None else FitSettings()


def score_session(root: Path, model, face: np.ndarray, settings=None, views: str = "all", **fit_kw) -> dict:
    """Fit a session made by :func:`make_session` and score it against its truth (the true calibration's world is
    the truth's world). Returns a dict of figures (metres, per-frame arrays where noted). ``settings`` None: the fit
    stage's defaults (with a ``bias`` in ``fit_kw``: its stronger smoothing)."""
    from reconstruct.artifacts import Detections
    from reconstruct.artifacts.detections import FILE
    from reconstruct.fitting.pipeline import fit_detections
    from reconstruct.fitting.scoring import (aligned_errors, camera_scale_errors, mouth_measures, region_errors,
                                             region_jitter, regions)
    from reconstruct.session import Session
    from reconstruct.synth import load_truth

    s = Session.open(root)
    truth = load_truth(root)
    det = Detections.load(s.stage_dir("detect") / FILE)
    cams = s.cameras()
    if views == "hero":
        cams = {s.rig.hero.name: cams[s.rig.hero.name]}
    t0 = time.perf_counter()
    if settings is None:
        settings = stage_settings(fit_kw.get("bias"))
    seq, info = fit_detections(model, cams, det, settings, **fit_kw)
    secs = time.perf_counter() - t0
    ticks = _ticks(s, truth, seq.frames)
    masks = regions(model, face)
    V = truth.vertices[ticks]
    err = region_errors(seq.vertices, V, masks)
    aligned = aligned_errors(seq.vertices, V, masks)
    scaled, scale = camera_scale_errors(seq.vertices, V, masks, truth.cameras[s.rig.hero.name].center)
    mt, mf = mouth_measures(model, V), mouth_measures(model, seq.vertices)
    out = {"seconds": secs, "fps": len(seq) / secs, "err": {k: float(v.mean()) for k, v in err.items()},
           "err_frames": err,
           "err_aligned": {k: float(v.mean()) for k, v in aligned.items()},
           "err_hero_scaled": {k: float(v.mean()) for k, v in scaled.items()}, "hero_scale": scale,
           "jitter_error": region_jitter(seq.vertices - V, masks), "jitter": region_jitter(seq.vertices, masks),
           "jitter_truth": region_jitter(V, masks),
           "mouth_truth": mt, "mouth_fit": mf, "segment": truth.segment[ticks], "segments": truth.meta["segments"],
           "residual_px": np.nanmean(seq.residual_px, 0), "seq": seq, "ticks": ticks}
    return out


def _ticks(session, truth, frames) -> np.ndarray:
    """Truth tick of every fitted frame (the hero's delivered tick of that frame set)."""
    from reconstruct.synth import truth_dir

    tl = json.loads((truth_dir(session.root) / "timeline.json").read_text())
    hero = session.rig.hero.name
    sync = {f.frame: f for f in session.read_sync()}
    return np.array([tl[hero]["ticks"][sync[int(f)].indices[hero]] for f in frames])


def report(r: dict) -> str:
    lines = ["error mm: " + ", ".join(f"{k} {1e3 * v:.2f}" for k, v in r["err"].items()),
             "after a per-frame similarity: " + ", ".join(f"{k} {1e3 * v:.2f}" for k, v in r["err_aligned"].items()),
             f"after one scale ({r['hero_scale']:.4f}) about the hero camera's centre: "
             + ", ".join(f"{k} {1e3 * v:.2f}" for k, v in r["err_hero_scaled"].items()),
             "jitter of the error mm/f2: " + ", ".join(f"{k} {1e3 * v:.3f}" for k, v in r["jitter_error"].items()),
             "jitter mm/f2 fit (truth): " + ", ".join(f"{k} {1e3 * v:.3f} ({1e3 * r['jitter_truth'][k]:.3f})"
                                                      for k, v in r["jitter"].items()),
             f"fps {r['fps']:.2f}; residual px {np.round(r['residual_px'], 2)}"]
    for k, name in enumerate(r["segments"]):
        m = r["segment"] == k
        if not m.any():
            continue
        t, f = r["mouth_truth"][m], r["mouth_fit"][m]
        rel = np.abs(f - t) / np.maximum(t, 1e-9)
        lines.append(f"{name:7s} frames {m.sum():3d}: err face {1e3 * r['err_frames']['face'][m].mean():.2f} "
                     f"mouth {1e3 * r['err_frames']['mouth'][m].mean():.2f} mm; opening truth "
                     f"{1e3 * t[:, 0].min():.1f}-{1e3 * t[:, 0].max():.1f} mm, max rel err {rel[:, 0].max():.2f}; "
                     f"corners max rel err {rel[:, 1].max():.2f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=("make", "score"))
    ap.add_argument("root", type=Path)
    ap.add_argument("--rig", type=Path, default=Path(__file__).resolve().parents[1] / "rigs" / "test-small.toml")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--expressions", default="")
    ap.add_argument("--gaze-deg", type=float, default=0.0)
    ap.add_argument("--gaze-style", default="smooth")
    ap.add_argument("--identity-of", type=Path, default=None, help="make: render the true identity of this "
                    "synthetic session (another take of the same actor)")
    ap.add_argument("--views", default="all")
    ap.add_argument("--bias", default="none", help="detector bias: none (the bare correspondence), auto (the "
                    "shipped one) or a file from tools/learn_landmark_bias.py")
    ap.add_argument("--lips", default="edges", choices=("edges", "computed"),
                    help="MediaPipe's inner-lip contour: on the model's lip line (the fit stage's default) or as computed")
    ap.add_argument("--lids", default="edges", choices=("edges", "computed"),
                    help="MediaPipe's eye contours: on the model's lid lines (the fit stage's default) or as computed")
    ap.add_argument("--option", action="append", default=[])
    ap.add_argument("--identity", type=Path, default=None, help="score: hold this actor identity fixed (a fits.npz "
                    "of another take of the same actor, or an identity file), as --option fit.identity=FILE does")
    ap.add_argument("--save-fits", type=Path, default=None, help="score: also write the fit as a fits.npz here")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from reconstruct.synth.expressions import parse_extremes

    if a.cmd == "make":
        identity = None
        if a.identity_of is not None:
            from reconstruct.synth import load_truth

            identity = load_truth(a.identity_of).identity
        make_session(a.rig, a.root, a.seed, a.frames, parse_extremes(a.expressions) if a.expressions else (),
                     a.gaze_deg, a.gaze_style, identity=identity)
        return
    from dataclasses import replace

    from reconstruct.assets import mediapipe_canonical_path
    from reconstruct.face.correspondence import mediapipe_face_region
    from reconstruct.face.store import load_builtin_ict
    from reconstruct.fitting.pipeline import ensure_scheme
    from reconstruct.fitting.solver import FitSettings

    model = ensure_scheme(load_builtin_ict(), "mediapipe478")
    face = mediapipe_face_region(model, mediapipe_canonical_path())
    kw = {}
    for o in a.option:
        k, v = o.split("=", 1)
        kw[k] = type(getattr(FitSettings(), k))(v) if getattr(FitSettings(), k) is not None else int(v)
    from reconstruct.face.detector_bias import builtin_bias, load_bias

    bias = None if a.bias == "none" else builtin_bias(model, "mediapipe478") if a.bias == "auto" else \
        load_bias(Path(a.bias))
    from reconstruct.fitting.lip_anchor import anchor_inner_lips

    model, bias = anchor_inner_lips(model, "mediapipe478", bias, lips=a.lips == "edges", eyes=a.lids == "edges")
    identity = None
    if a.identity is not None:
        from reconstruct.fitting.actor_identity import load_identity

        identity = load_identity(a.identity, model)
    r = score_session(a.root, model, face, replace(stage_settings(bias), **kw) if kw else None, views=a.views,
                      bias=bias, identity=identity)
    if a.save_fits is not None:
        from reconstruct.fitting.result import save_fits

        save_fits(r["seq"], a.save_fits)
    print(report(r))


if __name__ == "__main__":
    main()
