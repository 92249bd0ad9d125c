"""MediaPipe Face Mesh detector plugin: real photo, grayscale (IR), small faces, no face."""

import cv2
import numpy as np
import pytest

from deage_plugins.landmarks import MediaPipeFaceMesh, register_landmark_detectors


@pytest.fixture(scope="module")
def astronaut(shared_data):
    return cv2.imread(str(shared_data / "faces" / "astronaut" / "astronaut.png"))[..., ::-1].copy()


@pytest.fixture(scope="module")
def detector():
    d = MediaPipeFaceMesh()  # YuNet face boxes: the model shipped in reconstruct.assets
    yield d
    d.close()


def test_registered():
    assert MediaPipeFaceMesh in register_landmark_detectors()
    assert MediaPipeFaceMesh.scheme == "mediapipe478"


def test_astronaut_478_points_with_confidence(detector, astronaut):
    pts, conf = detector.detect(astronaut)
    assert pts.shape == (478, 2) and conf.shape == (478,)
    assert ((conf >= 0) & (conf <= 1)).all() and conf.mean() > 0.5
    # eye corners on the correct sides and at plausible places (the face spans x ~150-300 px of 512)
    iod = np.linalg.norm(pts[33] - pts[263])
    assert 40 < iod < 100 and pts[33, 0] < pts[263, 0]
    assert 150 < pts[1, 0] < 300 and 80 < pts[1, 1] < 200


def test_grayscale_ir_frame_matches_rgb(detector, astronaut):
    pts, _ = detector.detect(astronaut)
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    g, _ = detector.detect(gray)
    assert np.abs(g - pts).mean() < 2.0  # measured 0.26 px


def test_small_face_found_through_the_face_box(detector, astronaut):
    """A face with ~3% inter-ocular distance of the image side: MediaPipe alone misses it, the crop finds it."""
    big = np.full((2000, 2600, 3), 40, np.uint8)
    big[800:1056, 1200:1456] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    res = detector.detect(big)
    assert res is not None
    pts, _ = res
    ref, _ = detector.detect(astronaut)
    assert np.abs((pts - [1200, 800]) * 2 - ref).mean() < 6.0  # same points, within a few px at full scale


def test_without_box_detector_small_face_is_missed(astronaut):
    d = MediaPipeFaceMesh(yunet="none", haar="none")
    big = np.full((2000, 2600, 3), 40, np.uint8)
    big[800:1056, 1200:1456] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    assert d.detect(big) is None  # the documented limit the face box works around
    d.close()


def test_no_face_returns_none(detector):
    rng = np.random.default_rng(0)
    assert detector.detect(rng.integers(0, 255, (480, 640), np.uint8)) is None


def test_missing_yunet_file_is_a_clear_error(tmp_path):
    from reconstruct.errors import ConfigError

    with pytest.raises(ConfigError, match="YuNet"):
        MediaPipeFaceMesh(yunet=tmp_path / "nope.onnx")


_BUILD = """
import sys
from deage_plugins.landmarks import MediaPipeFaceMesh
d = MediaPipeFaceMesh()
assert d.detect(__import__("numpy").zeros((64, 64), "uint8")) is None
print("loaded", *[n for n in ("matplotlib", "mediapipe.tasks.python") if n in sys.modules and
                  type(sys.modules[n]).__name__ != "_LazyModule"])
others = [f"mediapipe.python.solutions.{m}" for m in ("face_detection", "hands", "holistic", "objectron", "pose",
                                                       "selfie_segmentation")]
print("solutions", *[n.rsplit(".", 1)[1] for n in others if n in sys.modules and
                     type(sys.modules[n]).__name__ != "_LazyModule"])
from mediapipe.python.solutions import drawing_utils  # still there for whoever uses it
assert callable(drawing_utils.draw_landmarks)
from mediapipe.python.solutions import pose
assert pose.POSE_CONNECTIONS
"""


def test_a_detect_worker_does_not_load_mediapipes_drawing_and_tasks_modules():
    """Building the detector in a fresh process (a detect worker): MediaPipe's drawing modules (matplotlib) and its
    tasks API are not loaded (measured: build 0.50 -> 0.18 s, same process, idle moment). Fails on dce00ec."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", _BUILD], cwd=root, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert [x for x in r.stdout.splitlines() if x.startswith("loaded")] == ["loaded"], r.stdout


def test_a_detect_worker_does_not_run_mediapipes_other_solutions():
    """MediaPipe's package imports every solution (hands, pose, holistic, objectron, ...); the face mesh uses none of
    them: left lazy (measured: the detector's build 0.090 -> 0.066 CPU-s, alternated runs). Fails on e919757."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", _BUILD], cwd=root, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert [x for x in r.stdout.splitlines() if x.startswith("solutions")] == ["solutions"], r.stdout


@pytest.fixture(scope="module")
def ir_frame(astronaut):
    """A grey 1280x1024 IR-sized frame with a ~270 px face: YuNet works on a half-size copy."""
    frame = np.full((1024, 1280), 60, np.uint8)
    frame[300:700, 500:900] = cv2.resize(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), (400, 400))
    return frame


@pytest.mark.parametrize("box", ["yunet", "haar"])
def test_grey_frame_gives_exactly_the_landmarks_of_the_frame_replicated_to_rgb(ir_frame, detector, box):
    """IR frames stay one channel until MediaPipe's crop; resizing and warping work per channel, so the points and
    confidences are those of the frame replicated to three channels, bit for bit."""
    d = detector if box == "yunet" else MediaPipeFaceMesh(yunet="none")
    grey, rgb = d.detect_scored(ir_frame), d.detect_scored(cv2.cvtColor(ir_frame, cv2.COLOR_GRAY2RGB))
    assert grey is not None and rgb is not None
    np.testing.assert_array_equal(grey[0], rgb[0])
    np.testing.assert_array_equal(grey[1], rgb[1])
    assert grey[2] == rgb[2]
    if d is not detector:
        d.close()


def test_grey_frame_is_not_expanded_to_three_channels_at_full_size(ir_frame, detector, monkeypatch):
    """Only the small copy YuNet gets and MediaPipe's 384 px crops get three channels; the face box resize and the
    crops' warps run on the one grey channel (each 3x the work on the replicated frame before). Fails on 2d05bb6."""
    seen = []
    for name in ("cvtColor", "warpAffine", "resize"):
        def wrap(img, *a, _f=getattr(cv2, name), _n=name, **kw):
            seen.append((_n, np.shape(img)))
            return _f(img, *a, **kw)
        monkeypatch.setattr(cv2, name, wrap)
    assert detector.detect(ir_frame) is not None
    full = [(n, s) for n, s in seen if s[:2] == ir_frame.shape and len(s) == 3]
    assert full == [] and ("warpAffine", ir_frame.shape) in seen and ("resize", ir_frame.shape) in seen
