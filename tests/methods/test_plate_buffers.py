"""plate mode's buffer-writing helpers: the same numbers as the plain expressions."""

import numpy as np

from deage_plugins.digital_human.plate import _times


def test_times_on_strided_views_is_the_plain_product_in_the_box():
    rng = np.random.default_rng(2)
    planes = rng.random((23, 17, 2)).astype(np.float32)
    weight, skin = planes[..., 0], planes[..., 1]  # channel views: not contiguous
    box = (slice(4, 19), slice(2, 11))
    got = _times(weight, skin, box)
    want = np.zeros_like(weight)
    want[box] = weight[box] * skin[box]
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert not _times(weight, skin, None).any()
