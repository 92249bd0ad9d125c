"""reconstruct/composite/exr.py: the plates' half-float EXR encoder (ZIP, ISA-L deflate) writes ordinary OpenEXR
files: the OpenEXR library decodes exactly the half floats given, with the header's string attributes (provenance)."""

from __future__ import annotations

import numpy as np
import pytest

OpenEXR = pytest.importorskip("OpenEXR")

from reconstruct import png  # noqa: E402
from reconstruct.composite.exr import encode_exr_half  # noqa: E402
from reconstruct.errors import ConfigError  # noqa: E402


def _read(tmp_path, data: bytes):
    path = tmp_path / "x.exr"
    path.write_bytes(data)
    with OpenEXR.File(str(path)) as f:
        channels, header = f.channels(), dict(f.header())
        key = next(k for k in ("RGB", "RGBA", "Y") if k in channels)
        return np.array(channels[key].pixels), header


def _image(shape, seed=0):
    """Smooth ramps (compressible blocks), noise and specials (signed zero, inf, NaN, subnormal, max half)."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.broadcast_to(((xx + 2 * yy) / max(h + w, 1))[..., None] if len(shape) == 3 else (xx + yy) / (h + w),
                          shape).astype(np.float32)
    img = img + rng.normal(0, 0.01, shape).astype(np.float32) * (yy[..., None] > h / 2 if len(shape) == 3 else 1)
    flat = img.reshape(-1)
    specials = np.array([-0.0, np.inf, -np.inf, np.nan, 6e-8, 65504.0, -2.5], np.float32)
    flat[:min(len(flat), len(specials))] = specials[:len(flat)]
    return img


@pytest.mark.parametrize("shape", [(37, 53, 3), (16, 7, 3), (17, 7, 3), (1, 1, 3), (33, 20, 4), (19, 9), (64, 3, 3)])
def test_round_trip_exact_half_bits(tmp_path, shape):
    img = _image(shape)
    back, header = _read(tmp_path, encode_exr_half(img, {"deage:provenance": '{"k": "\u00e9"}'}))
    want = img.astype(np.float16)
    assert back.dtype == np.float16 and back.shape == want.shape
    np.testing.assert_array_equal(back.view(np.uint16), want.view(np.uint16))  # NaN, -0 and inf included
    assert header["compression"] == OpenEXR.ZIP_COMPRESSION
    assert header["deage:provenance"] == '{"k": "\u00e9"}'
    assert [int(v) for v in header["dataWindow"][1]] == [shape[1] - 1, shape[0] - 1]


def test_incompressible_block_stored_raw_and_zlib_fallback(tmp_path, monkeypatch):
    """Random half bits do not shrink: such blocks are stored as they are (the reader tells them by their size);
    without ISA-L the same file is deflated by zlib."""
    bits = np.random.default_rng(3).integers(0, 0x7C00, (18, 11, 3), dtype=np.uint16)  # finite halves, no NaN
    img = bits.view(np.float16)
    data = encode_exr_half(img)
    assert len(data) > img.nbytes  # every block raw (plus header and offsets)
    back, _ = _read(tmp_path, data)
    np.testing.assert_array_equal(back.view(np.uint16), bits)
    monkeypatch.setattr(png, "_fast_zlib", None)
    smooth = _image((40, 30, 3))
    back, _ = _read(tmp_path, encode_exr_half(smooth))
    np.testing.assert_array_equal(back.view(np.uint16), smooth.astype(np.float16).view(np.uint16))


def test_size_close_to_the_libraries_zip(tmp_path):
    """Files stay near OpenEXR's own ZIP (zlib level 4): on a smooth noisy 480x270 plate ours is 1.05x its size
    (measured; bound 1.2x; PIZ 0.94x)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:270, 0:480].astype(np.float32)
    img = (0.3 + 0.2 * np.sin(xx / 40)[..., None] * np.cos(yy / 25)[..., None] * np.array([1.0, 0.8, 0.6])
           + rng.normal(0, 0.003, (270, 480, 3))).astype(np.float16)
    ours = encode_exr_half(img)
    ref = tmp_path / "ref.exr"
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"RGB": np.ascontiguousarray(img)}).write(str(ref))
    assert len(ours) <= 1.2 * ref.stat().st_size, (len(ours), ref.stat().st_size)


def test_bad_input_says_what_to_do():
    with pytest.raises(ConfigError, match="float pixels"):
        encode_exr_half(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ConfigError, match="shape"):
        encode_exr_half(np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ConfigError, match="31 characters"):
        encode_exr_half(np.zeros((4, 4, 3), np.float32), {"x" * 40: "v"})
    with pytest.raises(ConfigError, match="reserved"):
        encode_exr_half(np.zeros((4, 4, 3), np.float32), {"compression": "v"})
