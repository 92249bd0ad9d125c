"""reconstruct/png.py's decoder (what the session's frame reader uses for plain PNGs): exactly OpenCV's samples for
every file it accepts, declines (None) what it does not handle, and the frame reader gives OpenCV's pixels either
way."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from reconstruct import png  # noqa: E402
from reconstruct.errors import SessionError  # noqa: E402
from tests.png_reference import opencv_decode  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ASTRONAUT = DATA / "faces" / "astronaut" / "astronaut.png"


def _image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 11 + yy * 5) % (top + 1)
    img = np.broadcast_to(base[..., None] if len(shape) == 3 else base, shape).astype(np.int64)
    img = np.clip(img + rng.integers(-40, 41, shape), 0, top).astype(dtype)
    img[: h // 3, : w // 3] = rng.integers(0, top + 1, img[: h // 3, : w // 3].shape)  # noise: wraps in filters
    return img


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filtered_png(img, filters, idat_parts=1, chunks=(), depth=None, color=None):
    """A PNG of ``img`` (RGB order) whose row r is filtered with ``filters[r % len(filters)]`` (0-4, the PNG
    spec's five), its zlib stream split over ``idat_parts`` IDAT chunks, ``chunks`` after IHDR."""
    a = img if img.ndim == 3 else img[..., None]
    h, w, c = a.shape
    nb = a.dtype.itemsize
    rows = a.astype(">u2" if nb == 2 else np.uint8).reshape(h, w * c).view(np.uint8).astype(np.int64)
    bpp = c * nb
    out = np.zeros((h, rows.shape[1] + 1), np.uint8)
    for r in range(h):
        x = rows[r]
        up = rows[r - 1] if r else np.zeros_like(x)
        left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
        ul = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
        t = filters[r % len(filters)]
        pred = [0, left, up, (left + up) // 2, _paeth(left, up, ul)][t]
        out[r, 0], out[r, 1:] = t, (x - pred) % 256
    z = zlib.compress(out.tobytes(), 6)
    cuts = np.linspace(0, len(z), idat_parts + 1).astype(int)
    ihdr = struct.pack(">IIBBBBB", w, h, depth or 8 * nb, {1: 0, 3: 2, 4: 6}[c] if color is None else color, 0, 0, 0)
    return b"".join([png.PNG_SIGNATURE, png.png_chunk(b"IHDR", ihdr), *chunks,
                     *(png.png_chunk(b"IDAT", z[i:j]) for i, j in zip(cuts[:-1], cuts[1:])),
                     png.png_chunk(b"IEND", b"")])



@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", [(23, 37), (23, 37, 3), (23, 37, 4), (1, 1, 3), (9, 1), (1, 31, 4)])
@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (0, 1, 2, 2, 1, 0, 2), (2, 2, 1)])
def test_plain_files_decode_to_opencvs_samples(shape, dtype, filters):
    data = _filtered_png(_image(shape, dtype), filters, idat_parts=3)
    ours = png.decode_png(data)
    assert ours is not None and ours.dtype == dtype and ours.shape == shape
    np.testing.assert_array_equal(ours, opencv_decode(data))
    assert ours.flags.c_contiguous and ours.dtype.isnative


@pytest.mark.parametrize("filters", [(3,), (4,), (0, 1, 2, 3, 4)])
def test_average_and_paeth_rows_are_left_to_opencv(filters):
    data = _filtered_png(_image((15, 21, 3), np.uint8), filters)
    assert png.decode_png(data) is None


def test_opencvs_and_our_encoders_files_decode_exactly():
    """The two encoders a take's PNGs come from: OpenCV's (all rows Sub) and reconstruct.png's (all rows Up)."""
    for shape, dtype in [((61, 83, 3), np.uint8), ((61, 83), np.uint8), ((61, 83, 3), np.uint16),
                         ((61, 83, 4), np.uint16), ((61, 83), np.uint16)]:
        img = _image(shape, dtype, seed=2)
        ok, ref = cv2.imencode(".png", img[..., [2, 1, 0, 3][:img.shape[2]]] if img.ndim == 3 else img)  # BGR(A)
        assert ok
        for data in (ref.tobytes(), png.encode_png(img)):
            np.testing.assert_array_equal(png.decode_png(data), img)


@pytest.mark.skipif(not ASTRONAUT.exists(), reason="../shared/data is not there")
def test_real_image():
    """A real photograph (Average and Paeth rows as its encoder chose: declined), and its pixels re-encoded by
    OpenCV (Sub), by ours (Up) and with every filter mixed but Average/Paeth: the same samples as OpenCV's."""
    data = ASTRONAUT.read_bytes()
    assert png.decode_png(data) is None
    img = opencv_decode(data)
    assert img.shape == (512, 512, 3)
    ok, ref = cv2.imencode(".png", img[..., ::-1])
    for enc in (ref.tobytes(), png.encode_png(img), _filtered_png(img, (0, 1, 2, 1, 1))):
        np.testing.assert_array_equal(png.decode_png(enc), opencv_decode(enc))


def test_inert_chunks_are_read_past_and_others_declined():
    img = _image((12, 17, 3), np.uint8)
    inert = [png.png_chunk(b"gAMA", struct.pack(">I", 45455)), png.png_chunk(b"sRGB", b"\x00"),
             png.png_chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)), png.png_chunk(b"tEXt", b"k\x00v")]
    data = _filtered_png(img, (1, 2), chunks=inert)
    np.testing.assert_array_equal(png.decode_png(data), opencv_decode(data))
    assert png.decode_png(_filtered_png(img, (1,), chunks=[png.png_chunk(b"tRNS", b"\x00\x01\x00\x02\x00\x03")]
                                        )) is None


def test_other_formats_and_damaged_files_are_declined():
    img = _image((12, 17), np.uint8)
    good = _filtered_png(img, (1,))
    assert png.decode_png(good) is not None
    interlaced = bytearray(good)
    interlaced[28] = 1  # IHDR's interlace byte (its CRC is now wrong too: declined either way)
    bad_crc = bytearray(good)
    bad_crc[-20] ^= 0xFF  # inside the IDAT
    for data in (bytes(interlaced), bytes(bad_crc), good[:-30], good[:40], b"not a png",
                 _filtered_png(_image((12, 17, 2), np.uint8), (1,), color=4),  # grey + alpha: declined
                 _filtered_png(_image((12, 17), np.uint8) // 2, (0,), depth=4, color=0)):
        assert png.decode_png(data) is None


def test_a_header_claiming_a_huge_image_is_declined_without_allocating_it():
    data = bytearray(_filtered_png(_image((12, 17, 3), np.uint16), (1,)))
    data[8:33] = png.png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1 << 20, 1 << 20, 16, 2, 0, 0, 0))  # 6.6 TB of rows
    assert png.decode_png(bytes(data)) is None


def test_too_much_or_too_little_image_data_is_declined():
    img = _image((12, 17, 3), np.uint8)
    full = _filtered_png(img, (0,))
    short = _filtered_png(img[:11], (0,))  # the IHDR of 11 rows, then patched to say 12
    longer = _filtered_png(np.concatenate([img, img[:1]]), (0,))
    for data, h in ((short, 12), (longer, 12)):
        fixed = bytearray(data)
        fixed[8:33] = png.png_chunk(b"IHDR", struct.pack(">IIBBBBB", 17, h, 8, 2, 0, 0, 0))[4:]
        assert png.decode_png(bytes(fixed)) is None
    assert png.decode_png(full) is not None


def test_session_frame_reader_uses_the_decoder_and_matches_opencv(tmp_path, repo_root, monkeypatch):
    """Session.read_image: plain PNGs through decode_png, the rest (Paeth rows) through OpenCV, the same pixels
    as before (RGB; RGBA frames lose their alpha, as with OpenCV); a damaged file says so."""
    from reconstruct.rig import load_rig
    from reconstruct.session import Session

    session = Session.create(tmp_path / "s", load_rig(repo_root / "rigs" / "hero-2ir.toml"))
    calls = []
    real = png.decode_png
    monkeypatch.setattr(png, "decode_png", lambda data: calls.append(1) or real(data))
    cam = session.rig.camera_names[0]
    folder = session.camera_dir(cam)
    folder.mkdir(parents=True, exist_ok=True)
    cases = {"sub.png": _filtered_png(_image((31, 45, 3), np.uint8), (1,)),
             "up16.png": png.encode_png(_image((31, 45, 3), np.uint16)),
             "rgba.png": _filtered_png(_image((31, 45, 4), np.uint8), (2, 1)),
             "grey.png": _filtered_png(_image((31, 45), np.uint8), (0, 2)),
             "paeth.png": _filtered_png(_image((31, 45, 3), np.uint8), (4, 3))}
    for name, data in cases.items():
        (folder / name).write_bytes(data)
        before = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)  # the reader before: imread + cvtColor
        if before.ndim == 3:
            before = cv2.cvtColor(before, cv2.COLOR_BGRA2RGB if before.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        got = session.read_image(cam, name)
        assert got.dtype == before.dtype and got.shape == before.shape, name
        np.testing.assert_array_equal(got, before, err_msg=name)
    assert len(calls) == len(cases)
    (folder / "cut.png").write_bytes(cases["sub.png"][:60])
    (folder / "empty.png").write_bytes(b"")
    with pytest.raises(SessionError, match="cannot read frame image"):
        session.read_image(cam, "empty.png")
    with pytest.raises(SessionError, match="cannot read frame image"):
        session.read_image(cam, "cut.png")
    with pytest.raises(SessionError, match="cannot read frame image"):
        session.read_image(cam, "missing.png")


def test_plate_reader_uses_the_decoder_and_matches_opencv(tmp_path, monkeypatch):
    """artifacts.read_plate (the report's plates): the same uint8 RGB as its OpenCV reading before, for the
    composite's 16-bit plates and the other PNGs it may meet; None for a missing, empty or damaged file."""
    from reconstruct.artifacts.plates import read_plate

    calls = []
    real = png.decode_png
    monkeypatch.setattr(png, "decode_png", lambda data: calls.append(1) or real(data))
    cases = {"plate16.png": png.encode_png(_image((31, 45, 3), np.uint16)),
             "rgba16.png": png.encode_png(_image((31, 45, 4), np.uint16)),
             "grey8.png": _filtered_png(_image((31, 45), np.uint8), (1, 2)),
             "paeth16.png": _filtered_png(_image((31, 45, 3), np.uint16), (4,))}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # the reader before
        if img.dtype == np.uint16:
            img = cv2.convertScaleAbs(img, alpha=1.0 / 257.0)
        before = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else cv2.cvtColor(img[..., :3],
                                                                                         cv2.COLOR_BGR2RGB)
        got = read_plate(path)
        assert got.dtype == np.uint8 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, before, err_msg=name)
    assert len(calls) == len(cases)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(cases["plate16.png"][:70])
    for name in ("empty.png", "cut.png", "missing.png"):
        assert read_plate(tmp_path / name) is None, name


@pytest.mark.parametrize("block", [1 << 18, 200])
@pytest.mark.parametrize("bpp", [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize("w", [1, 2, 3, 16, 17, 37, 64, 65])
def test_running_sums_are_numpys_cumsum_per_byte_of_a_pixel(bpp, w, block, monkeypatch):
    """Sub rows are undone in log2(W) steps, block by block of rows (faster than numpy's cumsum along a row): the
    same bytes, with one block or several (the last one short)."""
    monkeypatch.setattr(png, "_BLOCK_BYTES", block)
    rows = np.random.default_rng(w * 10 + bpp).integers(0, 256, (11, w * bpp), dtype=np.uint8)
    want = np.cumsum(rows.reshape(11, w, bpp), axis=1, dtype=np.uint8).reshape(11, -1)
    np.testing.assert_array_equal(png._running_sums(rows[:, :], bpp), want)
    np.testing.assert_array_equal(png._running_sums(np.ascontiguousarray(rows[::-1])[::-1], bpp), want)
