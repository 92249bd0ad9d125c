"""The report stage and `reconstruct report` on synthetic sessions: works after sync alone, runs last, flags the
planted defects of fake composites, survives a broken section, and is one self-contained page."""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
import pytest

import deage_plugins.report_stage
import deage_plugins.sync_stage
from reconstruct import hookimpl
from reconstruct.commands import report as report_cmd
from reconstruct.engine import run_pipeline
from reconstruct.stage import RunConfig
from reconstruct.plugins import make_plugin_manager
from reconstruct.provenance import read_manifest
from reconstruct.session import Session
from tests.tiny_session import make_tiny_session


@dataclass(frozen=True)
class LaterSettings:
    x: str = "1"


class Later:
    """A stage that sorts after 'report' by name and by registration: the report must still run after it."""

    name = "zzz_late"
    requires = ("sync",)
    version = "1"
    Settings = LaterSettings

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out):
        (out / "x.txt").write_text(ctx.settings[self.name].x)


class Broken:
    name = "broken_section"
    order = 5

    def html(self, ctx):
        raise RuntimeError("section bug")


class Extra:
    @hookimpl
    def register_stages(self):
        return [Later()]

    @hookimpl
    def register_report_sections(self):
        return [Broken]


def host(*extra):
    return make_plugin_manager(load_entry_points=False, extra_plugins=[
        ("sync", deage_plugins.sync_stage), ("report", deage_plugins.report_stage), *extra])


@pytest.fixture()
def shot(tmp_path) -> Path:
    return make_tiny_session(tmp_path / "shot", frames=10, drop=(("witness-left", 4),))


def assert_self_contained(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # nothing fetched from anywhere: no external src/href, no stylesheet links, no scripts
    assert not re.search(r'(src|href)="(?!data:|#)', html), re.search(r'(src|href)="(?!data:|#)[^"]*', html)
    assert "<link" not in html and "<script" not in html and "@import" not in html


def test_report_after_sync_only(shot):
    results = run_pipeline(RunConfig(session=shot), host())
    assert [r.name for r in results] == ["sync", "report"]
    page = (shot / "out" / "report" / "report.html").read_text()
    assert_self_contained(page)
    for anchor in ("summary", "rig", "timeline", "fit", "plates", "flags", "provenance"):
        assert f'<section id="{anchor}">' in page
    assert "the fit stage has not run" in page and "the composite stage has not run" in page
    assert page.count("<svg") >= 1  # the sync timeline
    assert ">dropped</text>" in page and ">missing</text>" in page  # witness-left's dropped frame 4 is drawn
    flags = json.loads((shot / "out" / "report" / "flags.json").read_text())
    assert flags["flagged"] == {} and set(flags["skipped"]) == {"stiff_expression", "unnatural_eyes", "flicker", "seams"}
    assert "out/report/report.html" in read_manifest(Session.open(shot))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names open files by /proc/self/fd (Linux)")
def test_report_files_are_flushed_by_the_stage_commit_not_one_by_one(shot, monkeypatch):
    """The report's three files are written into the stage's temporary folder without an fsync each (two per file,
    one after the other at the end of the stage): the commit (``atomic_replace_dir``) flushes them with the
    folder before it takes the final name."""
    run_pipeline(RunConfig(session=shot, only_stage="sync"), host())
    synced, real = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real(fd))
    run_pipeline(RunConfig(session=shot, only_stage="report"), host())
    names = {Path(p).name for p in synced if "/.report.tmp" in p}
    assert {"report.html", "flags.json", "measures.json"} <= names, names  # flushed by the commit
    assert not [n for n in names if n.startswith((".report.html.tmp-", ".flags.json.tmp-", ".measures.json.tmp-"))]


def test_report_runs_last_and_survives_a_broken_section(shot):
    results = run_pipeline(RunConfig(session=shot), host(("extra", Extra())))
    names = [r.name for r in results]
    assert names[-1] == "report" and "zzz_late" in names
    page = (shot / "out" / "report" / "report.html").read_text()
    assert "this section failed: RuntimeError: section bug" in page
    assert '<section id="timeline">' in page  # the other sections are still there
    # unchanged inputs: the report is up to date; a changed upstream stage rebuilds it
    again = {r.name: r.skipped for r in run_pipeline(RunConfig(session=shot), host(("extra", Extra())))}
    assert again["report"] is True
    again = {r.name: r.skipped for r in run_pipeline(
        RunConfig(session=shot, options=MappingProxyType({"zzz_late.x": "2"})), host(("extra", Extra())))}
    assert again["zzz_late"] is False and again["report"] is False


def _write_fake_composites(root: Path, hard_frame: int, pop_frame: int) -> None:
    """What the composite stage writes (out/plates/hero/F.png 16-bit, out/plates/patches/F_mask.png + F.json): a
    face patch 12 levels brighter than the plate, feathered, except one hard-edged frame and one that pops."""
    s = Session.open(root)
    hero = s.rig.hero.name
    recs = {r.index: r for r in s.frames(hero)}
    w, h = s.rig.hero.resolution
    yy, xx = np.mgrid[0:h, 0:w]
    hard = (((xx - w / 2) / 90) ** 2 + ((yy - h / 2) / 120) ** 2 < 1).astype(np.float32)
    soft = cv2.GaussianBlur(hard, (0, 0), 6.0)
    plates = root / "out" / "plates" / "hero"
    patches = root / "out" / "plates" / "patches"
    plates.mkdir(parents=True)
    patches.mkdir(parents=True)
    for fs in s.read_sync():
        idx = fs.indices.get(hero)
        if idx is None:
            continue
        plate = s.read_image(hero, recs[idx]).astype(np.float32)
        a = hard if fs.frame == hard_frame else soft
        lift = 30.0 if fs.frame == pop_frame else 12.0
        comp = np.clip(plate + lift * a[..., None], 0, 255)
        cv2.imwrite(str(plates / f"{fs.frame:06d}.png"),
                    cv2.cvtColor(np.round(comp * 257).astype(np.uint16), cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(patches / f"{fs.frame:06d}_mask.png"), np.round(a * 65535).astype(np.uint16))
        (patches / f"{fs.frame:06d}.json").write_text(json.dumps({"offset_px": [0, 0], "plate_size": [w, h]}))


def test_flags_fire_on_planted_seam_and_pop(shot):
    run_pipeline(RunConfig(session=shot, only_stage="sync"), host())
    frames = [fs.frame for fs in Session.open(shot).read_sync() if fs.indices.get("hero") is not None]
    hard_f, pop_f = frames[2], frames[6]
    _write_fake_composites(shot, hard_f, pop_f)
    run_pipeline(RunConfig(session=shot), host())
    flags = json.loads((shot / "out" / "report" / "flags.json").read_text())
    seams = flags["checks"]["seams"]
    assert seams["flagged"] == [hard_f], seams["score"]
    flick = flags["checks"]["flicker"]
    assert pop_f in flick["flagged"] and pop_f + 1 in flick["flagged"]  # the pop and the return
    quiet = [f for f in frames if f not in (hard_f, hard_f + 1, pop_f, pop_f + 1)]
    assert not set(quiet) & set(flick["flagged"]), flick
    page = (shot / "out" / "report" / "report.html").read_text()
    assert_self_contained(page)
    assert "frame(s) flagged for an artist" in page and page.count("data:image/jpeg;base64,") >= 6


def test_report_command(shot, capsys, tmp_path):
    run_pipeline(RunConfig(session=shot, only_stage="sync"), host())
    args = argparse.Namespace(session=shot, copy_to=tmp_path / "qc" / "r.html", option=["report.seams=6"])
    assert report_cmd.run(args, host()) == 0
    assert (tmp_path / "qc" / "r.html").read_text() == (shot / "out" / "report" / "report.html").read_text()
    assert str(shot / "out" / "report" / "report.html") in capsys.readouterr().out


def _chromium() -> str | None:
    import shutil

    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_report_renders_in_headless_chromium(shot, tmp_path):
    """Once, in a real browser: the page loads offline and draws its header, charts and thumbnails."""
    import subprocess

    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (`apt-get install -y chromium`; .ci/run installs it)")
    run_pipeline(RunConfig(session=shot, only_stage="sync"), host())
    frames = [fs.frame for fs in Session.open(shot).read_sync() if fs.indices.get("hero") is not None]
    _write_fake_composites(shot, frames[2], frames[6])
    run_pipeline(RunConfig(session=shot), host())
    page = shot / "out" / "report" / "report.html"
    png = tmp_path / "report.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={png}", "--window-size=1280,2000", "--hide-scrollbars", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.exists(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    img = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    assert img.shape[:2] == (2000, 1280)
    header = img[10:40, 200:1000].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(header, [0x1D, 0x27, 0x33], atol=12)  # the dark header band was drawn
    body = img[120:2000]
    assert body.std() > 20  # text, charts and photos, not a blank page (measured ~60)
    # the embedded JPEG thumbnails show the synthetic checkerboard plates: many mid-grey pixels off white
    assert len(np.unique(body.reshape(-1, 3)[::7], axis=0)) > 500
    if os.environ.get("REPORT_SCREENSHOT"):
        import shutil

        shutil.copyfile(png, os.environ["REPORT_SCREENSHOT"])
