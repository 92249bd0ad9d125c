"""Per-camera running counts and the writer thread that stores one camera's frames and rows in index order."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from reconstruct.errors import DeageError
from reconstruct.session import FrameRecord, Session

log = logging.getLogger(__name__)


@dataclass
class CameraStats:
    """Running counts for one camera (status view and capture.json)."""

    produced: int = 0
    stored: int = 0
    dropped: list[int] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    bytes: int = 0
    node_queue: int = 0
    pid: int = 0
    exit_code: int | None = None
    bye: dict | None = None
    error: str = ""
    last_tick: int = -1
    expected: int = 0
    dead_at: float = 0.0
    missed_ticks: list[int] = field(default_factory=list)  # software ticks this camera produced no frame for
    window: list = field(default_factory=list)  # (monotonic time, bytes) of recent stored frames


class CameraWriter(threading.Thread):
    """Writes one camera's frames and rows in index order."""

    def __init__(self, session: Session, camera: str, stats: CameraStats, fmt: str, maxsize: int,
                 on_fatal: Callable[[str], None]) -> None:
        super().__init__(name=f"writer-{camera}", daemon=True)
        self.session, self.camera, self.stats, self.fmt = session, camera, stats, fmt
        self.q: queue.Queue = queue.Queue(maxsize=maxsize)
        self.log = session.frame_log(camera)
        self.on_fatal = on_fatal
        self.failed = False
        self.lock = threading.Lock()

    def run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                break
            rec, image = item
            try:
                if image is not None and not self.failed:
                    fname = f"{rec.index:06d}.{self.fmt}"
                    self.session.write_image(self.camera, fname, image)
                    rec = FrameRecord(rec.index, rec.t_capture_ns, rec.tick, rec.timecode, rec.exposure_us, fname,
                                      "ok", "")
                    with self.lock:
                        self.stats.stored += 1
                        self.stats.bytes += image.nbytes
                        self.stats.window.append((time.monotonic(), image.nbytes))
                elif image is not None:
                    rec = FrameRecord(rec.index, rec.t_capture_ns, rec.tick, rec.timecode, rec.exposure_us, "",
                                      "dropped", "not stored: recording stopped after a write error")
                    with self.lock:
                        self.stats.dropped.append(rec.index)
                self.log.append(rec)
            except (DeageError, OSError) as exc:
                msg = exc.message if isinstance(exc, DeageError) else str(exc)
                self.failed = True
                with self.lock:
                    self.stats.dropped.append(rec.index)
                try:
                    self.log.append(FrameRecord(rec.index, rec.t_capture_ns, rec.tick, rec.timecode, rec.exposure_us,
                                                "", "dropped", f"write failed: {msg}"))
                except OSError:
                    pass
                self.on_fatal(f"camera {self.camera}: {msg}")
        try:
            self.log.close()
        except OSError:
            pass
