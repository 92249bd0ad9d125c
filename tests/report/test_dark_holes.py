"""The QC report's "new dark holes" measure (reconstruct/report/measures.py): a dark edge the method means to move
(its intended landmark shift, intent.npz) is not a hole; a new dark blob where the plate has none within reach is.
Found on the hero-2ir bench take: the plate mode moved the open mouth and the brow ends by the 10-25 px it intended
(a young identity unlike today's) and every frame was flagged at 0.25-0.41 % of the face (threshold 0.2)."""

from __future__ import annotations

import numpy as np

from reconstruct.report.measures import DARK_BELOW, DARK_LEVELS, darkest_within, intended_reach


def _scene():
    plate = np.full((120, 160), 200.0, np.float32)
    plate[50:60, 30:50] = 20.0  # a dark mouth in the plate
    result = plate.copy()
    result[50:60, 30:50] = 200.0
    result[50:60, 50:70] = 20.0  # the method moved it 20 px to the right, as it meant to
    result[90:100, 120:130] = 20.0  # and opened a new dark hole where the plate is skin
    return plate, result


def _new_dark(plate, result, reach, near=3):
    low = darkest_within(plate, near, reach)
    return (low - result > DARK_LEVELS) & (result < DARK_BELOW)


def test_an_intended_move_is_not_a_hole_and_a_new_blob_is():
    plate, result = _scene()
    points = np.array([[40.0, 55.0], [125.0, 95.0]])  # frame px: a landmark on the mouth, one on the new blob
    shift = np.array([[20.0, 0.0], [0.0, 0.0]])  # the mouth meant to move 20 px; nothing meant to move there
    origin = (0, 0)
    before = _new_dark(plate, result, None)
    after = _new_dark(plate, result, intended_reach(plate.shape, origin, points, shift, step=2))
    # without the intent, the moved mouth's far half counts (10 x 14 px) beside the new blob (10 x 10)
    assert before[50:60, 50:70].sum() >= 100 and before[90:100, 120:130].all()
    # with it, the moved mouth is no hole; the new blob still is, every pixel of it
    assert after[50:60, 50:70].sum() == 0
    assert after[90:100, 120:130].all()


def test_reach_follows_the_nearest_landmark_in_frame_coordinates():
    points = np.array([[110.0, 210.0], [300.0, 400.0], [np.nan, np.nan]])
    shift = np.array([[3.0, 4.0], [0.0, 1.0], [50.0, 50.0]])  # the NaN landmark is ignored
    r = intended_reach((40, 60), (100, 200), points, shift, step=1)  # region x 100-159, y 200-239
    assert r.shape == (40, 60)
    np.testing.assert_allclose(r[10, 10], 5.0)  # (110, 210) is its own landmark's: |(3, 4)| = 5
    assert r.max() == 5.0  # the far landmark (1 px) is nearer nowhere in the region; NaN rows never count


def test_reach_never_looks_less_far_than_asked():
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 255, (50, 50)).astype(np.float32)
    reach = rng.uniform(0, 9, (50, 50)).astype(np.float32)
    low = darkest_within(y, 2, reach, levels=3)
    for yy, xx in [(10, 10), (25, 30), (40, 5)]:
        r = 2 + int(np.ceil(reach[yy, xx]))
        window = y[max(yy - r, 0):yy + r + 1, max(xx - r, 0):xx + r + 1]
        assert low[yy, xx] <= window.min() + 1e-6


def _darkest_by_definition(y, near, reach, levels):
    """Each pixel's minimum over the square of radius ``near`` + its reach's level (rounded up), from an erosion
    of ``y`` itself at every radius."""
    import cv2

    def erode(r):
        return cv2.erode(y, np.ones((2 * r + 1, 2 * r + 1), np.uint8))

    out = erode(near)
    edges = np.linspace(0.0, float(reach.max()), levels + 1)[1:]
    lower = 0.0
    for e in edges:
        sel = (reach > lower) & (reach <= e)
        out[sel] = erode(near + int(np.ceil(e)))[sel]
        lower = e
    return out


def test_the_reach_levels_darkest_are_each_radius_own_erosion():
    """darkest_within chains its radii's erosions (each the previous one eroded further): every level's values,
    at the image's edges too, are those of an erosion of the plate at that level's radius."""
    rng = np.random.default_rng(3)
    y = rng.uniform(0, 255, (61, 47)).astype(np.float32)
    reach = rng.uniform(0, 13, (61, 47)).astype(np.float32)
    reach[:5] = 0.0  # pixels that look only ``near`` far
    where = rng.random(y.shape) < 0.3
    for near, levels in ((1, 6), (3, 4), (2, 1)):
        want = _darkest_by_definition(y, near, reach, levels)
        np.testing.assert_array_equal(darkest_within(y, near, reach, levels=levels), want)
        np.testing.assert_array_equal(darkest_within(y, near, reach, levels=levels, where=where), want[where])
    y0 = y.copy()
    darkest_within(y, 2, reach)
    np.testing.assert_array_equal(y, y0)  # the plate's luma is not written into
