"""``srgb_to_linear`` (worked in place on two arrays, ``comp9``) gives the float32 values of its defining
expression ``where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)`` on ``clip(x, 0, 1)``, bit for bit:
the plates' EXR stores them rounded to half, so a different last bit could change a file."""

from __future__ import annotations

import numpy as np

from reconstruct.render.shading import srgb_to_linear


def _reference(x) -> np.ndarray:
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)


def test_bitwise_the_defining_expression():
    rng = np.random.default_rng(0)
    t = np.float32(0.04045)
    # every float32 within 2^16 steps of the branch threshold, a spread of [0, 1], the ends, out of range, NaN
    near = (t.view(np.uint32) + np.arange(-(1 << 16), 1 << 16, dtype=np.int64)).astype(np.uint32).view(np.float32)
    values = np.concatenate([near, rng.random(1 << 18, dtype=np.float32),
                             np.array([0, 1, -0.0, -1, 2, 1e-45, np.nan, np.inf, -np.inf], np.float32)])
    got = srgb_to_linear(values.reshape(-1, 3)[: values.size // 3])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), _reference(values.reshape(-1, 3)[: values.size // 3])
                                  .view(np.uint32))


def test_leaves_its_input_alone_and_takes_other_types():
    x = np.linspace(-0.5, 1.5, 101, dtype=np.float32).reshape(1, 101)
    before = x.copy()
    out = srgb_to_linear(x)
    assert out is not x and np.array_equal(x, before)
    np.testing.assert_array_equal(srgb_to_linear(np.array([222, 218, 210]) / 255.0),  # float64, as synth passes
                                  _reference(np.array([222, 218, 210]) / 255.0))
    assert srgb_to_linear(0.5).shape == () and srgb_to_linear(0.5) == _reference(0.5)
