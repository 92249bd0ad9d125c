"""The ``sync`` pipeline stage and its QC report section, on a recorded session."""

from __future__ import annotations

import json

from capture.recorder import Recorder
from deage_plugins.sync_stage import SyncReportSection
from reconstruct.engine import run_pipeline
from reconstruct.stage import RunConfig
from reconstruct.plugins import make_plugin_manager

from .conftest import loopback_options


def test_sync_stage_writes_sync_csv_report_and_section(small_rig, tmp_path):
    Recorder(small_rig, tmp_path / "t", loopback_options(frames=20)).run()
    import deage_plugins.sync_stage

    # only this plugin: the test must not depend on other stages being installed
    host = make_plugin_manager(load_entry_points=False, extra_plugins=[("sync", deage_plugins.sync_stage)])
    assert "sync" in host.components().all("report_section")
    results = run_pipeline(RunConfig(session=tmp_path / "t", only_stage="sync"), host)
    assert [r.name for r in results if not r.skipped] == ["sync"]
    out = tmp_path / "t" / "out" / "sync"
    rep = json.loads((out / "report.json").read_text())
    assert rep["method"] == "tick" and rep["hero_frames"] == 20 and rep["matched"]["ir-left"] == 20
    assert (tmp_path / "t" / "sync.csv").read_text() == (out / "sync.csv").read_text()

    class Ctx:  # the section only needs the session
        from reconstruct.session import Session

        session = Session.open(tmp_path / "t")

    html = SyncReportSection().html(Ctx())
    assert "matched by <b>tick</b>" in html and "ir-right" in html
