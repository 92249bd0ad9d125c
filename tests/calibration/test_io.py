"""calibration.json (RigCalibration), load_calibration, anipose/caliscope TOML, and `capture board`."""

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from capture.cli import main as capture_main
from reconstruct.calibration.detect import detect_board
from reconstruct.calibration.result import RigCalibration, load_calibration
from reconstruct.calibration.synthetic import example_rig_cameras
from reconstruct.calibration.toml_io import read_camera_toml, write_camera_toml
from reconstruct.cli import main as reconstruct_main
from reconstruct.errors import CalibrationError
from reconstruct.rig import rig_to_toml
from reconstruct.session import Session

from .conftest import SMALL_BOARD, make_rig


def _same(a, b):
    return (np.allclose(a.K, b.K) and np.allclose(a.dist, b.dist) and np.allclose(a.R, b.R, atol=1e-12)
            and np.allclose(a.t, b.t) and a.image_size == b.image_size and a.model == b.model)


def test_rig_calibration_round_trip(tmp_path):
    cams = example_rig_cameras()
    cal = RigCalibration(cameras=cams, quality={"rms_px": 0.2, "warnings": ["w"]},
                         camera_quality={"hero": {"rms_px": 0.1, "warnings": ["hero w"]}}, reference="hero")
    back = RigCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert all(_same(back.cameras[n], cams[n]) for n in cams)
    assert back.quality["rms_px"] == 0.2 and back.warnings == ["w", "hero w"] and back.reference == "hero"
    s = Session.create(tmp_path / "s", make_rig(SMALL_BOARD))
    with pytest.raises(Exception, match="reconstruct calibrate"):
        load_calibration(s)
    s.write_calibration(cal.to_dict())
    assert list(load_calibration(s)) == ["hero", "left", "right"]
    part = RigCalibration(cameras={"hero": cams["hero"]})
    s.write_calibration(part.to_dict())
    with pytest.raises(CalibrationError, match="no calibration for camera\\(s\\) left, right"):
        load_calibration(s)


def test_result_module_is_light():
    code = ("import sys, reconstruct.calibration.result; "
            "print(sorted(m for m in ('cv2', 'scipy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("style", ["anipose", "caliscope"])
def test_toml_round_trip(tmp_path, style):
    cams = example_rig_cameras()
    p = write_camera_toml(cams, tmp_path / "c.toml", style=style, translation_scale=1000 if style == "anipose" else 1)
    back = read_camera_toml(p, translation_scale=0.001 if style == "anipose" else 1)
    by_size = list(back.values())
    assert len(by_size) == 3
    for orig, got in zip(cams.values(), by_size):
        assert _same(orig, got.with_pose(got.R, got.t))


def test_read_caliscope_camera_array(shared_data):
    cams = read_camera_toml(shared_data / "calib/caliscope_4cam_charuco/camera_array.toml")
    assert sorted(cams) == ["cam_0", "cam_1", "cam_2", "cam_3"]
    c = cams["cam_0"]
    assert c.image_size == (1280, 720) and abs(c.K[0, 0] - 903.55) < 0.01 and abs(c.t[2] - 1.2084) < 1e-3
    assert abs(np.linalg.det(c.R) - 1) < 1e-6


def test_calibrate_import(tmp_path):
    cams = example_rig_cameras((640, 480))
    p = write_camera_toml(cams, tmp_path / "c.toml")
    s = Session.create(tmp_path / "s", make_rig(SMALL_BOARD))
    assert reconstruct_main(["calibrate", str(s.root), "--import", str(p)]) == 0
    got = load_calibration(s)
    assert all(_same(got[n], cams[n]) for n in cams)


def test_capture_board_pdf_and_png(tmp_path):
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text(rig_to_toml(make_rig(SMALL_BOARD)))
    pdf = tmp_path / "board.pdf"
    assert capture_main(["board", str(rig_file), str(pdf), "--margin", "10", "--paper", "230x300mm"]) == 0
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf.read_bytes())
    w_pt, h_pt = float(box.group(1)), float(box.group(2))
    # page = the paper asked for (squares + 2 x 10 mm margin), in points (1/72 inch): tolerance 0.5 pt
    exp_w = (6 * 35 + 20) / 25.4 * 72
    exp_h = (8 * 35 + 20) / 25.4 * 72
    assert abs(w_pt - exp_w) < 0.5 and abs(h_pt - exp_h) < 0.5
    png = tmp_path / "board.png"
    assert capture_main(["board", str(rig_file), str(png), "--dpi", "150"]) == 0
    from PIL import Image

    im = Image.open(png)
    dpi = im.info["dpi"][0]
    # one square = 35 mm at the stored dpi: tolerance 0.1 mm
    px_per_square = round(35 / 25.4 * dpi)
    assert abs(px_per_square / dpi * 25.4 - 35) < 0.1
    det = detect_board(cv2.imread(str(png), cv2.IMREAD_GRAYSCALE), SMALL_BOARD)
    assert det is not None and det.n == 35
