"""Built-in plugin ``sync``: the sync stage (match camera frames into frame sets, write sync.csv) and its QC report
section."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from reconstruct import hookimpl
from reconstruct.engine import StageContext, file_digest

log = logging.getLogger(__name__)


class SyncStage:
    """Hero-led frame matching (see :mod:`capture.sync`). Output: ``out/sync/sync.csv`` (also copied to
    ``session/sync.csv``) and ``out/sync/report.json`` (method, per-camera clock offset, drift, jitter, matched and
    missing frames, duplicates, warnings). Option ``sync.method`` = auto|tick|timecode|flash|timestamps."""

    name = "sync"
    requires: tuple[str, ...] = ()
    version = "2"

    def _method(self, ctx: StageContext) -> str:
        return str(ctx.config.options.get("sync.method", "auto"))

    def fingerprint(self, ctx: StageContext):
        s = ctx.session
        return {"frames": file_digest(s.camera_dir(c) / "frames.csv" for c in s.rig.camera_names),
                "fps": s.rig.fps, "method": self._method(ctx)}

    def run(self, ctx: StageContext, out: Path) -> None:
        from capture.sync_session import sync_session

        s = ctx.session
        framesets, report = sync_session(s, self._method(ctx), sync_csv=out / "sync.csv",
                                         report_json=out / "report.json", progress=ctx.progress)
        s.write_sync(framesets)
        log.info("sync: %d frame sets by %s; offsets %s", len(framesets), report.method,
                 json.dumps(report.offsets_ns))


class SyncReportSection:
    """QC report section: how the cameras were matched (from ``out/sync/report.json``)."""

    name = "sync"
    title = "Sync"
    order = 10

    def html(self, ctx: StageContext) -> str | None:
        from capture.sync_session import report_html

        p = ctx.session.stage_dir("sync") / "report.json"
        if not p.exists():
            return None
        return report_html(json.loads(p.read_text(encoding="utf-8")))


@hookimpl
def register_stages():
    return [SyncStage()]


@hookimpl
def register_report_sections():
    return [SyncReportSection]
