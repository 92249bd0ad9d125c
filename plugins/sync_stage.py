"""Built-in plugin ``sync``: the sync stage (match camera frames into frame sets, write sync.csv) and its QC report
section."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconstruct import hookimpl
from reconstruct.options import option
from reconstruct.stage import StageContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """``--option sync.KEY=VALUE``."""

    method: Literal["auto", "tick", "timecode", "flash", "timestamps"] = option(
        "auto", "how frames are matched across cameras: by trigger tick, timecode, a visible flash or timestamps "
                "(auto: the first the recording supports)")


class SyncStage:
    """Hero-led frame matching (see :mod:`capture.sync`). Output: ``out/sync/sync.csv`` (also copied to
    ``session/sync.csv``) and ``out/sync/report.json`` (method, per-camera clock offset, drift, jitter, matched and
    missing frames, duplicates, warnings). Option ``sync.method`` = auto|tick|timecode|flash|timestamps."""

    name = "sync"
    requires: tuple[str, ...] = ()
    version = "2"
    Settings = SyncSettings

    def fingerprint(self, ctx: StageContext):
        s = ctx.session
        return {"frames": s.frames_digest(), "fps": s.rig.fps}

    def run(self, ctx: StageContext, out: Path) -> None:
        from capture.sync_session import sync_session

        s = ctx.session
        framesets, report = sync_session(s, ctx.settings[self.name].method, sync_csv=out / "sync.csv",
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
