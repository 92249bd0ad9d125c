"""The report's readers (its outputs by reconstruct/report/data.py ``read_output``, its mask patches by
reconstruct/report/pngread.py ``read_gray``, both on reconstruct.png.decode_png) give OpenCV's samples for the PNGs
the decoder reads -- the composite's 16-bit outputs (filter Up, reconstruct.png), frames stored by cv2.imwrite
(filter Sub), rows of mixed simple filters -- and the rest (Average / Paeth rows, interlaced, damaged) is read with
OpenCV as before."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from reconstruct.artifacts.plates import read_plate
from reconstruct.png import PNG_SIGNATURE, encode_png, png_chunk
from reconstruct.report import data as D
from reconstruct.png import decode_png
from reconstruct.report.pngread import read_gray


def _image(h: int, w: int, c: int, dtype, seed: int = 0) -> np.ndarray:
    """Noise over a smooth ramp (every byte value, runs and jumps), (h, w) for c == 1."""
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    ramp = np.linspace(0, top, w)[None, :, None] * np.linspace(0.2, 1.0, h)[:, None, None]
    img = np.clip(ramp + rng.normal(0, top * 0.05, (h, w, c)), 0, top).astype(dtype)
    img[: h // 4, : w // 4] = rng.integers(0, top + 1, (h // 4, w // 4, c))  # incompressible corner
    img[-3:] = top  # saturated rows
    return img[..., 0] if c == 1 else img


def _opencv_rgb8(path: Path) -> np.ndarray:
    """What the report got from OpenCV alone for an output: ``round(v / 257)`` (convertScaleAbs), RGB, grey
    repeated, alpha dropped."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img.dtype == np.uint16:
        img = cv2.convertScaleAbs(img, alpha=1.0 / 257.0)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)


def _png(img: np.ndarray, kinds, interlace: int = 0) -> bytes:
    """A PNG of ``img`` (RGB order) whose row r uses filter ``kinds[r]`` (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth
    -- only 0-2 are computed here: 3 and 4 rows are written as None rows with the other filter byte, which is
    enough for a reader that must decline them)."""
    a = img[..., None] if img.ndim == 2 else img
    h, w, c = a.shape
    bpp = c * a.dtype.itemsize
    rows = (a.astype(">u2") if a.dtype == np.uint16 else a).reshape(h, w * c).view(np.uint8).astype(np.int16)
    raw = np.zeros((h, w * bpp + 1), np.uint8)
    for r in range(h):
        k = int(kinds[r])
        raw[r, 0] = k
        if k == 1:
            left = np.concatenate([np.zeros(bpp, np.int16), rows[r, :-bpp]])
            raw[r, 1:] = (rows[r] - left) % 256
        elif k == 2:
            raw[r, 1:] = (rows[r] - (rows[r - 1] if r else 0)) % 256
        else:
            raw[r, 1:] = rows[r]
    ihdr = struct.pack(">IIBBBBB", w, h, 8 * a.dtype.itemsize, {1: 0, 3: 2, 4: 6}[c], 0, 0, interlace)
    z = zlib.compress(raw.tobytes(), 6)
    idats = [png_chunk(b"IDAT", z[i:i + 1000]) for i in range(0, len(z), 1000)]  # several IDAT chunks
    return b"".join([PNG_SIGNATURE, png_chunk(b"IHDR", ihdr), png_chunk(b"tEXt", b"k\x00v"), *idats,
                     png_chunk(b"IEND", b"")])


CASES = [(c, dtype) for c in (1, 3, 4) for dtype in (np.uint8, np.uint16)]


@pytest.mark.parametrize("c,dtype", CASES)
@pytest.mark.parametrize("writer", ["opencv", "encode_png", "mixed"])
def test_same_samples_as_opencv(tmp_path, c, dtype, writer):
    img = _image(37, 53, c, dtype, seed=c)
    p = tmp_path / "x.png"
    if writer == "opencv":  # filter Sub on every row (OpenCV's default): how the session stores PNG frames
        bgr = img if c == 1 else cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA if c == 4 else cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(p), bgr)
    elif writer == "encode_png":  # filter Up on every row: the composite's plates and patches
        p.write_bytes(encode_png(img))
    else:  # runs of None, Sub and Up rows, an Up row right after a Sub row
        p.write_bytes(_png(img, np.random.default_rng(7).integers(0, 3, img.shape[0])))
    assert decode_png(p.read_bytes()) is not None  # the decoder's path, not OpenCV's
    got = D.read_output(p)
    assert got is not None and got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, _opencv_rgb8(p))
    gray = read_gray(p)  # the mask patches: OpenCV's IMREAD_UNCHANGED samples of a grey PNG, None for colour
    if c == 1:
        want = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert gray is not None and gray.dtype == want.dtype
        np.testing.assert_array_equal(gray, want)
    else:
        assert gray is None


def test_every_16_bit_value_converts_as_opencv(tmp_path):
    """All 65536 values: round(v / 257) as OpenCV's convertScaleAbs gives it."""
    v = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    img = np.stack([v, v[::-1], v.T], axis=2)
    p = tmp_path / "all.png"
    p.write_bytes(encode_png(img))
    np.testing.assert_array_equal(D.read_output(p), _opencv_rgb8(p))
    np.testing.assert_array_equal(D.read_output(p), np.floor(img / 257 + 0.5).astype(np.uint8))


@pytest.mark.parametrize("why", ["average", "paeth", "interlaced", "truncated", "not a png"])
def test_declines_what_it_does_not_read_and_the_report_reads_it_with_opencv(tmp_path, why):
    img = _image(20, 30, 3, np.uint16)
    kinds = np.full(20, 2)
    if why in ("average", "paeth"):
        kinds[5] = 3 if why == "average" else 4
    data = _png(img, kinds, interlace=1 if why == "interlaced" else 0)
    if why == "truncated":
        data = data[:len(data) // 2]
    elif why == "not a png":
        data = b"GIF89a" + data[6:]
    assert decode_png(data) is None
    p = tmp_path / "x.png"
    p.write_bytes(data)
    assert read_gray(p) is None
    if why in ("average", "paeth"):  # a valid PNG for OpenCV (the Average/Paeth row as written here is garbage
        # to both, but the same garbage): the report's reader falls back to OpenCV's samples
        np.testing.assert_array_equal(D.read_output(p), _opencv_rgb8(p))
    assert D.read_output(tmp_path / "missing.png") is None


def test_the_report_reads_plates_and_outputs_without_opencv(tmp_path, monkeypatch):
    """The hero plate (a session frame stored by cv2.imwrite) and the composite's output reach the report through
    reconstruct.png.decode_png, never OpenCV's imread (before: imread for both, 34 and 77 ms of a 1080p frame
    against 13 and 38)."""
    from reconstruct.engine import run_pipeline
    from reconstruct.session import Session
    from reconstruct.stage import RunConfig
    from tests.report.test_report_stage import _write_fake_composites, host
    from tests.tiny_session import make_tiny_session

    root = make_tiny_session(tmp_path / "take", frames=4)
    run_pipeline(RunConfig(session=root, only_stage="sync"), host())
    s = Session.open(root)
    sets = [fs for fs in s.read_sync() if fs.indices.get("hero") is not None]
    _write_fake_composites(root, sets[0].frame, sets[1].frame)
    d = D.ReportData.load(s)
    # the session's reader and read_plate: what the report is to give
    want = {fs.frame: (s.frame_images(fs, ["hero"])["hero"], read_plate(d.outputs[fs.frame])) for fs in sets}
    calls = []
    real = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda p, *a, **k: calls.append(Path(p).name) or real(p, *a, **k))
    for f, (b, a) in want.items():
        assert b.dtype == np.uint8 and b.ndim == 3  # the tiny session's hero frames: RGB PNGs
        np.testing.assert_array_equal(d.before(f), b)
        np.testing.assert_array_equal(d.after(f), a)
    assert calls == [], calls
