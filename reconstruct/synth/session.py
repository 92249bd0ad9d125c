"""Write a synthetic session: frames per camera with a known timeline, plus ground truth beside it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..progress import NullProgress, Progress
from ..rig import Rig
from ..session import FrameRecord, Session, atomic_write_json
from .timeline import TimelineSpec, make_timeline

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SynthSpec:
    """What to synthesise. ``frames``: ticks of the performance; ``seed`` makes everything reproducible."""

    frames: int = 12
    seed: int = 0
    timeline: TimelineSpec = field(default_factory=TimelineSpec)


def truth_dir(session_root: Path) -> Path:
    """Where ground truth of a synthetic session lives (beside it; the pipeline never reads it)."""
    session_root = Path(session_root)
    return session_root.with_name(session_root.name + ".truth")


def _test_pattern(w: int, h: int, tick: int, channels: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((xx // 32 + yy // 32 + tick) % 2) * 120 + 60
    bar = (np.abs(xx - (tick * 7) % w) < 4) * 80
    img = np.clip(base + bar, 0, 255).astype(np.uint8)
    if channels == 1:
        return img
    rgb = np.stack([img, np.roll(img, 5, axis=1), np.roll(img, 9, axis=0)], axis=-1)
    return rgb


def generate_session(rig: Rig, root: Path, spec: SynthSpec = SynthSpec(), progress: Progress | None = None) -> Session:
    """Create ``root`` as a session of ``rig`` with synthetic frames; ground truth goes to ``truth_dir(root)``."""
    progress = progress or NullProgress()
    session = Session.create(root, rig, name=Path(root).name, notes="synthetic session (reconstruct synth)")
    timelines = make_timeline(list(rig.camera_names), rig.hero.name, spec.frames, rig.fps, spec.timeline, spec.seed)
    truth = truth_dir(Path(root))
    truth.mkdir(parents=True, exist_ok=True)
    with progress.task("synthesise frames", total=sum(len(t.ticks) for t in timelines.values())) as task:
        for cam in rig.cameras:
            tl = timelines[cam.name]
            w, h = cam.resolution
            with session.frame_log(cam.name) as flog:
                for i, (tick, t_ns) in enumerate(zip(tl.ticks, tl.t_ns)):
                    fname = f"{i:06d}.png"
                    session.write_image(cam.name, fname, _test_pattern(w, h, int(tick), cam.channels, spec.seed))
                    flog.append(FrameRecord(index=i, t_capture_ns=int(t_ns), tick=-1, exposure_us=cam.exposure_us,
                                            file=fname))
                    task.advance()
    atomic_write_json(truth / "timeline.json", {
        cam: {"ticks": tl.ticks, "t_ns": tl.t_ns, "dropped_ticks": tl.dropped_ticks, "duplicated": tl.duplicated}
        for cam, tl in timelines.items()})
    log.info("synthetic session written to %s (ground truth in %s)", root, truth)
    return session


def load_truth_timeline(root: Path) -> dict:
    return json.loads((truth_dir(root) / "timeline.json").read_text())
