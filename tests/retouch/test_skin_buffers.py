"""The skin steps that write into buffers give the numbers of the plain expressions they replaced."""

import numpy as np

from reconstruct.retouch import skin
from reconstruct.retouch.skin import EDGE_CONTRAST, luminance, weights_box


def _image(h=37, w=53, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def test_luminance_into_a_strided_window_is_the_plain_sum():
    image = _image()
    y = np.zeros((40, 60), np.float32)
    dst = y[2:39, 3:56]  # a window of a larger array: not contiguous
    got = luminance(image, out=dst)
    assert got is dst and np.shares_memory(y, got)
    want = image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert np.array_equal(luminance(image), want)
    assert not y[:2].any() and not y[39:].any()  # nothing written past the window


def test_suppress_is_the_float64_expression():
    b = (np.random.default_rng(1).standard_normal((31, 29)) * 0.2).astype(np.float32)
    k = np.where(b < 0, 1.0, 0.85)
    want = (k / (1.0 + (b / EDGE_CONTRAST) ** 2)) * b
    got = skin._suppress(b)
    assert got.dtype == np.float64 and np.array_equal(got, want)
    assert np.array_equal(b / skin._robust(b), b / (1.0 + (b / EDGE_CONTRAST) ** 2))


def test_weights_box_of_views():
    base = np.zeros((20, 30, 2), np.float32)
    base[3, 4, 0] = 0.5
    base[12, 25, 1] = 1.0
    assert weights_box([base[..., 0], base[..., 1]]) == (slice(3, 13), slice(4, 26))
    assert weights_box([base[..., 0] * 0]) is None
