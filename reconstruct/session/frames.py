"""Per-camera frame records (``cams/<camera>/frames.csv``) and the crash-safe frame writer.

``frames.csv`` has one row per frame the camera *produced*, good or not:

=============  =====================================================================================
column         meaning
=============  =====================================================================================
index          frame index assigned by the camera node, 0-based, increasing by 1 (gaps = lost before
               the node saw them, which the recorder reports as ``missing``)
t_capture_ns   capture timestamp, nanoseconds, camera node's clock (``time.time_ns()`` domain)
tick           software/hardware trigger tick the frame answers (-1: free-running)
timecode       SMPTE timecode ``HH:MM:SS:FF`` at the rig fps (may be empty)
exposure_us    exposure time in microseconds
file           image file name relative to the camera folder (empty when not stored)
status         ``ok`` (on disk, complete), ``dropped`` (produced, never stored; reason in ``note``),
               ``gap`` (camera node was down; no image)
note           free text (drop reason, ...)
=============  =====================================================================================

The writer stores the image atomically *before* appending its row and flushes the row, so after a SIGKILL every
row marked ``ok`` points at a complete image; a torn last line is ignored by the reader.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from ..errors import SessionError

FrameStatus = Literal["ok", "dropped", "gap"]
FIELDS = ("index", "t_capture_ns", "tick", "timecode", "exposure_us", "file", "status", "note")


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One row of ``frames.csv`` (see the module docstring for units)."""

    index: int
    t_capture_ns: int
    tick: int = -1
    timecode: str = ""
    exposure_us: float = 0.0
    file: str = ""
    status: FrameStatus = "ok"
    note: str = ""

    def row(self) -> list[str]:
        return [str(self.index), str(self.t_capture_ns), str(self.tick), self.timecode, f"{self.exposure_us:g}",
                self.file, self.status, self.note]


def parse_rows(text: str, where: str) -> list[FrameRecord]:
    """Parse ``frames.csv`` text. A last line without its newline (torn write) is ignored."""
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return []
    if tuple(header[: len(FIELDS)]) != FIELDS:
        raise SessionError(f"{where}: unexpected header {header}; expected {','.join(FIELDS)}")
    out = []
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            out.append(FrameRecord(
                index=int(row[0]), t_capture_ns=int(row[1]), tick=int(row[2]), timecode=row[3],
                exposure_us=float(row[4] or 0), file=row[5], status=row[6], note=row[7] if len(row) > 7 else "",
            ))
        except (ValueError, IndexError) as exc:
            raise SessionError(f"{where}:{lineno}: malformed frame row {row}: {exc}") from exc
    return out


def format_rows(records: Iterable[FrameRecord]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FIELDS)
    for r in records:
        w.writerow(r.row())
    return buf.getvalue()


class FrameLog:
    """Append-only ``frames.csv`` writer. Each row is flushed; ``fsync_every`` rows are fsynced."""

    def __init__(self, path: Path, fsync_every: int = 30) -> None:
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        if not new:
            # A torn last line from a killed writer: cut it off so the next row starts cleanly.
            data = path.read_bytes()
            if not data.endswith(b"\n"):
                with open(path, "rb+") as r:
                    r.truncate(data.rfind(b"\n") + 1)
        self._f = open(path, "a", encoding="utf-8", newline="")
        self._w = csv.writer(self._f, lineterminator="\n")
        if new:
            self._w.writerow(FIELDS)
        self._n = 0
        self._fsync_every = fsync_every

    def append(self, rec: FrameRecord) -> None:
        self._w.writerow(rec.row())
        self._f.flush()
        self._n += 1
        if self._n % self._fsync_every == 0:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> "FrameLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
