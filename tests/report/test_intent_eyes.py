"""The edit's intended landmark shift as the report reads it (``intent.npz``): the irises, which the face model has
no correspondence for, move with their eye.

Found on the hero-2ir bench take (docs/report.md, "unnatural_eyes"): the young stills are another identity, so the
method moves each eye by ~5 px (IOD 176 px); the irises' shifts were NaN and read as 0, so the plate's irises stayed
where they were while the output's moved with the eye, and the gaze against the fitted eyeballs differed by
6.8-12.4 degrees on every frame (all 24 flagged; with the irises moved with their eyes: 0.5-3.6 degrees, none).
"""

from types import SimpleNamespace

import numpy as np

from reconstruct.report.data import LANDMARK_GROUPS, ReportData, intended_shift

G = LANDMARK_GROUPS["mediapipe478"]


def _shift(rng):
    s = rng.normal(0, 1, (478, 2))
    s[G["iod_left"]] += (5.0, 2.0)  # the young eyes further apart, as on the bench take
    s[G["iod_right"]] += (-5.5, 1.5)
    s[468:478] = np.nan  # no model correspondence for the irises
    s[10] = np.nan  # nor for some other point
    return s


def test_irises_move_with_their_eye_other_unmatched_points_stay():
    s = _shift(np.random.default_rng(0))
    out = intended_shift(s, "mediapipe478")
    left, right = s[G["iod_left"]].mean(0), s[G["iod_right"]].mean(0)
    np.testing.assert_allclose(out[468:473], np.tile(left, (5, 1)))
    np.testing.assert_allclose(out[473:478], np.tile(right, (5, 1)))
    assert np.all(out[10] == 0)
    keep = np.isfinite(s).all(1)
    np.testing.assert_array_equal(out[keep], s[keep])  # what the method gave is kept as it is


def test_a_given_iris_shift_is_kept_and_other_schemes_untouched():
    s = _shift(np.random.default_rng(1))
    s[468:473] = 3.0
    out = intended_shift(s, "mediapipe478")
    assert np.all(out[468:473] == 3.0)
    ib = np.full((68, 2), np.nan)
    ib[:10] = 1.0
    np.testing.assert_array_equal(intended_shift(ib, "ibug68"), np.nan_to_num(ib))


def test_report_data_reads_irises_moved_with_their_eye(tmp_path):
    s = _shift(np.random.default_rng(2))
    np.savez(tmp_path / "intent.npz", frames=np.array([7]), shift=s[None].astype(np.float32),
             scheme=np.array("mediapipe478"))
    data = ReportData(SimpleNamespace(method_plates=lambda m: tmp_path))
    scheme, intent = data.intent("digital_human")
    assert scheme == "mediapipe478" and set(intent) == {7}
    eye = s[G["iod_left"]].astype(np.float32).mean(0)
    # the plate's iris is moved by the eye's ~5 px, not left where it was (the gaze flag compared a moved eye's
    # iris with an unmoved one)
    np.testing.assert_allclose(intent[7][468], eye, atol=1e-5)
    assert np.linalg.norm(intent[7][468]) > 4.0
