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
row marked ``ok`` points at a complete image; a torn last line is ignored by the reader. Each record is one line:
a line damaged in the middle of the file is skipped with a warning and the rows after it are kept
(:func:`parse_rows`).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from ..errors import SessionError

log = logging.getLogger(__name__)

FrameStatus = Literal["ok", "dropped", "gap"]
STATUSES: tuple[str, ...] = ("ok", "dropped", "gap")
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
        """The CSV fields; line breaks in text fields become spaces, so every record stays one line."""
        return [str(self.index), str(self.t_capture_ns), str(self.tick), _one_line(self.timecode),
                f"{self.exposure_us:g}", _one_line(self.file), self.status, _one_line(self.note)]


def _one_line(s: str) -> str:
    return s.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def parse_rows(text: str, where: str) -> list[FrameRecord]:
    """Parse ``frames.csv`` text; ``where`` names the file in messages.

    Every record is one physical line (the writer never writes a line break inside a field), so damage stays local:

    - a last line without its newline is a row torn by a killed writer: ignored (the append-only log's normal end);
    - a damaged line elsewhere (torn mid-row, two rows run together, an unclosed quote, a bad number or status) is
      skipped with a warning naming the file and the line; every readable row before *and after* it is kept;
    - a missing or incomplete header row makes the whole file unreadable: :class:`SessionError` saying it is
      damaged (an empty file is a camera that recorded nothing).
    """
    lines = text.split("\n")
    lines.pop()  # "" after the last newline, or a torn last row
    if not lines:
        if text:
            raise _damaged(where, f"its header row is incomplete ({text[:80]!r})")
        return []
    header = _split(lines[0])
    if header is None or tuple(header[: len(FIELDS)]) != FIELDS:
        raise _damaged(where, f"its header row is {lines[0][:80]!r}")
    out, bad = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        rec = _record(_split(line), len(header))
        if rec is None:
            bad.append(lineno)
        else:
            out.append(rec)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        log.warning("%s is damaged: skipped %d unreadable row%s (line %s); the %d readable rows, those after the "
                    "damage included, are used", where, len(bad), "s" if len(bad) > 1 else "", shown, len(out))
    return out


def _damaged(where: str, what: str) -> SessionError:
    return SessionError(f"{where} is damaged: {what}; expected the header {','.join(FIELDS)}",
                        hint="restore the file from a backup copy, or write that header as its first line (the "
                             "frame rows and images are not touched)")


def _split(line: str) -> list[str] | None:
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def _record(row: list[str] | None, n_fields: int) -> FrameRecord | None:
    """The record of one line, or None when the line is damaged."""
    if row is None or not len(FIELDS) - 1 <= len(row) <= n_fields:
        return None
    try:
        rec = FrameRecord(index=int(row[0]), t_capture_ns=int(row[1]), tick=int(row[2]), timecode=row[3],
                          exposure_us=float(row[4] or 0), file=row[5], status=row[6],  # type: ignore[arg-type]
                          note=row[7] if len(row) > 7 else "")
    except ValueError:
        return None
    if rec.index < 0 or rec.status not in STATUSES or (rec.status == "ok" and not rec.file):
        return None
    return rec


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
