"""``out/detect/landmarks.npz`` (reconstruct/artifacts/detections.py): stored, not deflated (zlib took 0.05 s per
96 frames to save 30 % of 1.6 MB, and every reader 7 ms to inflate it again); files written before still load."""

from __future__ import annotations

import zipfile

import numpy as np

from reconstruct.artifacts import Detections


def _det() -> Detections:
    rng = np.random.default_rng(0)
    T, C, N = 5, 3, 478
    pts = rng.uniform(0, 1000, (T, C, N, 2)).astype(np.float32)
    pts[1, 2] = np.nan
    found = np.ones((T, C), bool)
    found[1, 2] = False
    return Detections(np.arange(10, 10 + T, dtype=np.int32), ("hero", "witness-left", "witness-right"), pts,
                      rng.random((T, C, N)).astype(np.float32), found, "mediapipe478", "mediapipe",
                      detector_options={"crop_px": 384})


def _same(a: Detections, b: Detections) -> None:
    for k in ("frames", "points", "confidence", "found"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k
    assert (a.cameras, a.scheme, a.detector) == (b.cameras, b.scheme, b.detector)


def test_landmarks_are_stored_and_load_the_same(tmp_path):
    d = _det()
    p = tmp_path / "landmarks.npz"
    d.save(p)
    with zipfile.ZipFile(p) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    first = p.read_bytes()
    d.save(p)
    assert p.read_bytes() == first  # the bytes depend only on the arrays
    back = Detections.load(p)
    _same(back, d)
    assert dict(back.detector_options) == {"crop_px": 384}


def test_landmarks_written_deflated_before_still_load(tmp_path):
    d = _det()
    p = tmp_path / "old.npz"
    np.savez_compressed(p, frames=d.frames, cameras=np.array(d.cameras, dtype=str), points=d.points,
                        confidence=d.confidence, found=d.found, scheme=np.array(d.scheme),
                        detector=np.array(d.detector))
    back = Detections.load(p)
    _same(back, d)
    assert back.detector_options is None
