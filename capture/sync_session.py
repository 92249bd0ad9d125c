"""Sync a whole session: read frames.csv of every camera, measure flash brightness when needed, match, write.

Used by ``capture sync`` and by the ``sync`` pipeline stage (``plugins/sync_stage.py``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from reconstruct.errors import SessionError
from reconstruct.progress import NullProgress, Progress
from reconstruct.session import FrameSet, Session

from .sync import SyncReport, match_frames

log = logging.getLogger(__name__)


def frame_brightness(session: Session, camera: str, progress: Progress | None = None) -> list[float]:
    """Mean brightness (0-255, every 8th pixel) of each ``ok`` frame of ``camera``, in frames.csv order."""
    progress = progress or NullProgress()
    recs = [r for r in session.frames(camera) if r.status == "ok"]
    out = []
    with progress.task(f"brightness {camera}", total=len(recs)) as task:
        for r in recs:
            img = session.read_image(camera, r)
            out.append(float(img[::8, ::8].mean()) * (255.0 / 65535.0 if img.dtype == np.uint16 else 1.0))
            task.advance()
    return out


def needs_brightness(session: Session, method: str) -> bool:
    if method == "flash":
        return True
    if method != "auto":
        return False
    for cam in session.rig.camera_names:
        good = [r for r in session.frames(cam) if r.status == "ok"]
        if good and not (all(r.tick >= 0 for r in good) or all(r.timecode for r in good)):
            return True
    return False


def sync_session(session: Session, method: str = "auto", max_offset_s: float = 2.0, sync_csv: Path | None = None,
                 report_json: Path | None = None, progress: Progress | None = None) -> tuple[list[FrameSet], SyncReport]:
    """Match the session's frames and write ``sync.csv`` (default ``session/sync.csv``) and the JSON report
    (default ``session/sync_report.json``)."""
    records = {c: session.frames(c) for c in session.rig.camera_names}
    bright = None
    if needs_brightness(session, method):
        try:
            bright = {c: frame_brightness(session, c, progress) for c in session.rig.camera_names if records[c]}
        except SessionError as exc:
            if method == "flash":
                raise
            log.info("no flash search (%s); syncing by timestamps", exc.message)  # auto: flash is best effort
    framesets, report = match_frames(records, session.rig.hero.name, session.rig.fps, method=method,
                                     brightness=bright, max_offset_s=max_offset_s)
    take = take_warnings(session)
    for w in take:
        log.warning("sync: %s", w)
    report = replace(report, warnings=report.warnings + tuple(take))
    session.write_sync(framesets, sync_csv)
    session.write_sync_report(report.to_json(), report_json)
    log.info("sync (%s): %d frame sets", report.method, len(framesets))
    return framesets, report


def take_warnings(session: Session) -> list[str]:
    """Warnings from the recorder's report (capture.json): the take is incomplete, failed or was interrupted."""
    from .report import take_is_bad, take_problems, take_state

    try:
        rep = session.read_capture_report()
    except SessionError as exc:
        return [f"{exc.message}; the frames were synced from frames.csv"]
    if rep is None or not take_is_bad(rep):
        return []
    problems = take_problems(rep)
    return [f"the take is {take_state(rep)} (capture.json)" + (": " + "; ".join(problems) if problems else "")]


def report_html(report: dict) -> str:
    """An HTML fragment for the QC report: per-camera matching, offsets, drift, drops and duplicates."""
    from html import escape

    rows = []
    for cam, c in report["cameras"].items():
        rows.append(
            f"<tr><td>{escape(cam)}</td><td>{escape(c['method'])}</td><td>{c['matched']}</td>"
            f"<td>{c['unmatched_hero']}</td><td>{c['offset_ns'] / 1e6:.2f}</td><td>{c['drift_ppm']:+.1f}</td>"
            f"<td>{c['drift_frames']:+.3f}</td><td>{c['jitter_ns'] / 1e6:.2f}</td><td>{len(c['duplicates'])}</td>"
            f"<td>{c['not_ok']}</td><td>{'yes' if c['ambiguous'] else ''}</td></tr>")
    warn = "".join(f"<li>{escape(w)}</li>" for w in report.get("warnings", []))
    return (f"<p>{report['hero_frames']} frame sets led by <b>{escape(report['hero'])}</b> at "
            f"{report['fps']:g} fps, matched by <b>{escape(report['method'])}</b>.</p>"
            "<table><tr><th>camera</th><th>method</th><th>matched</th><th>missing</th><th>offset ms</th>"
            "<th>drift ppm</th><th>drift frames</th><th>jitter ms</th><th>duplicates</th><th>not ok rows</th>"
            "<th>ambiguous</th></tr>" + "".join(rows) + "</table>" + (f"<ul>{warn}</ul>" if warn else ""))
