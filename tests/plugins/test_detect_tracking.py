"""The detect stage's tracking (detect.track): the face box detector and MediaPipe's first pass run only at the start
of a view's run of frames and where tracking is lost; a cut, an occlusion and the face leaving the frame re-detect."""

import cv2
import numpy as np
import pytest

from deage_plugins.detect_stage import DetectRun, DetectSettings, detect_run
from deage_plugins.landmarks import MediaPipeFaceMesh

H, W, SIDE = 720, 1280, 256


@pytest.fixture(scope="module")
def face(shared_data):
    img = cv2.imread(str(shared_data / "faces" / "astronaut" / "astronaut.png"))[..., ::-1]
    return cv2.resize(img, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def detector():
    d = MediaPipeFaceMesh()
    yield d
    d.close()


def _frame(face, x: int | None, y: int = 200, occluded: bool = False) -> np.ndarray:
    img = np.full((H, W, 3), 60, np.uint8)
    if x is not None:
        img[y:y + SIDE, x:x + SIDE] = face
        if occluded:  # a hand over the whole face
            img[y - 20:y + SIDE + 20, max(0, x - 20):x + SIDE + 20] = (150, 110, 90)
    return img


class _Session:
    def __init__(self, frames: dict) -> None:
        self.frames = frames

    def read_image(self, camera: str, file: str) -> np.ndarray:
        return self.frames[file]


class _Res:
    """The two things detect_run asks of a worker's Resources: the cached detector and the session."""

    def __init__(self, detector, frames: dict) -> None:
        self.detector, self.frames = detector, frames

    def get(self, key, make):
        return self.detector

    def session(self, root: str) -> _Session:
        return _Session(self.frames)


class _CountingBoxes:
    def __init__(self, boxes) -> None:
        self.boxes, self.calls = boxes, 0

    def find(self, *a, **kw):
        self.calls += 1
        return self.boxes.find(*a, **kw)


@pytest.mark.parametrize("mode", ["crop", "box"])
def test_tracking_follows_the_face_and_redetects_on_a_cut_an_occlusion_and_leaving_the_frame(detector, face, mode):
    # slow drift (4 frames), a cut to the other side of the image (2), a hand over the face, the face back, gone
    places = [(100, False), (104, False), (108, False), (112, False), (900, False), (903, False), (903, True),
              (903, False), (None, False)]
    frames = {f"{i:06d}.png": _frame(face, x, occluded=occ) for i, (x, occ) in enumerate(places)}
    files = tuple(frames)
    boxes = detector.boxes
    counting = _CountingBoxes(boxes)
    detector.boxes = counting
    try:
        got = detect_run(DetectRun("root", "hero", files, MediaPipeFaceMesh, (), track=mode),
                         _Res(detector, frames))
    finally:
        detector.boxes = boxes
    tracked = [None if r is None else bool(r[2]) for r in got]
    # full detection at the start, after the cut and after the occlusion; no face under the hand nor once it left
    # full detection at the start, after the cut, after the occlusion; nothing found under the hand or without a face
    assert tracked == [False, True, True, True, False, True, None, False, None]
    # the box detector ran only on the 5 frames (of 9) not tracked: the saving tracking makes
    assert counting.calls == 5
    for (x, _), r, f in zip(places, got, files):
        if r is None:
            continue
        full = detector.detect(frames[f])
        assert full is not None
        # the tracked frames' points agree with a full detection of the same frame (measured: mean |dx|, |dy|
        # 0.05-0.08 px with crop, 0.04-0.06 px with box, on this 256 px face; 0 on the re-detected frames)
        assert np.abs(r[0] - full[0]).mean() < 0.5
        assert x - 10 < r[0][:, 0].mean() < x + SIDE + 10  # on the face where it is in this frame


def test_tracking_off_detects_every_frame(detector, face):
    frames = {f"{i:06d}.png": _frame(face, 100 + 4 * i) for i in range(3)}
    got = detect_run(DetectRun("root", "hero", tuple(frames), MediaPipeFaceMesh, (), track="off"),
                     _Res(detector, frames))
    assert [r[2] for r in got] == [False, False, False]


def test_a_frame_the_camera_lacks_restarts_the_track(detector, face):
    frames = {f"{i:06d}.png": _frame(face, 100 + 4 * i) for i in range(4)}
    files = (*list(frames)[:2], None, *list(frames)[2:])
    got = detect_run(DetectRun("root", "hero", files, MediaPipeFaceMesh, (), track="crop"), _Res(detector, frames))
    assert [None if r is None else r[2] for r in got] == [False, True, None, False, True]


def test_track_settings_are_checked():
    assert DetectSettings().track == "off" and DetectSettings().track_run == 12  # opt-in (docs/fitting.md)
    with pytest.raises(ValueError, match="track_run"):
        DetectSettings(track_run=0)
