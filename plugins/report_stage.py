"""Built-in plugin ``report``: the QC report stage and the built-in report sections.

The stage runs last (``runs_last``: after every other stage of the run) and needs only ``sync``; every other
upstream output is optional and shown when present. Output: ``out/report/report.html`` (one self-contained page),
``out/report/flags.json`` (frames flagged for an artist, machine-readable), ``out/report/measures.json`` (every
method's photographic measures, :mod:`reconstruct.report.measures`). ``reconstruct report SESSION`` runs it
alone.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from reconstruct import hookimpl
from reconstruct.hashing import file_digest
from reconstruct.report.sections import ReportSettings
from reconstruct.session import STAGE_FILE, atomic_write_json, atomic_write_text
from reconstruct.stage import StageContext

log = logging.getLogger(__name__)


class ReportStage:
    name = "report"
    requires: tuple[str, ...] = ("sync",)
    version = "1"
    runs_last = True
    Settings = ReportSettings

    def fingerprint(self, ctx: StageContext):
        """Every other completed stage's cache key, the manifest and the session's own files: the report is
        rebuilt whenever anything it could show changed."""
        s = ctx.session
        keys = {}
        out = s.root / "out"
        if out.is_dir():
            for sub in sorted(out.iterdir()):
                f = sub / STAGE_FILE
                if sub.is_dir() and sub.name != self.name and f.exists():
                    keys[sub.name] = s.stage_key(sub.name)
        from reconstruct.provenance import read_manifest

        try:  # the outputs recorded by other stages (not the report's own entry, which each run rewrites)
            manifest = sorted((k, v.get("sha256")) for k, v in read_manifest(s).items()
                              if not k.startswith(f"out/{self.name}/"))
        except Exception:  # a damaged manifest is reported by the provenance section, not fatal here
            manifest = ["damaged"]
        return {"stages": keys, "manifest": hashlib.sha256(repr(manifest).encode()).hexdigest()[:16],
                "session": file_digest([s.root / "session.toml", s.calibration_path]),
                "sections": sorted(ctx.components.all("report_section"))}

    def prestart(self, ctx: StageContext) -> None:
        """Start the workers of the report's pass over the frames (:func:`reconstruct.report.scan.scan_frames`)
        early, warmed with what it imports, while an earlier stage leaves cores idle (see
        :class:`reconstruct.stage.Stage`): not when the pass runs in the driver (no method, few frames, one job)."""
        from reconstruct.report.scan import POOL, spreads, warm_worker

        prestart = getattr(ctx.executor, "prestart", None)
        # only where the pass will spread over workers: composited frames (a method), more than MIN_FRAMES of them
        if callable(prestart) and ctx.config.method and spreads(ctx.executor, len(ctx.session.read_sync())):
            prestart(POOL, warm_worker)

    def run(self, ctx: StageContext, out: Path) -> None:
        from reconstruct.provenance import record_for_stage, record_output
        from reconstruct.report.page import page
        from reconstruct.report.sections import render_sections, report_flags, report_measures

        s = ctx.session
        with ctx.progress.task("report", total=1) as task:
            sections = render_sections(ctx)
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            html = page(f"QC report: {s.meta.name}", f"{s.root} - rig {s.rig.name} - made {now}", sections)
            # ``out`` is the stage's temporary folder: no fsync per file (two each, one after the other on the
            # stage's last stretch, after the workers are done), the commit flushes the folder (``sync=False``)
            atomic_write_text(out / "report.html", html, sync=False)
            flags = report_flags(ctx)
            atomic_write_json(out / "flags.json", {
                "flagged": {str(f): names for f, names in flags.flagged_frames().items()},
                "checks": {n: {"threshold": fs.threshold, "unit": fs.unit, "frames": fs.frames,
                               "score": [None if not np.isfinite(v) else float(v) for v in fs.score],
                               "flagged": fs.flagged} for n, fs in flags.series.items()},
                "skipped": flags.skipped}, sync=False)
            atomic_write_json(out / "measures.json", {
                (m or "?"): {"summary": ms.summary(), "notes": ms.notes,
                             "frames": [int(f) for f in ms.frames],
                             **{k: [None if not np.isfinite(v) else round(float(v), 5) for v in getattr(ms, k)]
                                for k in ("expression_iod_pct", "detail_ratio", "dark_pct", "wrinkle_ratio")}}
                for m, ms in report_measures(ctx).items()}, sync=False)
            task.advance()
        record_output(s, out / "report.html", record_for_stage(ctx, self.name))
        log.info("report: %s (%d sections, %d frames flagged)", s.stage_dir(self.name) / "report.html",
                 len(sections), len(flags.flagged_frames()))


@hookimpl
def register_stages():
    return [ReportStage()]


@hookimpl
def register_report_sections():
    from reconstruct.report.sections import BUILTIN_SECTIONS

    return list(BUILTIN_SECTIONS)
