"""The landmark flags end to end on a real face (../shared/data/faces/astronaut) with the MediaPipe detector:
a composite whose mouth does not follow the plate and one whose eyes look elsewhere must be flagged, a composite
that only brightens the face must not."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import deage_plugins.report_stage
import deage_plugins.sync_stage
from reconstruct.engine import run_pipeline
from reconstruct.stage import RunConfig
from reconstruct.plugins import make_plugin_manager
from reconstruct.session import Session
from tests.tiny_session import make_tiny_session

pytestmark = pytest.mark.realdata
MOUTH_FRAME, EYES_FRAME = 3, 6


def _warp(img, center, radius, disp):
    """Smooth local displacement (a Gaussian bump of radius ``radius`` px moving content by ``disp`` px)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wgt = np.exp(-2.0 * ((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / radius ** 2).astype(np.float32)
    return cv2.remap(img, xx - disp[0] * wgt, yy - disp[1] * wgt, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def test_landmark_flags_on_a_real_face(shared_data, tmp_path):
    landmarks = pytest.importorskip("deage_plugins.landmarks", reason="landmark detector plugin not in this checkout")
    face = cv2.cvtColor(cv2.imread(str(shared_data / "faces" / "astronaut" / "astronaut.png")), cv2.COLOR_BGR2RGB)
    big = cv2.resize(face, (1024, 1024), interpolation=cv2.INTER_CUBIC)  # IOD ~86 px in the 640x480 plate
    det = landmarks.MediaPipeFaceMesh()
    root = make_tiny_session(tmp_path / "shot", frames=8)
    s = Session.open(root)
    recs = s.frames("hero")
    plates = {}
    shift = {}
    for i, r in enumerate(recs):  # the head drifts 3 px right and 2 px down per frame
        x0, y0 = 300 - 3 * i, 120 - 2 * i
        plates[r.index] = np.ascontiguousarray(big[y0:y0 + 480, x0:x0 + 640])
        shift[r.index] = np.array([3.0 * i, 2.0 * i])
        s.write_image("hero", r.file, plates[r.index])
    p0 = det.detect(plates[recs[0].index])[0]  # landmarks of frame 0; the others are shifted copies
    iod = float(np.linalg.norm(p0[468] - p0[473]))
    host = make_plugin_manager(load_entry_points=False, extra_plugins=[
        ("sync", deage_plugins.sync_stage), ("report", deage_plugins.report_stage), ("landmarks", landmarks)])
    run_pipeline(RunConfig(session=root, only_stage="sync"), host)
    out = root / "out" / "plates" / "hero"
    out.mkdir(parents=True)
    for fs in s.read_sync():
        plate = plates[fs.indices["hero"]]
        p = p0 + shift[fs.indices["hero"]]
        comp = plate.astype(np.float32)
        if fs.frame == MOUTH_FRAME:  # lower lip pulled down 0.3 IOD: the output's mouth no longer matches
            comp = _warp(comp, (p[14] + p[17]) / 2, 0.4 * iod, (0, 0.3 * iod))
        if fs.frame == EYES_FRAME:  # both irises moved 0.15 IOD sideways: the output looks elsewhere
            for k in (468, 473):
                comp = _warp(comp, p[k], 0.2 * iod, (0.15 * iod, 0))
        comp = np.clip(comp + 6.0, 0, 255)  # every frame: a slight grade (must not be flagged)
        cv2.imwrite(str(out / f"{fs.frame:06d}.png"),
                    cv2.cvtColor(np.round(comp * 257).astype(np.uint16), cv2.COLOR_RGB2BGR))
    run_pipeline(RunConfig(session=root), host)
    checks = json.loads((root / "out" / "report" / "flags.json").read_text())["checks"]
    stiff, eyes = checks["stiff_expression"], checks["unnatural_eyes"]
    # thresholds 0.04 / 0.03 IOD; measured: stiff 0.059 on the mouth frame, eyes 0.0385 on the eye frame; every
    # other frame at most 0.016 (stiff) and 0.0082 (eyes)
    assert stiff["flagged"] == [MOUTH_FRAME], stiff["score"]
    assert eyes["flagged"] == [EYES_FRAME], eyes["score"]
