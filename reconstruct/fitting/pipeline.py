"""Session-level fitting: detections of every camera + calibration + face model -> :class:`FitSequence`.

Handles what real sessions bring: cameras without calibration (dropped, named), frames where no camera found a face
(skipped, then filled from neighbouring fitted frames and marked ``valid=False``), long takes (the identity is
estimated on up to ``identity_frames`` key frames, then the takes are fitted in chunks with the identity fixed).
"""

from __future__ import annotations


import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..camera import CameraModel
from ..errors import FaceModelError, FitError
from ..face.model import FaceModel
from ..progress import NullProgress, Progress
from .fit import fit_sequence, world_vertices
from .result import FitSequence
from .solver import FitSettings, FitSolution

if TYPE_CHECKING:  # pragma: no cover
    from ..artifacts import Detections
    from ..face.detector_bias import DetectorBias

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionFitInfo:
    """What happened besides the fit itself.

    Attributes:
        cameras_used: cameras whose landmarks entered the fit. cameras_dropped: camera -> reason.
        skipped_frames: output frame numbers without any face (filled, ``valid=False``).
        weak_frames: frames fitted from fewer than ``min_landmarks`` confident landmarks (also skipped).
        iterations: LM iterations per solved chunk.
        bias: the detector bias the fit used (through one camera and without a known identity: without its
            identity term, :meth:`DetectorBias.for_views`); None without a bias.
    """

    cameras_used: tuple[str, ...]
    cameras_dropped: Mapping[str, str] = field(default_factory=dict)
    skipped_frames: tuple[int, ...] = ()
    iterations: tuple[int, ...] = ()
    bias: "DetectorBias | None" = field(default=None, compare=False)


def ensure_scheme(model: FaceModel, scheme: str) -> FaceModel:
    """The model with a ``scheme`` landmark map, computing MediaPipe's when the canonical mesh is available."""
    if not isinstance(model, FaceModel):
        raise FaceModelError(f"the face model source returned {type(model).__name__}, not a FaceModel",
                             hint="a face model plugin's load() must return reconstruct.face.model.FaceModel")
    if scheme in model.landmarks:
        return model
    if scheme.startswith("mediapipe"):
        from ..assets import mediapipe_canonical_path
        from ..face.correspondence import mediapipe_correspondence, with_landmarks

        canon = mediapipe_canonical_path()
        log.info("computing the %s correspondence of model %s from %s", scheme, model.name, canon)
        return with_landmarks(model, mediapipe_correspondence(model, canon, scheme=scheme))
    raise FaceModelError(f"face model {model.name!r} has no {scheme!r} landmark correspondence "
                         f"(it has {', '.join(model.landmarks) or 'none'})",
                         hint="use a detector whose landmark scheme the model has (`reconstruct plugins` lists "
                              "them), or a model with that correspondence")


def fit_detections(model: FaceModel, cameras: Mapping[str, CameraModel], det: "Detections", settings: FitSettings = FitSettings(),
                   device: str = "cpu", progress: Progress | None = None, min_landmarks: int = 10,
                   identity_frames: int = 40, chunk: int = 120, outlier_px: float = 12.0, executor=None,
                   overlap: int = 8, bias=None,
                   identity: np.ndarray | None = None) -> tuple[FitSequence, SessionFitInfo]:
    """Fit a session's detections (:class:`reconstruct.artifacts.Detections`) through calibrated cameras.

    A camera whose median landmark residual exceeds both ``outlier_px`` and 4x the other cameras' is taken to be
    mis-calibrated: it is dropped (named in ``cameras_dropped``) and the take is refitted without it.
    ``executor``: solves the chunks of a long take (identity fixed, independent of each other) in parallel
    (``ctx.executor``: ``--jobs N`` processes or Ray tasks); None solves them one after the other. Neighbouring
    chunks share ``overlap`` frames on each side of their border and are cross-faded there, so the temporal
    smoothing does not restart with a jump at every chunk border. ``bias``: the detector's learned placement
    (:class:`reconstruct.face.detector_bias.DetectorBias`) or None; a fit through one camera uses
    ``bias.for_views(1)`` unless the identity is given. ``identity``: the actor's known identity (Ki,) (e.g.
    from a three-view take, :mod:`.actor_identity`), held fixed: only expression and pose are solved, and a
    one-view fit takes its face size, hence its depth, from it.
    """
    progress = progress or NullProgress()
    model = ensure_scheme(model, det.scheme)
    names: Sequence[str] = det.cameras
    dropped = {c: "no calibration for this camera in calibration.json" for c in names if c not in cameras}
    for c, why in dropped.items():
        log.warning("fit: camera %s dropped: %s", c, why)
    keep = [k for k, c in enumerate(names) if c in cameras]
    if not keep:
        raise FitError(f"none of the cameras with landmarks ({', '.join(names)}) is calibrated",
                       hint="run the calibrate stage, or import a calibration with `reconstruct calibrate --import`")
    cams = [cameras[names[k]] for k in keep]
    if bias is not None and identity is None:  # a fixed identity: its bias term is a constant offset, kept
        bias = bias.for_views(len(cams))
    obs = det.points[:, keep].astype(np.float64)
    conf = det.confidence[:, keep].astype(np.float64)
    frames = det.frames
    n_conf = ((conf > 0.3) & np.isfinite(obs).all(-1)).sum(-1).max(-1)  # best camera per frame
    good = n_conf >= min_landmarks
    skipped = tuple(int(f) for f in frames[~good])
    if skipped:
        log.warning("fit: %d frame(s) without a usable face in any camera are skipped and filled from neighbours: %s",
                    len(skipped), ", ".join(map(str, skipped[:20])) + (" ..." if len(skipped) > 20 else ""))
    gi = np.flatnonzero(good)
    if len(gi) == 0:
        raise FitError(f"no frame has a face with at least {min_landmarks} landmarks in any camera",
                       hint="look at out/detect/report.json and the frames themselves")
    iters = []
    with progress.task("fit", total=len(gi)) as task:
        if identity is not None:
            identity = np.asarray(identity, np.float64)
            settings = replace(settings, fit_identity=False)
        elif len(gi) > chunk:  # identity from key frames, then chunks with it fixed
            key = gi[np.linspace(0, len(gi) - 1, min(identity_frames, len(gi))).round().astype(int)]
            sol = fit_sequence(model, det.scheme, cams, obs[key], conf[key],
                               replace(settings, smooth_rotation=0.0), device, bias=bias)
            identity, iters = sol.identity, [sol.iterations]
            settings = replace(settings, fit_identity=False)
        spans = _chunk_spans(len(gi), chunk, overlap)
        jobs = [FitChunk(model, det.scheme, tuple(cams), obs[gi[a:b]], conf[gi[a:b]], settings, device, identity,
                         bias) for a, b, _ in spans]
        if executor is not None and len(jobs) > 1:
            parts = executor.map(fit_chunk, jobs, description="fit chunks")
            task.advance(len(gi))
        else:
            parts = []
            for job in jobs:
                parts.append(fit_chunk(job))
                task.advance(len(job.obs))
        iters += [p.iterations for p in parts]
    sol = _merge(parts, spans, len(gi))
    bad = _inconsistent_camera(sol.residual_px, [c.name for c in cams], outlier_px)
    if bad is not None:
        c, med, others = bad
        why = (f"landmark residual {med:.1f} px against {others:.1f} px in the other cameras: its calibration does "
               "not agree with them (check out/calibrate for this camera)")
        log.warning("fit: camera %s dropped and the take refitted: %s", c, why)
        rest = {n: cam for n, cam in cameras.items() if n != c}
        seq, info = fit_detections(model, rest, det, settings, device, progress, min_landmarks, identity_frames, chunk,
                                   outlier_px, executor, overlap, bias, identity)
        return seq, replace(info, cameras_dropped={**dict(info.cameras_dropped), c: why})
    seq = _to_sequence(model, sol, frames, gi, tuple(names[k] for k in keep))
    info = SessionFitInfo(cameras_used=tuple(c.name for c in cams), cameras_dropped=dropped, skipped_frames=skipped,
                          iterations=tuple(iters), bias=bias)
    return seq, info


@dataclass(frozen=True, slots=True, eq=False)
class FitChunk:
    """One chunk of a long take to solve (picklable: it travels to ``--jobs`` processes and Ray tasks): the
    arguments of :func:`~.fit.fit_sequence` for frames ``obs`` (T, C, N, 2) / ``conf`` (T, C, N)."""

    model: FaceModel
    scheme: str
    cams: tuple[CameraModel, ...]
    obs: np.ndarray
    conf: np.ndarray
    settings: FitSettings
    device: str
    identity: np.ndarray | None
    bias: object = None


def fit_chunk(job: FitChunk) -> FitSolution:
    """Solve one :class:`FitChunk` (module level so that executors can ship it)."""
    return fit_sequence(job.model, job.scheme, list(job.cams), job.obs, job.conf, job.settings, job.device,
                        identity=job.identity, bias=job.bias)


def _inconsistent_camera(residual_px: np.ndarray, names: list[str], outlier_px: float):
    """(camera, its median residual, the others' median) for the worst camera when it disagrees, else None."""
    if len(names) < 3:  # with two cameras it is not clear which one is wrong
        return None
    med = np.array([np.nanmedian(residual_px[:, k]) if np.isfinite(residual_px[:, k]).any() else np.nan
                    for k in range(len(names))])
    if not np.isfinite(med).any():
        return None
    k = int(np.nanargmax(med))
    others = float(np.nanmedian(np.delete(med, k)))
    if med[k] > outlier_px and med[k] > 4 * others:
        return names[k], float(med[k]), others
    return None


def _chunk_spans(n: int, chunk: int, overlap: int) -> list[tuple[int, int, int]]:
    """(first, end, core start) of every chunk of ``n`` frames: cores of ``chunk`` frames, each solved with up to
    ``overlap`` more frames on either side."""
    chunk = max(1, int(chunk))
    o = max(0, min(int(overlap), chunk // 2))
    return [(max(0, s0 - o), min(n, s0 + chunk + o), s0) for s0 in range(0, n, chunk)]


def _merge(parts: list[FitSolution], spans: list[tuple[int, int, int]], n: int) -> FitSolution:
    """One solution for all ``n`` frames from overlapping chunk solutions: inside a chunk's core its own values;
    across a border the two chunks are cross-faded linearly over the frames both solved (expression and
    translation averaged, rotation as the projection of the weighted rotation matrices onto SO(3))."""
    if len(parts) == 1:
        return parts[0]
    import cv2

    W = np.zeros((len(parts), n))
    for k, (a, b, c0) in enumerate(spans):
        w = np.zeros(n)
        w[a:b] = 1.0
        if k > 0 and a < c0:  # ramp up across the border with the previous chunk
            w[a:min(b, 2 * c0 - a)] = (np.arange(a, min(b, 2 * c0 - a)) - a + 0.5) / (2 * (c0 - a))
        nxt = spans[k + 1][2] if k + 1 < len(spans) else None
        if nxt is not None and b > nxt:  # ramp down across the border with the next chunk
            lo = 2 * nxt - b
            w[lo:b] = np.minimum(w[lo:b], 1.0 - (np.arange(lo, b) - lo + 0.5) / (2 * (b - nxt)))
        W[k] = w
    W /= W.sum(0, keepdims=True)

    def blend(name: str) -> np.ndarray:
        v0 = getattr(parts[0], name)
        out = np.zeros((n, *v0.shape[1:]))
        for k, p in enumerate(parts):
            a, b, _ = spans[k]
            out[a:b] += W[k, a:b].reshape(-1, *[1] * (v0.ndim - 1)) * getattr(p, name)
        return out

    expression, t = blend("expression"), blend("t")
    M = blend("R")
    U, _, Vt = np.linalg.svd(M)
    R = U @ Vt
    R[np.linalg.det(R) < 0] = (U @ np.diag([1.0, 1.0, -1.0]) @ Vt)[np.linalg.det(R) < 0]
    rotvec = np.stack([cv2.Rodrigues(r)[0].ravel() for r in R])
    best = np.argmax(W, axis=0)  # per-frame quantities come from the chunk that weighs most there
    residual = np.stack([parts[k].residual_px[i - spans[k][0]] for i, k in enumerate(best)])
    used = np.stack([parts[k].used[i - spans[k][0]] for i, k in enumerate(best)])
    return FitSolution(identity=parts[0].identity, expression=expression, rotvec=rotvec, R=R, t=t,
                       residual_px=residual, used=used, cost=float(sum(p.cost for p in parts)),
                       iterations=max(p.iterations for p in parts))


def _to_sequence(model: FaceModel, sol: FitSolution, frames: np.ndarray, gi: np.ndarray,
                 cams: tuple[str, ...]) -> FitSequence:
    """Scatter the fitted frames into all frames; unfitted ones copy the nearest fitted frame (valid=False)."""
    T = len(frames)
    near = gi[np.argmin(np.abs(np.arange(T)[:, None] - gi[None]), axis=1)]  # nearest fitted row for every row
    row_of = {int(g): k for k, g in enumerate(gi)}
    src = np.array([row_of[int(n)] for n in near])
    verts = world_vertices(model, sol)
    valid = np.zeros(T, bool)
    valid[gi] = True
    res = sol.residual_px[src].astype(np.float32)
    res[~valid] = np.nan
    return FitSequence(model_name=model.name, frames=np.asarray(frames, np.int32),
                       identity=sol.identity.astype(np.float32),
                       expression=sol.expression[src].astype(np.float32), R=sol.R[src], t=sol.t[src],
                       scale=np.ones(T), vertices=verts[src], valid=valid, cameras=cams, residual_px=res)
