"""Bad calibration input gives an error (or warning) that names the camera and says what to capture next."""

from dataclasses import replace

import numpy as np
import pytest

from .conftest import SMALL_BOARD, make_rig, write_calib
from reconstruct.calibration.detect import detect_board, diagnose_no_board
from reconstruct.calibration.rig_solve import CalibrationOptions, calibrate_rig, calibrate_session, detect_session
from reconstruct.calibration.synthetic import example_rig_cameras, ideal_detections, make_board_poses, \
    render_board_views
from reconstruct.errors import CalibrationError
from reconstruct.session import Session


@pytest.fixture(scope="module")
def views():
    cams = example_rig_cameras((480, 360))
    images, _ = render_board_views(SMALL_BOARD, cams, 3, seed=4)
    return cams, images


def test_no_board_names_camera(tmp_path, views):
    cams, images = views
    s = Session.create(tmp_path / "s", make_rig(SMALL_BOARD, (480, 360)))
    blank = {n: [np.full((360, 480), 120, np.uint8)] * 3 for n in cams}
    blank["hero"] = [np.full((360, 480, 3), 120, np.uint8)] * 3
    images = dict(blank, left=images["left"])
    write_calib(s, images)
    with pytest.raises(CalibrationError, match="camera 'hero'.*not found") as e:
        detect_session(s)
    assert "no DICT_4X4_50 markers are visible" in e.value.hint


def test_missing_calib_folder_names_cameras(tmp_path):
    s = Session.create(tmp_path / "s", make_rig(SMALL_BOARD))
    with pytest.raises(CalibrationError, match="calib/hero/frames.csv, calib/left/frames.csv, calib/right/frames.csv "
                                               "are missing") as e:
        calibrate_session(s)
    assert "`capture import" in e.value.hint  # the command that makes calib/ from photos (test_messages.py)


def test_empty_frames_csv_names_cameras(tmp_path):
    s = Session.create(tmp_path / "s", make_rig(SMALL_BOARD))
    for cam in s.rig.camera_names:
        s.write_frames(cam, [], kind="calib")
    with pytest.raises(CalibrationError, match="'hero', 'left', 'right' have no calibration images: their") as e:
        calibrate_session(s)
    assert "`capture import" in e.value.hint and "--append" in e.value.hint


def test_wrong_polarity_is_diagnosed(views):
    _, images = views
    imgs = [im for im in images["left"] if im is not None]
    wrong = replace(SMALL_BOARD, inverted=True)
    assert detect_board(imgs[0], wrong) is None
    err = diagnose_no_board(imgs, wrong, "left")
    assert "camera 'left'" in str(err) and "inverted = false" in err.hint


def test_wrong_square_count_is_diagnosed(views):
    _, images = views
    imgs = [im for im in images["left"] if im is not None]
    wrong = replace(SMALL_BOARD, squares=(3, 4))  # 6 markers, ids 0-5: the print shows ids up to 23
    err = diagnose_no_board(imgs, wrong, "left")
    assert "check squares" in err.hint


def test_too_few_views():
    cams = example_rig_cameras((640, 480))
    poses = make_board_poses(SMALL_BOARD, cams, 2, seed=1)
    dets = ideal_detections(SMALL_BOARD, cams, poses, 0.2)
    with pytest.raises(CalibrationError, match="camera 'hero'.*only 2 calibration views") as e:
        calibrate_rig(dets, SMALL_BOARD)
    assert "capture 8 more views" in e.value.hint


def test_few_views_warn_with_what_to_capture():
    cams = example_rig_cameras((640, 480))
    poses = make_board_poses(SMALL_BOARD, cams, 6, seed=1)
    dets = ideal_detections(SMALL_BOARD, cams, poses, 0.2)
    cal = calibrate_rig(dets, SMALL_BOARD, CalibrationOptions(reference="hero"))
    w = " | ".join(cal.warnings)
    assert "camera 'left': only" in w and "board views; capture" in w


def test_camera_never_seen_with_the_others():
    cams = example_rig_cameras((640, 480))
    poses = make_board_poses(SMALL_BOARD, cams, 12, seed=1)
    dets = ideal_detections(SMALL_BOARD, cams, poses, 0.2)
    dets["right"] = [replace(d, view=d.view + 100) for d in dets["right"]]  # never simultaneous
    with pytest.raises(CalibrationError, match="'right' never saw the board at the same time") as e:
        calibrate_rig(dets, SMALL_BOARD, CalibrationOptions(reference="hero"))
    assert "'right' and at least one of" in e.value.hint


def test_mismatched_image_sizes():
    cams = example_rig_cameras((640, 480))
    poses = make_board_poses(SMALL_BOARD, cams, 12, seed=1)
    dets = ideal_detections(SMALL_BOARD, cams, poses, 0.2)
    with pytest.raises(CalibrationError, match="camera 'left': calibration images are \\(640, 480\\).*rig says"):
        calibrate_rig(dets, SMALL_BOARD, image_sizes={"left": (1280, 720)})
    dets["left"][0] = replace(dets["left"][0], image_size=(320, 240))
    with pytest.raises(CalibrationError, match="camera 'left': calibration images have different sizes"):
        calibrate_rig(dets, SMALL_BOARD)
