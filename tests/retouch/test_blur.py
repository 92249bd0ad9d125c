"""The wide Gaussian blurs of the retouch on a pyramid: the same blur as a direct convolution (its variance
exactly, its values within a small fraction of a grey level), for a fraction of the cost."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.retouch.blur import PYRAMID_FROM, gaussian_blur, pyramid_levels


def _image(h=540, w=560, seed=0):
    """A face-like test image: smooth shading, sharp edges and fine noise, values in [0, 1]."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.5 + 0.3 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
    img[150:300, 200:380] += 0.3  # a hard-edged block
    img = img + rng.normal(0, 0.05, (h, w)).astype(np.float32)
    return np.clip(cv2.merge([img, 0.8 * img, 0.6 * img]), 0, 1).astype(np.float32)


def test_narrow_blurs_are_the_direct_convolution():
    import cv2

    img = _image()
    assert pyramid_levels(PYRAMID_FROM - 0.1) == 0
    np.testing.assert_array_equal(gaussian_blur(img, 5.0), cv2.GaussianBlur(img, (0, 0), 5.0))


@pytest.mark.parametrize("sigma", [9.0, 25.0, 54.0])
def test_wide_blurs_match_the_direct_convolution(sigma):
    import cv2

    img = _image()
    assert pyramid_levels(sigma) >= 1
    exact = cv2.GaussianBlur(img, (0, 0), sigma)
    fast = gaussian_blur(img, sigma)
    d = np.abs(fast - exact) * 255  # grey levels
    inner = d[64:-64, 64:-64]
    # measured (levels): max 0.011 / 0.061 / 0.078 over the image, 0.002 / 0.007 / 0.005 away from its border
    assert d.max() < 0.15 and inner.max() < 0.02 and inner.mean() < 0.005


@pytest.mark.parametrize("sigma", [9.0, 25.0, 40.0])
def test_the_pyramid_blur_has_the_asked_variance(sigma):
    """An impulse's spread (second moment) is sigma^2: the pyramid's filters add up to the asked width."""
    h = w = 513
    img = np.zeros((h, w), np.float32)
    img[256, 256] = 1.0
    out = gaussian_blur(img, sigma).astype(np.float64)
    yy, xx = np.mgrid[0:h, 0:w]
    m = out.sum()
    var_x = float((out * (xx - (out * xx).sum() / m) ** 2).sum() / m)
    assert abs(m - 1.0) < 1e-3 and abs(np.sqrt(var_x) - sigma) / sigma < 0.01  # measured within 0.3 %


@pytest.mark.parametrize("sigma", [1.0, 1.76, 4.4, 7.9, 8.8, 20.0, 24.6, 52.8])
def test_a_blur_on_its_window_is_the_whole_images_blur(sigma):
    """``gaussian_blur_box``: the blur's values on a box computed on the window they depend on (the skin bands and
    the warp's fold relaxation, issue 16) are the whole image's, bit for bit -- boxes inside, at the edges, spanning
    it; 1 and 3 channels; direct and pyramid blurs. (Unaligned windows differ by 1 ulp: OpenCV's SIMD lanes.)"""
    from reconstruct.retouch.blur import blur_window, gaussian_blur_box

    img = _image(821, 728, seed=2)
    boxes = [np.s_[300:500, 250:500], np.s_[101:690, 93:650], np.s_[0:821, 0:728], np.s_[150:821, 0:400],
             np.s_[5:300, 301:728], np.s_[333:334, 411:413]]
    for im in (img, np.ascontiguousarray(img[..., 1])):
        full = gaussian_blur(im, sigma)
        for box in boxes:
            np.testing.assert_array_equal(gaussian_blur_box(im, sigma, box), full[box])
    window, _ = blur_window(img.shape, boxes[0], sigma)
    area = (window[0].stop - window[0].start) * (window[1].stop - window[1].start)
    if sigma < 10:  # a narrow blur reads little more than the box (measured 0.20-0.54 of the image up to 8.8)
        assert area < 0.6 * img.shape[0] * img.shape[1]


@pytest.mark.parametrize("channels", [1, 3])
def test_a_wide_blur_on_its_window_copies_nothing_but_the_bordered_image(channels, monkeypatch):
    """On the pyramid, ``gaussian_blur_box`` reads its window as a view and returns a view of the blur: the bordered
    copy the pyramid starts from is the only copy (before, issue 16: the window copied first and the blur copied
    out, ~12 of the plate mode's ~65 ms a frame of skin retouch at 1080p); the same numbers, bit for bit."""
    from reconstruct.retouch.blur import gaussian_blur_box

    img = _image(821, 728, seed=3)
    img = img if channels == 3 else np.ascontiguousarray(img[..., 0])
    box = np.s_[101:690, 93:650]
    want = gaussian_blur(img, 24.6)[box].copy()
    copies = []
    real = np.ascontiguousarray
    monkeypatch.setattr(np, "ascontiguousarray", lambda a, *k, **kw: copies.append(np.shape(a)) or real(a, *k, **kw))
    got = gaussian_blur_box(img, 24.6, box)
    monkeypatch.undo()
    assert copies == []
    assert np.array_equal(got, want)
