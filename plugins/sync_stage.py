"""Built-in plugin ``sync``: the sync stage (match camera frames into frame sets, write sync.csv)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from reconstruct import hookimpl
from reconstruct.engine import StageContext, file_digest
from reconstruct.session import atomic_write_json

log = logging.getLogger(__name__)


class SyncStage:
    """Hero-led frame matching. Output: ``out/sync/sync.csv`` (also copied to ``session/sync.csv``) and
    ``out/sync/report.json`` (clock offsets, matched and unmatched counts per camera)."""

    name = "sync"
    requires: tuple[str, ...] = ()
    version = "1"

    def fingerprint(self, ctx: StageContext):
        s = ctx.session
        return {"frames": file_digest(s.camera_dir(c) / "frames.csv" for c in s.rig.camera_names),
                "fps": s.rig.fps}

    def run(self, ctx: StageContext, out: Path) -> None:
        from capture.sync import match_frames

        s = ctx.session
        records = {c: s.frames(c) for c in s.rig.camera_names}
        framesets, report = match_frames(records, s.rig.hero.name, s.rig.fps)
        s.write_sync(framesets, out / "sync.csv")
        s.write_sync(framesets)
        atomic_write_json(out / "report.json", {
            "hero_frames": report.hero_frames, "offsets_ns": dict(report.offsets_ns),
            "matched": dict(report.matched), "unmatched": dict(report.unmatched)})
        log.info("sync: %d frame sets; offsets %s", len(framesets), json.dumps(dict(report.offsets_ns)))


@hookimpl
def register_stages():
    return [SyncStage()]
