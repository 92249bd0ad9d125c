"""The report's pass takes the hero plates' landmarks from the detect stage (out/detect/landmarks.npz) when they are
exactly what its own detector finds -- checked on the first frame -- instead of running MediaPipe on every plate
again (on the hero-2ir bench take the stored points equal the report's own detection on all 24 frames, 0.0 px)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from reconstruct.artifacts.detections import Detections
from reconstruct.report.data import ReportData
from reconstruct.report.scan import FrameScanner


def _pts(image, offset=0.0):
    """Landmarks that depend on the image (spread out: an inter-ocular distance to measure in)."""
    return np.arange(478 * 2, dtype=np.float64).reshape(478, 2) + float(image.mean()) + offset


class CountingDetector:
    name, scheme = "mediapipe", "mediapipe478"

    def __init__(self, offset: float = 0.0) -> None:
        self.calls, self.offset = 0, offset

    def detect(self, image):
        self.calls += 1
        return _pts(image, self.offset).astype(np.float32), np.ones(478, np.float32)


def _images(n):
    return [np.full((8, 8, 3), 10 * i, np.uint8) for i in range(n)]


def test_stored_plate_landmarks_are_used_once_the_first_frame_matches():
    imgs = _images(5)
    stored = {f: _pts(im) for f, im in enumerate(imgs)}
    det = CountingDetector()
    sc = FrameScanner(SimpleNamespace(detected_plate=lambda d: stored), det, None)
    got = [sc.plate_landmarks.get(f, im) for f, im in enumerate(imgs)]
    assert det.calls == 1  # the first frame's check; before: 5 (every plate detected again)
    for f in range(5):
        np.testing.assert_array_equal(got[f], stored[f])


def test_stored_landmarks_of_other_options_are_not_used():
    imgs = _images(4)
    stored = {f: _pts(im) for f, im in enumerate(imgs)}
    det = CountingDetector(offset=0.5)  # the detect stage ran with other options: its points differ
    sc = FrameScanner(SimpleNamespace(detected_plate=lambda d: stored), det, None)
    got = [sc.plate_landmarks.get(f, im) for f, im in enumerate(imgs)]
    assert det.calls == 4 and sc.plate_landmarks.same is False
    assert all(np.array_equal(g, _pts(im, 0.5)) for g, im in zip(got, imgs))


def test_a_frame_without_a_stored_face_is_detected():
    imgs = _images(3)
    stored = {0: _pts(imgs[0]), 2: _pts(imgs[2])}
    det = CountingDetector()
    sc = FrameScanner(SimpleNamespace(detected_plate=lambda d: stored), det, None)
    for f, im in enumerate(imgs):
        sc.plate_landmarks.get(f, im)
    assert det.calls == 2  # frame 0 (the check) and frame 1 (nothing stored); frame 2 from the stage


def test_report_data_reads_the_detect_stage_hero_column_of_the_same_detector(tmp_path):
    pts = np.random.default_rng(0).random((2, 2, 478, 2)).astype(np.float32)
    found = np.array([[True, True], [False, True]])
    (tmp_path / "detect").mkdir()
    Detections(np.array([5, 6]), ("witness", "hero"), pts, np.ones((2, 2, 478), np.float32), found,
               "mediapipe478", "mediapipe").save(tmp_path / "detect" / "landmarks.npz")
    session = SimpleNamespace(stage_dir=lambda name: tmp_path / name,
                              rig=SimpleNamespace(hero=SimpleNamespace(name="hero")))
    d = ReportData(session)
    got = d.detected_plate(CountingDetector())
    assert set(got) == {5, 6}
    np.testing.assert_array_equal(got[6], pts[1, 1].astype(np.float64))
    other = CountingDetector()
    other.name = "dlib"
    assert d.detected_plate(other) == {} and d.detected_plate(None) == {}


def test_another_methods_measures_take_the_stored_plate_landmarks(tmp_path, monkeypatch):
    """The measures of the session's other methods (read after the pass) detect only on their results."""
    import cv2

    from reconstruct.report import measures as M

    imgs = _images(4)
    plates = {}
    for f, im in enumerate(imgs):
        plates[f] = tmp_path / f"{f:06d}.png"
        cv2.imwrite(str(plates[f]), im)
    stored = {f: _pts(im) for f, im in enumerate(imgs)}
    det = CountingDetector()
    data = SimpleNamespace(methods={"other": plates}, outputs={}, method="mine", hero_index=lambda f: 0,
                           before=lambda f: imgs[f], intent=lambda m: ("", {}), detected_plate=lambda d: stored)
    monkeypatch.setattr("reconstruct.report.data._detector", lambda comps: det)
    masks = SimpleNamespace(for_frame=lambda f, b: None)
    res = M.measure_method(data, "other", masks, None)
    assert det.calls == 4 + 1  # every result, and the first plate (the check); before: 8, every plate again
    assert np.isfinite(res.expression_iod_pct).all()
