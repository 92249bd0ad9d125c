"""The session's other methods are measured in the report's one pass (reconstruct/report/scan.py): each frame's
plate is decoded once and its face masks made once for every method's result, instead of every other method
reading and masking every plate again after the pass (obama 60-99 with three methods: two more decodes and face
masks a frame, serial in the driver). The numbers are those of measuring each method on its own."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import cv2
import numpy as np

from reconstruct.report import measures as M
from reconstruct.report.scan import FrameScanner


def _frames(tmp_path, n=9, h=40, w=50, seed=5):
    rng = np.random.default_rng(seed)
    plates = {f: rng.integers(0, 255, (h, w, 3)).astype(np.uint8) for f in range(n)}
    own = {f: np.clip(p + rng.integers(-6, 6, p.shape), 0, 255).astype(np.uint8) for f, p in plates.items()}
    other = {}
    for f, p in plates.items():  # the other method's plates on disk, 16-bit as the composite writes them
        img = np.clip(p + rng.integers(-12, 12, p.shape), 0, 255).astype(np.uint16) * 257
        other[f] = tmp_path / f"{f:06d}.png"
        cv2.imwrite(str(other[f]), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    mask = np.zeros((h, w), np.float32)
    mask[8:30, 10:40] = 1.0
    data = SimpleNamespace(before=lambda f: plates[f].copy(), after=lambda f: own[f], mask=lambda f, s: mask,
                           methods={"mine": {}, "other": other}, intent=lambda m: ("", {}), detected_plate=lambda d: {})
    return data, plates, other


def _masks(h=40, w=50, seed=3):
    """A FaceMasks whose face masks are synthetic, counting the frames it makes them for."""
    rng = np.random.default_rng(seed)
    masks = M.FaceMasks.__new__(M.FaceMasks)
    masks.ok, masks._rois, masks._last, made = True, {}, None, []
    faces = {f: rng.random((h, w)) > 0.3 for f in range(100)}

    def make(f, plate):
        made.append(f)
        return (slice(0, h), slice(0, w)), faces[f], np.ones((h, w), np.float32), {}, 20.0

    masks._for_frame = make
    return masks, made


def _scan(data, masks, frames, theirs, start=0, stop=None, pending=False):
    """Step a pass over ``frames[start:stop]`` whose own method is "mine" and whose other is "other" (measured by
    ``theirs``), as :func:`reconstruct.report.scan.scan_chunk` does."""
    mine = M.MethodMeasurer(data, "mine", masks, None, frames, pending=pending)
    scanner = FrameScanner(data, None, None, mine, pending=pending, others={"other": theirs})
    for i in range(start, len(frames) if stop is None else stop):
        scanner.step(i, frames[i])


def test_other_methods_measured_in_the_pass_equal_measuring_them_alone(tmp_path):
    from reconstruct.report.data import read_output

    data, plates, other = _frames(tmp_path)
    frames = sorted(plates)
    alone_masks, _ = _masks()
    alone = M.MethodMeasurer(data, "other", alone_masks, None, frames)
    for f in frames:  # as measure_method measures it after the pass
        alone.add(f, data.before(f), read_output(other[f]))
    want = alone.result()

    masks, made = _masks()
    theirs = M.MethodMeasurer(data, "other", masks, None, frames)
    _scan(data, masks, frames, theirs)
    got = theirs.result()
    assert made == frames  # one face mask a frame for both methods (before: one per method and frame)
    assert theirs.failed is None and not theirs.missing()
    assert got.flicker_ratio == want.flicker_ratio and np.isfinite(got.flicker_ratio)
    for k in ("expression_iod_pct", "detail_ratio", "dark_pct", "wrinkle_ratio"):
        np.testing.assert_array_equal(getattr(got, k), getattr(want, k))


def test_chunks_of_the_pass_merge_to_the_same_numbers(tmp_path):
    """Work items (pending chunks, parts pickled as from a worker) give the single pass's numbers for the other
    method too: its first frame of a chunk is paired with the last of the chunk before."""
    data, plates, _ = _frames(tmp_path)
    frames = sorted(plates)
    masks, _ = _masks()
    single = M.MethodMeasurer(data, "other", masks, None, frames)
    _scan(data, masks, frames, single)
    masks, _ = _masks()
    driver = M.MethodMeasurer(data, "other", masks, None, frames)
    for a, b in ((0, 4), (4, 7), (7, 9)):
        part = M.MethodMeasurer(data, "other", masks, None, frames, pending=a > 0)
        _scan(data, masks, frames, part, a, b, pending=a > 0)
        driver.merge(pickle.loads(pickle.dumps(part.part())))
    assert driver._flick_a == single._flick_a and len(single._flick_a) == len(frames) - 1
    one, merged = single.result(), driver.result()
    for k in ("expression_iod_pct", "detail_ratio", "dark_pct", "wrinkle_ratio"):
        np.testing.assert_array_equal(getattr(merged, k), getattr(one, k))


def test_an_error_leaves_the_method_to_be_measured_after_the_pass(tmp_path, monkeypatch):
    from reconstruct.report import data as D

    data, plates, _ = _frames(tmp_path)
    frames = sorted(plates)
    masks, _ = _masks()
    theirs = M.MethodMeasurer(data, "other", masks, None, frames)
    real = D.read_output
    monkeypatch.setattr(D, "read_output", lambda p: (_ for _ in ()).throw(OSError("disk")) if "000004" in str(p)
                        else real(p))
    _scan(data, masks, frames, theirs)
    assert theirs.failed == "OSError: disk"
    assert theirs.missing() == frames[4:]  # not handed a frame after the error: all_measures measures it again


def test_the_plates_side_of_the_measures_is_made_once_a_frame_for_every_method(tmp_path, monkeypatch):
    """The plate's luma (and its detail and wrinkle energies) serve every method's result of the frame: 3 lumas a
    frame for 2 methods (the plate's, each result's) where each method made its own plate's (4: obama's 3 methods,
    6 -> 4, with the plate's 5 blurs of 10 a frame made once). Same numbers as measuring the method alone (above)."""
    data, plates, _ = _frames(tmp_path)
    frames = sorted(plates)
    lumas = []
    real = M._y
    monkeypatch.setattr(M, "_y", lambda img: lumas.append(img.shape) or real(img))
    masks, _ = _masks()
    theirs = M.MethodMeasurer(data, "other", masks, None, frames)
    _scan(data, masks, frames, theirs)
    assert theirs.failed is None and not theirs.missing()
    assert len(lumas) == 3 * len(frames)
