"""Write a synthetic session: a rendered face performance seen by every rig camera, ChArUco calibration captures,
and ground truth *beside* the session (the pipeline never reads it).

Session (a normal one, :mod:`reconstruct.session`): ``cams/<camera>/NNNNNN.png`` + frames.csv (timestamps with
the timeline's offset, jitter, drops, duplicates and timecodes), ``calib/<camera>/NNNNNN.png`` + frames.csv
(index = board pose: equal indices are simultaneous views).

Ground truth in :func:`truth_dir` (``<session>.truth/``):
    ``meta.json``       model name, frames, fps, seed, camera names
    ``cameras.json``    camera name -> :meth:`CameraModel.to_dict` (K, dist, R, t world-to-camera, metres)
    ``params.npz``      identity (Ki,), expression (T, Ke), rotvec (T, 3), R (T, 3, 3), t (T, 3) model-to-world
                        per tick T, metres/radians; gaze (T, 3) world; segment (T,) extreme expression acted
                        (index into meta.json ``segments``, -1: talking)
    ``vertices.npz``    vertices (T, V, 3) float32 world-frame face vertices per tick, metres; triangles (F, 3)
    ``timeline.json``   per camera: ticks, t_ns, dropped_ticks, duplicated of the delivered frames
    ``calib_poses.npz`` poses (P, 4, 4) board-to-world of the calibration captures
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..face.model import FaceModel
from ..progress import NullProgress, Progress
from ..rig import Rig
from ..session import FrameRecord, Session, atomic_path, atomic_write_json
from .performance import make_performance, rig_cameras
from .timeline import TimelineSpec, make_timeline

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SynthSpec:
    """What to synthesise.

    Attributes:
        frames: ticks of the performance.
        seed: makes identity, motion, cameras, noise and timelines reproducible.
        timeline: clock offsets, jitter, drops, duplicates, timecodes, flash.
        model: face model source name (``"auto"``: ``ict``, the built-in ICT-FaceKit model).
        calib_poses: board poses of the calibration capture (0 = no calib/ folder).
        calib_noise: sensor noise of the calibration images, 8-bit grey levels.
        identity_scale: standard deviation of the random identity, in prior units.
        identity: explicit identity coefficients (prior units; missing trailing modes are 0) instead of a random
            identity, e.g. to render an actor "A" whose "young" identity "B" is known.
        extremes: extreme expressions acted one after the other (names in
            :data:`reconstruct.synth.expressions.EXTREMES`: scream, pucker, smile, squint, smirk, blink, brows).
        gaze_style: ``"smooth"`` (drifting gaze) or ``"saccades"`` (fixations and fast jumps), with ``gaze_deg``.
        gaze_deg: eye movement (yaw up to +-gaze_deg relative to the head; 0: eyes straight ahead). Models with eye
            openings only (ICT-FaceKit); the demo model's eyes are painted.
    """

    frames: int = 12
    seed: int = 0
    timeline: TimelineSpec = field(default_factory=TimelineSpec)
    model: str = "auto"
    calib_poses: int = 30
    calib_noise: float = 1.5
    identity_scale: float = 1.0
    identity: tuple[float, ...] | None = None
    gaze_deg: float = 0.0
    extremes: tuple[str, ...] = ()
    gaze_style: str = "smooth"


def truth_dir(session_root: Path) -> Path:
    """Where ground truth of a synthetic session lives (beside it; the pipeline never reads it)."""
    session_root = Path(session_root)
    return session_root.with_name(session_root.name + ".truth")


def _save_npz(path: Path, **arrays) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def generate_session(rig: Rig, root: Path, spec: SynthSpec = SynthSpec(), progress: Progress | None = None,
                     model: FaceModel | None = None) -> Session:
    """Create ``root`` as a session of ``rig`` with rendered frames; ground truth goes to ``truth_dir(root)``.

    ``model``: a face model to render (default: load ``spec.model``).
    """
    from ..face.store import load_model_by_name
    from ..render.raycast import RaycastRenderer
    from .imaging import render_view

    progress = progress or NullProgress()
    model = model or load_model_by_name(spec.model)
    session = Session.create(root, rig, name=Path(root).name,
                             notes=f"synthetic session (reconstruct synth, model {model.name}, seed {spec.seed})")
    cams = rig_cameras(rig, spec.seed)
    perf = make_performance(model, spec.frames, rig.fps, spec.seed, spec.identity_scale, spec.identity,
                            gaze_deg=spec.gaze_deg, extremes=spec.extremes, gaze_style=spec.gaze_style)
    timelines = make_timeline(list(rig.camera_names), rig.hero.name, spec.frames, rig.fps, spec.timeline, spec.seed)
    renderer = RaycastRenderer()
    rng = np.random.default_rng(spec.seed + 55)
    truth = truth_dir(Path(root))
    truth.mkdir(parents=True, exist_ok=True)
    triggered = rig.trigger.mode in ("software", "hardware")
    with progress.task("render synthetic frames", total=sum(len(t.ticks) for t in timelines.values())) as task:
        for cam in rig.cameras:
            tl = timelines[cam.name]
            last: tuple[int, np.ndarray] | None = None
            with session.frame_log(cam.name) as flog:
                for i, (tick, t_ns) in enumerate(zip(tl.ticks, tl.t_ns)):
                    tick = int(tick)
                    if last is not None and last[0] == tick:  # a duplicated delivery: the same image again
                        img = last[1]
                    else:
                        img = render_view(renderer, model, perf.state(tick), cams[cam.name], cam, rng,
                                          flash=tick == spec.timeline.flash_tick)
                    last = (tick, img)
                    fname = f"{i:06d}.png"
                    session.write_image(cam.name, fname, img)
                    # a software- or hardware-triggered rig stamps each frame with its trigger tick
                    flog.append(FrameRecord(index=i, t_capture_ns=int(t_ns), tick=tick if triggered else -1,
                                            timecode=tl.timecodes[i] if tl.timecodes else "",
                                            exposure_us=cam.exposure_us, file=fname))
                    task.advance()
    poses: list[np.ndarray] = []
    if spec.calib_poses > 0:
        poses = write_calibration_captures(session, rig, cams, spec, progress)
    # ground truth
    atomic_write_json(truth / "meta.json", {"model": model.name, "frames": spec.frames, "fps": rig.fps,
                                            "seed": spec.seed, "cameras": list(rig.camera_names),
                                            "hero": rig.hero.name, "expression_names": list(model.expression_names),
                                            "segments": list(perf.extremes)})
    atomic_write_json(truth / "cameras.json", {n: c.to_dict() for n, c in cams.items()})
    _save_npz(truth / "params.npz", identity=perf.identity, expression=perf.expression, rotvec=perf.rotvec, R=perf.R,
              t=perf.t, gaze=perf.gaze_world, segment=perf.segment)
    verts = np.stack([model.vertices(perf.identity, perf.expression[k]) @ perf.R[k].T + perf.t[k]
                      for k in range(perf.frames)]).astype(np.float32)
    _save_npz(truth / "vertices.npz", vertices=verts, triangles=model.triangles)
    if poses:
        _save_npz(truth / "calib_poses.npz", poses=np.stack(poses))
    atomic_write_json(truth / "timeline.json", {
        cam: {"ticks": tl.ticks, "t_ns": tl.t_ns, "dropped_ticks": tl.dropped_ticks, "duplicated": tl.duplicated}
        for cam, tl in timelines.items()})
    log.info("synthetic session written to %s (ground truth in %s)", root, truth)
    return session


def write_calibration_captures(session: Session, rig: Rig, cams: dict, spec: SynthSpec,
                               progress: Progress) -> list[np.ndarray]:
    """Render ChArUco views of the rig's board through the true cameras into ``calib/<camera>/``."""
    from ..calibration.synthetic import render_board_views

    with progress.task("render calibration captures", total=1) as task:
        images, poses = render_board_views(rig.board, cams, spec.calib_poses, seed=spec.seed,
                                           noise_px=spec.calib_noise,
                                           channels={c.name: c.channels for c in rig.cameras})
        task.advance()
    t0 = int(spec.timeline.t0_ns) - 120_000_000_000  # two minutes before the take
    for c in rig.cameras:
        with session.frame_log(c.name, kind="calib") as flog:
            for k, img in enumerate(images[c.name]):
                if img is None:
                    continue
                fname = f"{k:06d}.png"
                session.write_image(c.name, fname, img, kind="calib")
                flog.append(FrameRecord(index=k, t_capture_ns=t0 + k * 500_000_000, tick=k,
                                        exposure_us=c.exposure_us, file=fname))
    return list(poses)


@dataclass(frozen=True, slots=True, eq=False)
class Truth:
    """Ground truth of a synthetic session, for tests and benchmarks (never for the pipeline).

    Attributes:
        meta: meta.json contents. cameras: name -> CameraModel. identity (Ki,), expression (T, Ke), R (T, 3, 3),
        t (T, 3): the performance per tick. vertices: (T, V, 3) float32 world vertices, metres. gaze: (T, 3) world
        unit gaze direction of both eyes (sessions written before gaze was recorded: straight ahead).
        segment: (T,) int extreme expression acted per tick (index into ``meta["segments"]``; -1: talking, also
        for sessions written before segments were recorded).
    """

    meta: dict
    cameras: dict
    identity: np.ndarray
    expression: np.ndarray
    R: np.ndarray
    t: np.ndarray
    vertices: np.ndarray
    gaze: np.ndarray
    segment: np.ndarray

    def frames_of(self, name: str) -> np.ndarray:
        """Ticks on which the extreme expression ``name`` is acted (empty when the take has none)."""
        names = list(self.meta.get("segments", []))
        return np.flatnonzero(self.segment == names.index(name)) if name in names else np.zeros(0, np.int64)


def load_truth(root: Path) -> Truth:
    """Read the ground truth written beside a synthetic session."""
    from ..camera import CameraModel

    d = truth_dir(Path(root))
    cams = {n: CameraModel.from_dict(c) for n, c in json.loads((d / "cameras.json").read_text()).items()}
    p = np.load(d / "params.npz")
    v = np.load(d / "vertices.npz")
    return Truth(meta=json.loads((d / "meta.json").read_text()), cameras=cams, identity=p["identity"],
                 expression=p["expression"], R=p["R"], t=p["t"], vertices=v["vertices"],
                 gaze=p["gaze"] if "gaze" in p else p["R"][:, :, 2],
                 segment=p["segment"] if "segment" in p else np.full(len(p["t"]), -1, np.int64))
