"""A calibration with NaN (computed or imported) or a non-rotation R is refused where it is read, naming the file
and the camera (exit 7); before, it reached the fit as ``LinAlgError: SVD did not converge`` (exit 5)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reconstruct.calibration import rig_solve
from reconstruct.calibration.result import RigCalibration
from reconstruct.calibration.rig_solve import CalibrationOptions, calibrate_rig
from reconstruct.calibration.synthetic import example_rig_cameras, ideal_detections, make_board_poses
from reconstruct.camera import CameraModel
from reconstruct.cli import main
from reconstruct.errors import CalibrationError, ConfigError
from reconstruct.session import Session
from tests.tiny_session import make_tiny_session

from .conftest import SMALL_BOARD


def _calibrated(root):
    """A tiny session (no calib/) with an imported calibration.json of its rig's cameras."""
    make_tiny_session(root, frames=2)
    s = Session.open(root)
    cams = {c.name: CameraModel(name=c.name, K=np.array([[500.0, 0, 160], [0, 500, 120], [0, 0, 1]]),
                                image_size=c.resolution, t=[0.1 * i, 0, 0]) for i, c in enumerate(s.rig.cameras)}
    s.write_calibration(RigCalibration(cameras=cams).to_dict())
    return s


def _edit(s: Session, camera: str, key: str, value) -> None:
    d = json.loads(s.calibration_path.read_text())
    d["cameras"][camera][key] = value
    s.calibration_path.write_text(json.dumps(d))  # json writes NaN as NaN, as a damaged or hand-edited file has it


@pytest.mark.parametrize("key,value,what", [
    ("K", [[float("nan"), 0, 160], [0, 500, 120], [0, 0, 1]], "K has non-finite values"),
    ("dist", [0.1, float("inf"), 0, 0, 0], "dist has non-finite values"),
    ("t", [float("nan"), 0, 0], "t has non-finite values"),
    ("R", [[1, 0, 0], [0, 1, 0], [0, 0, -1]], "R is not a rotation matrix"),  # a reflection
    ("R", [[1.1, 0, 0], [0, 1, 0], [0, 0, 1]], "R is not a rotation matrix"),  # scaled
])
def test_bad_camera_is_named_on_read(tmp_path, key, value, what):
    s = _calibrated(tmp_path / "s")
    cam = s.rig.camera_names[1]
    _edit(s, cam, key, value)
    with pytest.raises(CalibrationError) as e:
        Session.open(s.root).cameras()  # what the fit reads
    msg = str(e.value)
    assert str(s.calibration_path) in msg and f"camera {cam!r}" in msg and what in msg
    assert "reconstruct calibrate" in e.value.hint


def test_run_refuses_a_nan_calibration_with_exit_7(tmp_path, capsys):
    """The calibrate stage keeps an imported calibration.json (no calib/): it used to keep (and copy) the NaN."""
    s = _calibrated(tmp_path / "s")
    _edit(s, "hero", "K", [[float("nan"), 0, 160], [0, 500, 120], [0, 0, 1]])
    assert main(["run", str(s.root), "--only", "calibrate"]) == 7
    assert not (s.stage_dir("calibrate") / "calibration.json").exists()


def test_camera_model_rejects_non_finite_and_non_rotations():
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    CameraModel(name="ok", K=K, R=np.round(np.eye(3) + 1e-5, 4))  # 4-decimal rotations pass (|R^T R - I| 1e-4)
    with pytest.raises(ConfigError, match="camera 'c': t has non-finite"):
        CameraModel(name="c", K=K, t=[0, np.nan, 0])
    with pytest.raises(ConfigError, match="focal lengths"):
        CameraModel(name="c", K=np.diag([-500.0, 500, 1]))
    with pytest.raises(ConfigError, match="R is not a rotation"):
        CameraModel(name="c", K=K, R=np.diag([1.0, 1, -1]))


def test_imported_toml_with_nan_is_a_calibration_error(tmp_path):
    toml = tmp_path / "cams.toml"
    toml.write_text("[cam_0]\nname = \"hero\"\nsize = [640, 480]\nmatrix = [[nan, 0, 320], [0, 500, 240], [0, 0, 1]]\n"
                    "distortions = [0, 0, 0, 0, 0]\nrotation = [0, 0, 0]\ntranslation = [0, 0, 0]\n")
    from reconstruct.calibration.toml_io import read_camera_toml

    with pytest.raises(CalibrationError, match=r"cams.toml \[hero\]: camera 'hero': K has non-finite"):
        read_camera_toml(toml)
    toml.write_text(toml.read_text().replace("nan", "500").replace("rotation = [0, 0, 0]", "rotation = [nan, 0, 0]"))
    with pytest.raises(CalibrationError, match="rotation has non-finite"):
        read_camera_toml(toml)


def _calibrate_with_left_k(monkeypatch, factor):
    """Calibrate a synthetic rig with every bundle adjustment's K of camera 'left' multiplied by ``factor``."""
    cams = example_rig_cameras((640, 480))
    dets = ideal_detections(SMALL_BOARD, cams, make_board_poses(SMALL_BOARD, cams, 12, seed=1), 0.2)
    real = rig_solve.bundle_adjust

    def mangled_ba(*a, **kw):
        ba = real(*a, **kw)
        K, dist, T = ba.cameras["left"]
        ba.cameras["left"] = (K * factor, dist, T)
        return ba

    monkeypatch.setattr(rig_solve, "bundle_adjust", mangled_ba)
    return calibrate_rig(dets, SMALL_BOARD, CalibrationOptions(reference="hero"))


def test_a_solve_that_diverges_to_nan_is_never_returned(monkeypatch):
    """The guard is in the solver, so neither `reconstruct calibrate` nor the calibrate stage can write it."""
    with pytest.raises(CalibrationError, match="camera 'left' diverged to non-finite parameters"):
        _calibrate_with_left_k(monkeypatch, np.nan)


def test_a_solve_that_diverges_to_a_negative_focal_is_a_calibration_error(monkeypatch):
    """A bundle adjustment that ends at a negative focal length (seen with one OpenCV thread on the test-small
    session of test_divergence.py) goes through the divergence guard and ends in a CalibrationError naming the
    camera; before, building the camera raised a ConfigError ("focal lengths must be positive") past the guard."""
    flip = np.array([[-1.0, 1, 1], [1, -1, 1], [1, 1, 1]])
    with pytest.raises(CalibrationError, match=r"camera .left. diverged to focal lengths .* \(not positive\)") as e:
        _calibrate_with_left_k(monkeypatch, flip)
    assert "no calibration was written" in str(e.value) and "capture" in e.value.hint
