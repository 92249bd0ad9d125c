"""End to end: ``reconstruct run SESSION --method digital_human --young-refs DIR`` on a synthetic session (ICT
model, test-small rig): every stage from sync to report runs, and plates (16-bit PNG + EXR), patches, preview and
the QC report are written; the plate is bit-exact outside the paste-back mask."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.cli_run import reconstruct_cli

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, cwd):
    return reconstruct_cli(*args, cwd=cwd, timeout=600)


def test_run_digital_human_end_to_end(tmp_path):
    import cv2

    take = tmp_path / "take"
    _cli("synth", ROOT / "rigs" / "test-small.toml", take, "--frames", "2", "--model", "ict", "--calib-poses", "12",
         cwd=tmp_path)
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "synth_young_refs.py"), take, tmp_path / "young",
                        "--stills", "3"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    _cli("consent", "add", take, "--performer", "Synth", "--reference", "synthetic young stills", "--granted-by",
         "Synth", "--date", "2026-11-25", "--scope", "digital_human", cwd=tmp_path)
    _cli("run", take, "--method", "digital_human", "--young-refs", tmp_path / "young", cwd=tmp_path)
    out = take / "out"
    for stage in ("sync", "calibrate", "detect", "fit", "age", "render", "composite", "report"):
        assert (out / stage / "_stage.json").exists(), f"stage {stage} did not complete"
    assert (out / "report" / "report.html").stat().st_size > 1000
    assert (out / "composite" / "preview.mp4").stat().st_size > 0
    frames = json.loads((out / "composite" / "composite.json").read_text())["frames"]
    assert frames and all(f["edited"] and f["mask_px"] > 1000 for f in frames.values())
    from reconstruct.provenance import read_exr
    from reconstruct.session import Session

    s = Session.open(take)
    recs = {r.index: r for r in s.frames("hero")}
    for fs in s.read_sync():
        stem = f"{fs.frame:06d}"
        plate = s.read_image("hero", recs[fs.indices["hero"]])
        png = cv2.cvtColor(cv2.imread(str(out / "plates" / "digital_human" / "hero" / f"{stem}.png"), cv2.IMREAD_UNCHANGED),
                           cv2.COLOR_BGR2RGB)
        assert read_exr(out / "plates" / "digital_human" / "hero" / f"{stem}.exr").shape == plate.shape
        info = json.loads((out / "composite" / "patches" / f"{stem}.json").read_text())
        a = cv2.imread(str(out / "composite" / "patches" / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        mask = np.zeros(plate.shape[:2], bool)
        x, y = info["offset_px"]
        mask[y:y + a.shape[0], x:x + a.shape[1]] = a > 0
        assert (png[~mask] == plate[~mask].astype(np.uint16) * 257).all()
        assert np.abs(png[mask] / 257.0 - plate[mask]).mean() > 1.0
