"""Built-in plugin ``fit``: the multi-view 3DMM fit stage and the fit section of the QC report.

Output ``out/fit/``: ``fits.npz`` (:mod:`reconstruct.fitting.result`; read it with ``load_fits``), ``meshes/
<frame:06d>.ply`` (world-frame mesh per frame, metres), ``report.json`` (residuals per camera, jitter, skipped
frames, dropped cameras, timing) and ``overlay.png`` (the fit rendered over the hero frame of the middle frame).

Options (``--option fit.KEY=VALUE``, :class:`FitStageSettings`; docs/fitting.md explains each).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from reconstruct import hookimpl
from reconstruct.artifacts import Detections
from reconstruct.artifacts.detections import FILE as DETECTIONS_FILE
from reconstruct.artifacts.meshes import write_meshes
from reconstruct.errors import FitError
from reconstruct.options import option
from reconstruct.session import atomic_path, atomic_write_json
from reconstruct.stage import StageContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FitStageSettings:
    """``--option fit.KEY=VALUE``; None keeps the solver's own default (:class:`reconstruct.fitting.FitSettings`)."""

    model: str | None = option(None, "face model by name (default: ict when registered, else demo)")
    loss: Literal["huber", "geman-mcclure", "l2"] | None = option(None, "robust loss on landmark residuals")
    robust_px: float | None = option(None, "robust loss scale, pixels")
    sigma_px: float | None = option(None, "landmark noise, pixels")
    smooth: float | None = option(None, "multiplier of the temporal smoothing strength (0 disables it; default 1, "
                                        "2 with a detector bias)")
    iterations: int | None = option(None, "Levenberg-Marquardt iterations")
    meshes: bool = option(True, "write a world-frame mesh per frame (meshes/<frame>.ply)")
    chunk: int = option(120, "frames per sequence solve (a longer take is solved in overlapping chunks)")
    overlap: int = option(8, "frames neighbouring chunks share and cross-fade")
    photometric: bool = option(False, "refine expression and pose by cross-view photo-consistency")
    photometric_iterations: int | None = option(None, "Adam steps per pyramid level of the photometric term")
    photometric_smooth: float | None = option(None, "std in frames of the temporal smoothing of the photometric "
                                                    "corrections (0: frame by frame)")
    gaze: bool = option(True, "estimate each eye's gaze from the detector's iris centres")
    gaze_prior: bool = option(True, "regularise the take's gaze: blinks carry none, both eyes turn together, "
                                    "fixations and saccades, small vertical range (false: per frame as measured)")
    bias: str = option("auto", "the detector's learned landmark placement on the face model: auto (the shipped "
                               "one for this model and detector, if any), xview (the shipped one with its "
                               "expression x view term, opt-in), none, or a file from tools/learn_landmark_bias.py")
    smooth_robust: float | None = option(None, "robust scale of the temporal smoothing, in its standard "
                                               "deviations (0: quadratic)")
    smooth_robust_on: Literal["all", "mouth"] = option("all", "what the robust smoothing applies to: all (pose and "
                                                      "expression) or mouth (the jaw and lip expression modes only)")
    mouth_relief: float | None = option(None, "weaken the smoothing of the jaw and lip modes where every camera "
                                              "sees the detected mouth accelerate beyond this many times the "
                                              "take's typical value (0: off; default 3)")
    threads: int = option(1, "CPU threads of the fit's linear algebra (1 is fastest on a shared machine)")
    lips: Literal["edges", "computed"] = option("edges", "MediaPipe's inner-lip contour: on the model's inner-lip "
                                                "line (edges: iBUG-68 points 60-67 joined on the mesh) or where "
                                                "the computed correspondence puts it (computed)")
    lids: Literal["edges", "computed"] = option("edges", "MediaPipe's eye contours: on the model's lid lines (edges: "
                                                "iBUG-68 points 36-47 joined on the mesh) or as computed")
    identity: str | None = option(None, "the actor's known identity, held fixed (only expression and pose are "
                                        "solved): the out/fit/fits.npz of another take of the same actor fitted "
                                        "through several views; a one-view fit takes its size and depth from it")
    size_prior: float | None = option(None, "relative std of a prior holding the face's size at the model mean's "
                                            "(a one-view fit of an unknown actor cannot see size; e.g. 0.0005; "
                                            "default: none)")

    def __post_init__(self) -> None:
        if self.chunk < 2 or self.overlap < 0 or (self.iterations is not None and self.iterations < 1) or \
                self.threads < 1 or (self.size_prior is not None and self.size_prior < 0) or \
                (self.mouth_relief is not None and self.mouth_relief < 0):
            raise ValueError("fit.chunk must be at least 2, fit.overlap at least 0, fit.iterations and fit.threads "
                             "at least 1, fit.size_prior and fit.mouth_relief at least 0")

    def solver(self, biased: bool = False):
        """The :class:`~reconstruct.fitting.solver.FitSettings` these ask for; ``biased``: the fit uses a detector
        bias (the default smoothing is then ``BIAS_SMOOTH`` x stronger)."""
        from reconstruct.fitting.solver import BIAS_SMOOTH, FitSettings

        kw = {k: getattr(self, k)
              for k in ("loss", "robust_px", "sigma_px", "iterations", "smooth_robust", "size_prior", "mouth_relief")
              if getattr(self, k) is not None}
        s = replace(FitSettings(), **kw)
        m = self.smooth if self.smooth is not None else (BIAS_SMOOTH if biased else 1.0)
        return s if m == 1.0 else s.smoothed(m)

    def detector_bias(self, model, scheme: str):
        """The :class:`~reconstruct.face.detector_bias.DetectorBias` ``bias`` asks for (None: the bare
        correspondence)."""
        from reconstruct.face.detector_bias import builtin_bias, load_bias

        if self.bias == "none":
            return None
        if self.bias in ("auto", "xview"):
            return builtin_bias(model, scheme, expression_view=self.bias == "xview")
        bias = load_bias(Path(self.bias))
        bias.check(model, scheme)
        return bias


def model_name(components, st: FitStageSettings) -> str:
    """The face model the fit uses: ``fit.model``, else ``ict`` when registered, else ``demo``."""
    if st.model is not None:
        return st.model
    return "ict" if "ict" in components.all("face_model") else "demo"


def calibrated_cameras(session) -> dict:
    """Camera name -> CameraModel for every camera calibration.json has (missing cameras are the fit's problem)."""
    if not session.calibration_path.exists():
        raise FitError(f"{session.calibration_path} does not exist",
                       hint="run the calibrate stage (or `reconstruct calibrate --import`) before fit")
    return session.cameras()


class FitStage:
    """Identity for the session, expression + head pose per frame (see :mod:`reconstruct.fitting`)."""

    name = "fit"
    requires: tuple[str, ...] = ("sync", "calibrate", "detect")
    # 2: eye gaze in fits.npz; 3: detector bias, gaze prior, band solver; 4: inner lips and lids on the model's lines
    version = "4"
    Settings = FitStageSettings
    leaves_cores_idle = True  # the solve runs in the driver: later stages start their workers meanwhile

    def face_model_name(self, ctx: StageContext) -> str:
        """The registered name of the face model this run's fit uses (:func:`model_name`; the age stage's early
        work is made for it)."""
        return model_name(ctx.components, ctx.settings[self.name])

    def fingerprint(self, ctx: StageContext):
        """The resolved face model (name and a digest of its file and converter: importing a model under the
        same name refits), the device, and with ``fit.identity`` that file's size and time."""
        name = model_name(ctx.components, ctx.settings[self.name])
        src = ctx.components.get("face_model", name)
        digest = src.digest() if callable(getattr(src, "digest", None)) else None
        key = {"model": name, "model_digest": digest, "device": ctx.device}
        st = ctx.settings[self.name]
        if st.identity is not None:  # a refitted actor take (same path, new file) refits this one
            p = Path(st.identity)
            key["identity_file"] = f"{p.stat().st_size}-{p.stat().st_mtime_ns}" if p.is_file() else "missing"
        return key

    def preload(self, ctx: StageContext) -> None:
        """The imports of :meth:`run` (torch with the solver: ~1.0-1.4 s on one core; open3d for the overlay,
        ~0.3 s; scipy's KD-tree for the report's regions), done by the engine while the detect stage's workers
        work; in the order run imports them (its results are the same bit for bit either way)."""
        from reconstruct.fitting import lip_anchor, pipeline, result  # noqa: F401  (torch)

        _thread_limit_imports()
        from reconstruct.fitting import gaze, gaze_prior, overlay, scoring, synthetic  # noqa: F401
        from reconstruct.render.raycast import RaycastRenderer

        import scipy.spatial  # noqa: F401  (scoring.regions' KD-tree)

        RaycastRenderer.preload()  # the overlay's renderer (open3d, without its viewer)

    def run(self, ctx: StageContext, out: Path) -> None:
        from reconstruct.fitting.lip_anchor import anchor_inner_lips
        from reconstruct.fitting.pipeline import ensure_scheme, fit_detections
        from reconstruct.fitting.result import save_fits

        s = ctx.session
        st = ctx.settings[self.name]
        det = Detections.load(ctx.stage_dir("detect") / DETECTIONS_FILE)
        cams = calibrated_cameras(s)
        model = ensure_scheme(ctx.components.face_model(model_name(ctx.components, st)), det.scheme)
        bias = st.detector_bias(model, det.scheme)
        model, bias = anchor_inner_lips(model, det.scheme, bias, lips=st.lips == "edges", eyes=st.lids == "edges")
        identity = None
        if st.identity is not None:
            from reconstruct.fitting.actor_identity import load_identity

            identity = load_identity(Path(st.identity), model)
        log.info("fit: detector bias %s", "none (bare correspondence)" if bias is None else
                 f"learned for {bias.model} / {bias.scheme}")
        t0 = time.perf_counter()
        with limited_threads(st.threads):
            settings = st.solver(bias is not None)
            if st.smooth_robust_on == "mouth":
                from reconstruct.fitting.modes import mouth_modes

                settings = replace(settings, smooth_robust_modes=mouth_modes(model, det.scheme))
            seq, info = fit_detections(model, cams, det, settings, ctx.device, ctx.progress,
                                       chunk=st.chunk, overlap=st.overlap,
                                       executor=None if str(ctx.device).startswith("cuda") else ctx.executor,
                                       bias=bias, identity=identity)
        fit_seconds = time.perf_counter() - t0
        bias = info.bias  # the bias the fit used (one camera: without its identity term)
        if st.photometric:
            seq = _refine_photometric(ctx, model, cams, seq, det, st, bias)
        if st.gaze:
            from reconstruct.fitting.gaze import gaze_for_sequence
            from reconstruct.fitting.gaze_prior import GazePrior

            seq = replace(seq, eye_gaze=gaze_for_sequence(model, seq, det, cams,
                                                          prior=GazePrior() if st.gaze_prior else None))
        seconds = time.perf_counter() - t0
        save_fits(seq, out / "fits.npz", sync=False)  # the stage's folder: its commit flushes the files
        if st.meshes:
            write_meshes(out / "meshes", seq.frames, seq.vertices, model.triangles)
        report = fit_report(seq, info, model, seconds)
        report.update(landmark_fit_seconds=fit_seconds, detector_bias=None if bias is None else bias.model,
                      landmarks=landmark_residuals(model, det, seq, cams, bias))
        atomic_write_json(out / "report.json", report)
        try:
            _write_overlay(ctx, seq, model, cams, det, out / "overlay.png")
        except Exception as exc:  # a picture for the report must not fail the stage
            log.warning("fit: could not draw the overlay: %s", exc)
        log.info("fit: %d frames (%d skipped) in %.1f s; RMS residual %s px", len(seq), len(info.skipped_frames),
                 seconds, report["residual_px"])


@contextmanager
def limited_threads(n: int):
    """BLAS/OpenMP and torch CPU threads limited to ``n`` while the block runs (restored afterwards): spinning
    threads on a shared machine made the fit's small products up to 100x slower (docs/fitting.md).

    threadpoolctl limits only the libraries already loaded: OpenCV's and scipy.linalg's own OpenBLAS copies are
    loaded first (the fit imports them lazily; loaded inside the block, they kept 2 threads: the band solver's
    Cholesky spun 30-120 ms a call instead of 1 ms on a busy 2-core machine)."""
    torch, threadpool_limits = _thread_limit_imports()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def _thread_limit_imports():
    """(torch, threadpoolctl.threadpool_limits), with OpenCV's and scipy.linalg's BLAS copies loaded first (see
    :func:`limited_threads`; the stage's ``preload`` imports them ahead too)."""
    import cv2  # noqa: F401
    import scipy.linalg  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    return torch, threadpool_limits


def _refine_photometric(ctx: StageContext, model, cams: dict, seq, det: Detections, st: FitStageSettings,
                        bias=None):
    """The opt-in photometric refinement of every valid frame (reads the frames each camera stored)."""
    from reconstruct.fitting.photometric import PhotoSettings, refine_sequence

    s = ctx.session
    sync = {f.frame: f for f in s.read_sync()}

    def images(i: int):
        fs = sync.get(int(seq.frames[i]))
        if fs is None:
            return [None] * len(seq.cameras)
        got = s.frame_images(fs, seq.cameras, ok_only=False)
        return [got[c] for c in seq.cameras]

    ps = PhotoSettings()
    if st.photometric_iterations is not None:
        ps = replace(ps, iterations=st.photometric_iterations)
    if st.photometric_smooth is not None:
        ps = replace(ps, temporal_sigma=st.photometric_smooth)
    region = _photometric_region(model)
    t0 = time.perf_counter()
    out = refine_sequence(model, cams, seq, images, det, ps, ctx.device, vertices=region, progress=ctx.progress,
                          bias=bias)
    log.info("fit: photometric refinement of %d frames in %.1f s", int(seq.valid.sum()), time.perf_counter() - t0)
    return out


def _photometric_region(model):
    """Vertices for the photometric term: those MediaPipe's face mesh (the shipped canonical mesh) covers (forehead
    to chin, eyes included), else the model's ``face`` region, else all. The MediaPipe region measured better than
    the ICT model's own ``face`` region (4.60 against 4.78 mm, docs/fitting.md)."""
    from reconstruct.assets import mediapipe_canonical_path
    from reconstruct.face.correspondence import mediapipe_face_region

    try:
        return mediapipe_face_region(model, mediapipe_canonical_path())
    except Exception as exc:  # a region is a refinement choice: fall back rather than fail the stage
        log.warning("fit: MediaPipe face region unavailable (%s); using the model's face region", exc)
    return model.regions.get("face")


def fit_report(seq, info, model, seconds: float) -> dict:
    from reconstruct.fitting.synthetic import jitter

    from reconstruct.fitting.scoring import region_jitter, regions

    region = model.regions.get("face") if model.regions else None
    v = seq.vertices[seq.valid]
    jit = jitter(v, region) if len(v) >= 3 else float("nan")
    per_region = region_jitter(v, regions(model, region)) if region is not None else {}
    res = {c: (float(np.nanmean(seq.residual_px[:, k])) if np.isfinite(seq.residual_px[:, k]).any() else None)
           for k, c in enumerate(seq.cameras)}
    return {"model": model.name, "frames": len(seq), "valid_frames": int(seq.valid.sum()),
            "skipped_frames": list(info.skipped_frames), "cameras_used": list(info.cameras_used),
            "cameras_dropped": dict(info.cameras_dropped), "residual_px": res,
            "jitter_mm_per_frame2": 1e3 * jit,
            "jitter_mm_per_frame2_regions": {k: 1e3 * x for k, x in per_region.items()},
            "iterations": list(info.iterations), "seconds": seconds,
            "frames_per_second": len(seq) / max(seconds, 1e-9), "gaze": _gaze_summary(seq)}


def landmark_residuals(model, det: Detections, seq, cams: dict, bias=None) -> dict:
    """Per camera: mean distance of the detected mouth / eye-lid / all landmarks to the fitted ones (as the fit saw
    them, with its detector bias), in pixels and in % of the inter-ocular distance (between the eye-contour
    centres), over the fitted frames; empty for a scheme without these groups."""
    from reconstruct.fitting.fit import fitted_landmarks
    from reconstruct.fitting.scoring import landmark_groups

    groups = landmark_groups(det.scheme)
    if groups is None or not seq.valid.any():
        return {}
    row = {int(f): i for i, f in enumerate(det.frames)}
    ok = np.flatnonzero(seq.valid)
    rows = np.array([row[int(seq.frames[i])] for i in ok])
    out = {}
    memo: dict = {}  # the frames' model-frame landmarks: the same for every camera, computed once
    for c in seq.cameras:
        world = fitted_landmarks(model, det.scheme, seq.identity, seq.expression[ok], seq.R[ok], seq.t[ok], bias,
                                 cams[c], memo=memo)
        k = det.camera_index(c)
        P = det.points[rows, k].astype(np.float64)
        O = cams[c].project(world.reshape(-1, 3)).reshape(world.shape[:2] + (2,))
        d = np.linalg.norm(O - P, axis=-1)  # (F, N) px
        rec = {}
        # a camera that missed the face on a frame has NaN points there: numpy's "mean of empty slice" is expected
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            iod = np.linalg.norm(np.nanmean(P[:, groups["iod_left"]], 1) - np.nanmean(P[:, groups["iod_right"]], 1),
                                 axis=-1)
            means = {name: (np.nanmean(d[:, groups[name]]), np.nanmean(d[:, groups[name]] / iod[:, None]))
                     for name in ("mouth", "eyes", "all")}
        for name, (px, rel) in means.items():
            rec[name] = {"px": None if not np.isfinite(px) else float(px),
                         "iod_percent": None if not np.isfinite(rel) else 100 * float(rel)}
        out[c] = rec
    return out


def _gaze_summary(seq) -> dict | None:
    """Frames with a gaze estimate per eye and the range of gaze yaw / pitch relative to the head (degrees)."""
    if seq.eye_gaze is None:
        return None
    from reconstruct.fitting.gaze import gaze_angles_deg

    yaw, pitch = gaze_angles_deg(seq.eye_gaze, seq.R)
    ok = np.isfinite(yaw)
    rng = lambda a: [float(np.nanmin(a)), float(np.nanmax(a))] if ok.any() else None  # noqa: E731
    return {"frames_with_gaze": {"left": int(ok[:, 0].sum()), "right": int(ok[:, 1].sum())},
            "yaw_deg": rng(yaw), "pitch_deg": rng(pitch)}


def _write_overlay(ctx, seq, model, cams, det: Detections, path: Path) -> None:
    from reconstruct.fitting.overlay import overlay_fit
    from reconstruct.png import encode_png

    s = ctx.session
    hero = s.rig.hero.name
    if hero not in cams or not seq.valid.any():
        return
    i = int(np.flatnonzero(seq.valid)[seq.valid.sum() // 2])
    fs = {f.frame: f for f in s.read_sync()}.get(int(seq.frames[i]))
    img = None if fs is None else s.frame_images(fs, [hero], ok_only=False)[hero]
    if img is None:
        return
    detected = det.points[i, det.camera_index(hero)]
    lm = model.landmark_map(det.scheme)
    fitted = cams[hero].project(lm.points(seq.vertices[i].astype(np.float64), model.triangles))
    pic = overlay_fit(img, seq.vertices[i], model.triangles, cams[hero], detected, fitted)
    # the project's encoder: 1080p in ~0.02 s, OpenCV's ~0.07 s; no fsync in the stage's folder (its commit flushes)
    with atomic_path(path, suffix=".png", sync=False) as tmp:
        tmp.write_bytes(encode_png(pic, where="the fit overlay"))


class FitSection:
    """QC report section ``fit_details`` (next to the report plugin's ``fit`` charts): mean landmark residual per
    camera, jitter, frames/s, skipped frames, dropped cameras, and the fit rendered over the hero frame."""

    name = "fit_details"
    order = 41

    def html(self, ctx: StageContext) -> str | None:
        d = ctx.session.stage_dir("fit")
        if not (d / "report.json").exists():
            return None
        r = json.loads((d / "report.json").read_text())
        rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{'-' if v is None else f'{v:.2f}'}</td></tr>"
                       for c, v in r["residual_px"].items())
        parts = [f"<h3>Fit details</h3><p>model <b>{html.escape(r['model'])}</b>, {r['valid_frames']}/{r['frames']} frames "
                 f"fitted, jitter {r['jitter_mm_per_frame2']:.3f} mm/frame&sup2;, {r['frames_per_second']:.1f} "
                 f"frames/s</p>",
                 f"<table><tr><th>camera</th><th>RMS landmark residual (px)</th></tr>{rows}</table>"]
        if r["skipped_frames"]:
            parts.append(f"<p>Frames without a face (skipped, filled from neighbours): "
                         f"{html.escape(', '.join(map(str, r['skipped_frames'])))}</p>")
        for c, why in r["cameras_dropped"].items():
            parts.append(f"<p>Camera {html.escape(c)} not used: {html.escape(why)}</p>")
        if (d / "overlay.png").exists():
            b64 = base64.b64encode((d / "overlay.png").read_bytes()).decode()
            parts.append(f'<img alt="fit overlay" style="max-width:100%" src="data:image/png;base64,{b64}">')
        return "\n".join(parts)


@hookimpl
def register_stages():
    return [FitStage()]


@hookimpl
def register_report_sections():
    return [FitSection]
