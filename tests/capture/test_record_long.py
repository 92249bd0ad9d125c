"""The must-hold recording test: hero 1280x720 RGB + two 640x480 IR at 30 fps for 20 s, default configuration,
loopback. Every produced frame is on disk (or reported), none is lost, frame counts match across cameras."""

from __future__ import annotations

import shutil

import numpy as np

from capture.recorder import Recorder
from deage_plugins.camera_backends import read_code
from reconstruct.rig import load_rig
from reconstruct.session import Session

from .conftest import HERO_IR, loopback_options, write_rig

SECONDS, FPS = 20, 30.0


def test_three_synthetic_cameras_20_seconds_nothing_lost(tmp_path):
    rig = load_rig(write_rig(tmp_path / "rig.toml", HERO_IR, fps=FPS))
    try:
        _record_and_check(rig, tmp_path)
    finally:
        shutil.rmtree(tmp_path / "take", ignore_errors=True)  # 2 GB of raw frames


def _record_and_check(rig, tmp_path):
    result = Recorder(rig, tmp_path / "take", loopback_options(seconds=SECONDS)).run()
    assert result.state == "complete"
    s = Session.open(tmp_path / "take")
    n = int(SECONDS * FPS)  # 600 ticks
    rep = s.read_capture_report()
    for cam in rig.camera_names:
        recs = s.frames(cam)
        c = rep["cameras"][cam]
        # every produced frame has exactly one row, in index order, and the report agrees with frames.csv
        assert [r.index for r in recs] == list(range(c["produced"]))
        assert c["stored"] + c["dropped"] == c["produced"] and not c["gaps"]
        # default configuration: zero frames lost, every tick answered by every camera
        assert c["dropped"] == 0 and c["produced"] == n and c["missed_ticks"] == []
        assert all(r.status == "ok" for r in recs)
        assert [r.tick for r in recs] == list(range(n))
        stored = sorted(p.name for p in s.camera_dir(cam).glob("*.npy"))
        assert stored == [r.file for r in recs]
        # stored images are complete and are the frame of their tick (tick code stamped in the pattern)
        spec = rig.camera(cam)
        for r in recs[:: 97] + [recs[-1]]:
            img = s.read_image(cam, r)
            assert img.shape == ((spec.resolution[1], spec.resolution[0], 3) if spec.sensor == "rgb"
                                 else (spec.resolution[1], spec.resolution[0]))
            assert img.dtype == np.uint8 and read_code(img) == r.tick
    counts = {cam: len(s.frames(cam)) for cam in rig.camera_names}
    assert len(set(counts.values())) == 1, counts
