"""A small session written in well under a second (textured test patterns, no face rendering, no calibration
captures), for tests of the engine, report, consent and executors that do not need a face on the plates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reconstruct.demo import demo_rig_path
from reconstruct.rig import load_rig
from reconstruct.session import FrameRecord, Session


def pattern(w: int, h: int, tick: int, channels: int) -> np.ndarray:
    """A checkerboard that pans 2 px per tick, with a moving bar: textured, moving plates."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = (((xx + 2 * tick) // 32 + yy // 32) % 2) * 100 + 70 + (np.abs(xx - (tick * 7) % w) < 4) * 60
    img = img.astype(np.uint8)
    if channels == 1:
        return img
    return np.stack([img, np.roll(img, 5, axis=1), np.roll(img, 9, axis=0)], axis=-1)


def make_tiny_session(root: Path, frames: int = 8, drop: tuple[tuple[str, int], ...] = ()) -> Path:
    """Session of the test-small rig with ``frames`` ticks at the rig fps on every camera; ``drop`` lists
    (camera, tick) pairs recorded as dropped (no image)."""
    rig = load_rig(demo_rig_path())
    s = Session.create(root, rig, name=Path(root).name, notes="tiny test session")
    period = int(round(1e9 / rig.fps))
    for cam in rig.cameras:
        w, h = cam.resolution
        with s.frame_log(cam.name) as log:
            for i in range(frames):
                t = i * period + 1_000_000_000
                if (cam.name, i) in drop:
                    log.append(FrameRecord(index=i, t_capture_ns=t, status="dropped", note="test drop"))
                    continue
                name = f"{i:06d}.png"
                s.write_image(cam.name, name, pattern(w, h, i, cam.channels))
                log.append(FrameRecord(index=i, t_capture_ns=t, file=name))
    return Path(root)
