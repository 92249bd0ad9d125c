"""Calibration captures recorded as videos (one file per camera, frame-synchronised) into a session's ``calib/``.

Frame ``i`` of every video is taken as simultaneous; every ``step``-th frame is stored as
``calib/<camera>/NNNNNN.png`` with a frames.csv row whose ``index`` is the frame number, so views keep their
correspondence across cameras.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import CalibrationError
from ..session import FrameRecord

log = logging.getLogger(__name__)


def import_calibration_videos(session, videos: dict[str, str | Path], step: int = 1, fps: float | None = None) -> dict[str, int]:
    """Store every ``step``-th frame of each camera's video in ``calib/<camera>/``; returns frames stored per camera."""
    import cv2

    if step < 1:
        raise CalibrationError(f"step must be at least 1, got {step}")
    out = {}
    for cam, path in videos.items():
        session.rig.camera(cam)  # validates the name
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise CalibrationError(f"camera {cam!r}: cannot open calibration video {path}",
                                   hint="check the path; OpenCV must be able to decode the codec")
        rate = fps or cap.get(cv2.CAP_PROP_FPS) or session.rig.fps
        n = i = 0
        try:
            with session.frame_log(cam, kind="calib") as flog:
                while True:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    if i % step == 0:
                        name = f"{i:06d}.png"
                        img = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                        if session.rig.camera(cam).channels == 1:
                            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
                        session.write_image(cam, name, img, kind="calib")
                        flog.append(FrameRecord(index=i, t_capture_ns=int(i * 1e9 / rate), file=name))
                        n += 1
                    i += 1
        finally:
            cap.release()
        if n == 0:
            raise CalibrationError(f"camera {cam!r}: no frames could be read from {path}")
        log.info("camera %s: %d of %d video frames stored in calib/", cam, n, i)
        out[cam] = n
    return out
