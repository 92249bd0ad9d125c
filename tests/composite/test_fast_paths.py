"""comp7: the composite's per-frame steps done in fewer passes give the same values as the plain numpy ones."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.composite import copy_where


@pytest.mark.parametrize("shape,dtype", [((37, 53, 3), np.float32), ((37, 53), np.float32), ((37, 53, 4), np.uint16),
                                         ((37, 53, 6), np.float32), ((1, 1, 3), np.float64)])
def test_copy_where_is_numpys_masked_copy(shape, dtype):
    rng = np.random.default_rng(3)
    dst = rng.random(shape).astype(dtype)
    src = rng.random(shape).astype(dtype)
    mask = rng.random(shape[:2]) > 0.4
    want = dst.copy()
    np.copyto(want, src, where=mask[..., None] if dst.ndim == 3 else mask)
    copy_where(dst, src, mask)
    np.testing.assert_array_equal(dst, want)


def test_copy_where_on_a_strided_view_writes_into_the_view():
    rng = np.random.default_rng(4)
    base = rng.random((20, 40, 3)).astype(np.float32)
    dst = base[:, ::2]  # not contiguous: OpenCV cannot write into it, numpy does
    src = rng.random(dst.shape).astype(np.float32)
    mask = rng.random(dst.shape[:2]) > 0.5
    want = dst.copy()
    np.copyto(want, src, where=mask[..., None])
    copy_where(dst, src, mask)
    np.testing.assert_array_equal(base[:, ::2], want)


class _Frames:
    def __init__(self):
        self.got = []

    def add_preview(self, frame):
        self.got.append(int(frame[0, 0, 0]))


def _preview(folder, f):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{f:06d}.npy", np.full((2, 2, 3), f, np.uint8))


def test_preview_frames_are_encoded_in_order_while_the_work_runs(tmp_path):
    """The driver's preview video is encoded as the workers' frames appear (not after the last one), in frame
    order whatever order they appear in."""
    import time

    from deage_plugins.composite_stage import PreviewEncoder

    folder, sink = tmp_path / ".preview", _Frames()
    with PreviewEncoder(sink, folder, [1, 2, 3, 4]) as enc:
        _preview(folder, 2)
        _preview(folder, 1)
        deadline = time.monotonic() + 10
        while len(sink.got) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.got == [1, 2]  # encoded before the work is done (frame 3 not written yet)
        _preview(folder, 4)
        _preview(folder, 3)
        enc.finish([1, 2, 3, 4])
    assert sink.got == [1, 2, 3, 4]
    assert list(folder.iterdir()) == []  # each frame's file deleted once encoded (its page cache freed)


def test_preview_encoder_stops_on_a_failed_run_and_names_a_missing_frame(tmp_path):
    from deage_plugins.composite_stage import PreviewEncoder
    from reconstruct.errors import StageError

    folder, sink = tmp_path / ".preview", _Frames()
    enc = PreviewEncoder(sink, folder, [1, 2])
    with enc:  # the work failed: leaving the block stops the thread without waiting for frames
        pass
    assert not enc._thread.is_alive() and sink.got == []
    _preview(folder, 1)
    with pytest.raises(StageError, match="preview frame .*000002.npy of frame 2 is missing"):
        with PreviewEncoder(sink, folder, [1, 2]) as enc:
            enc.finish([1, 2])
    assert sink.got == [1]
    _preview(folder, 1)  # (the encoded frame's file was deleted)
    with PreviewEncoder(sink, folder, [1, 2, 3]) as enc:  # frames the work did not give are left out
        enc.finish([1])
    assert sink.got == [1, 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_preview_bytes_in_place_are_round_clip_times_255(dtype):
    """The preview's 8 bits worked in place on one copy: the same as ``round(clip(x, 0, 1) * 255)``, halves
    (x * 255 = k + 0.5) and values outside [0, 1] included."""
    from reconstruct.composite.outputs import _to_uint8

    v = np.concatenate([np.arange(2 ** 16) / 65535.0, [-0.5, 1.5, 0.5 / 255, 1.5 / 255, 2.5 / 255],
                        (np.arange(256) + 0.5) / 255]).astype(dtype)
    want = np.round(np.clip(v, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(_to_uint8(v), want)
    np.testing.assert_array_equal(_to_uint8(v[:65796].reshape(-1, 3)[:, ::-1]), want[:65796].reshape(-1, 3)[:, ::-1])
