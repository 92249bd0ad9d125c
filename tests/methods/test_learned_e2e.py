"""End to end through the CLI on a tiny synthetic session: `reconstruct train fran|deepfake` then
`reconstruct run --method fran|deepfake` runs age, render, composite and report and writes plates that differ from
the plate inside the face and are bit-exact outside it. Tiny networks and few steps: this checks the plumbing
(training writes a checkpoint that the run uses), not the quality (see test_fran.py / test_deepfake.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli_run import reconstruct_cli

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, cwd):
    return reconstruct_cli(*args, cwd=cwd, timeout=900)


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("learned")
    take = tmp / "take"
    _cli("synth", ROOT / "rigs" / "test-small.toml", take, "--frames", "3", "--model", "demo", cwd=tmp)
    _cli("consent", "add", take, "--performer", "Synth", "--reference", "synthetic stills", "--granted-by", "Synth",
         "--date", "2026-11-25", "--scope", "fran,deepfake", cwd=tmp)
    _cli("run", take, cwd=tmp)  # sync, calibrate, detect, fit, report
    from reconstruct.synth.young import render_young_refs

    render_young_refs(take, tmp / "young", stills=3, size=256)
    return take


def _check_plates(take: Path) -> None:
    import cv2

    from reconstruct.session import Session

    out = take / "out"
    for stage in ("age", "render", "composite", "report"):
        assert (out / stage / "_stage.json").exists(), f"stage {stage} did not complete"
    s = Session.open(take)
    recs = {r.index: r for r in s.frames("hero")}
    composite = json.loads((out / "composite" / "composite.json").read_text())
    frames, method = composite["frames"], composite["method"]
    edited = 0
    for fs in s.read_sync():
        plate = s.read_image("hero", recs[fs.indices["hero"]]).astype(np.int32)
        png = cv2.imread(str(out / "plates" / method / "hero" / f"{fs.frame:06d}.png"), cv2.IMREAD_UNCHANGED)
        png = png[..., ::-1].astype(np.int32)
        changed = png != plate * 257
        edited += bool(changed.any())
        if frames[str(fs.frame)]["edited"]:
            # changes only inside the face: the image border stays bit-exact
            assert not changed[:5].any() and not changed[-5:].any()
    assert edited >= 2


def test_fran_train_then_run(take):
    _cli("train", "fran", take, "--steps", "6", "--size", "64", "--crop", "64", "--width", "8", "--depth", "3",
         "--persons", "3", "--holdout", "1", "--threads", "1", cwd=take.parent)
    assert list((take / "out" / "methods" / "fran").glob("*.pt"))
    _cli("run", take, "--method", "fran", "--option", "fran.window=64", "--option", "fran.stride=32", cwd=take.parent)
    _check_plates(take)


def test_deepfake_train_then_run(take):
    _cli("train", "deepfake", take, "--young", take.parent / "young", "--steps", "6", "--size", "32", "--width", "8",
         "--latent", "16", "--holdout", "1", "--threads", "1", cwd=take.parent)
    assert list((take / "out" / "methods" / "deepfake").glob("*.pt"))
    _cli("run", take, "--method", "deepfake", cwd=take.parent)
    _check_plates(take)
