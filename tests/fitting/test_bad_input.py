"""Bad input to the session fit: frames without a face, cameras without calibration, things that are not models."""

from dataclasses import replace

import numpy as np
import pytest

from reconstruct.artifacts import Detections
from reconstruct.errors import FaceModelError, FitError
from reconstruct.fitting.pipeline import ensure_scheme, fit_detections
from reconstruct.fitting.solver import FitSettings
from reconstruct.fitting.synthetic import make_sequence, observe, three_camera_rig

FAST = FitSettings(iterations=8)


@pytest.fixture(scope="module")
def detections(ict_model):
    cams = three_camera_rig()
    seq = make_sequence(ict_model, frames=6, seed=7)
    obs, conf = observe(ict_model, seq, cams, "ibug68", noise_px=1.0, seed=8)
    obs[2] = np.nan  # frame 2: no camera found a face
    conf[2] = 0
    det = Detections(frames=np.arange(10, 16, dtype=np.int32), cameras=tuple(c.name for c in cams), points=obs.astype(np.float32),
                     confidence=conf.astype(np.float32), found=np.isfinite(obs).all(-1).any(-1), scheme="ibug68",
                     detector="test")
    return cams, det


def test_frame_without_face_is_skipped_and_named(ict_model, detections, caplog):
    cams, det = detections
    seq, info = fit_detections(ict_model, {c.name: c for c in cams}, det, FAST)
    assert info.skipped_frames == (12,)
    assert "12" in caplog.text and "skipped" in caplog.text
    assert seq.valid.tolist() == [True, True, False, True, True, True]
    assert np.isnan(seq.residual_px[2]).all() and np.isfinite(seq.residual_px[[0, 1, 3]]).all()
    assert len(seq) == 6 and seq.vertices.shape == (6, ict_model.n_vertices, 3)


def test_camera_without_calibration_is_dropped_and_named(ict_model, detections, caplog):
    cams, det = detections
    seq, info = fit_detections(ict_model, {c.name: c for c in cams[:2]}, det, FAST)
    assert "witness-right" in info.cameras_dropped and "no calibration" in info.cameras_dropped["witness-right"]
    assert "witness-right" in caplog.text
    assert seq.cameras == ("hero", "witness-left")


def test_no_calibrated_camera_is_a_clear_error(ict_model, detections):
    _, det = detections
    with pytest.raises(FitError, match="calibrate"):
        fit_detections(ict_model, {}, det, FAST)


def test_no_face_anywhere_is_a_clear_error(ict_model, detections):
    cams, det = detections
    empty = replace(det, points=np.full_like(det.points, np.nan), confidence=np.zeros_like(det.confidence))
    with pytest.raises(FitError, match="no frame has a face"):
        fit_detections(ict_model, {c.name: c for c in cams}, empty, FAST)


def test_not_a_face_model(tmp_path):
    with pytest.raises(FaceModelError, match="not a FaceModel"):
        ensure_scheme({"mean": np.zeros((3, 3))}, "ibug68")
    from reconstruct.face.model import load_face_model

    p = tmp_path / "weights.npz"
    np.savez(p, w=np.zeros(4))
    with pytest.raises(FaceModelError, match="not in this project's face-model format"):
        load_face_model(p)


def test_model_without_the_scheme(ict_model):
    from types import MappingProxyType

    bare = replace(ict_model, landmarks=MappingProxyType({}))
    with pytest.raises(FaceModelError, match="dlib5"):
        ensure_scheme(bare, "dlib5")


def test_miscalibrated_camera_is_dropped_and_named(ict_model, detections):
    from reconstruct.camera import CameraModel

    cams, det = detections
    bad = cams[2].with_pose(cams[2].R, cams[2].t + np.array([0.3, 0.0, 0.0]))  # 30 cm off: a failed calibration
    cal = {c.name: c for c in cams[:2]} | {bad.name: bad}
    seq, info = fit_detections(ict_model, cal, det, FAST)
    assert "witness-right" in info.cameras_dropped and "calibration" in info.cameras_dropped["witness-right"]
    assert seq.cameras == ("hero", "witness-left")
    assert np.nanmax(seq.residual_px) < 3.0  # the remaining cameras fit to the 1 px noise (measured ~1.4)
    assert isinstance(cams[0], CameraModel)
