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
