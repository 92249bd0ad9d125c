"""Artist flags on synthetic inputs: each must fire where the defect was planted, and nowhere else."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reconstruct.errors import ConfigError
from reconstruct.report.flags import (flicker, landmark_deviation, seam_score, seams, similarity_transform,
                                      stiff_expression, temporal_difference, unnatural_eyes)

T = 24
ALIGN = np.arange(0, 10)     # stable points (eye corners, nose)
EYES = np.arange(10, 18)     # lids + irises
EXPR = np.arange(18, 30)     # mouth, brows, jaw
IOD = 60.0


def _pose(pts, angle_deg, scale, shift):
    a = np.radians(angle_deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (pts @ r.T) * scale + shift


def _performance(seed=0):
    """(T, 30, 2) plate landmarks: a face that turns, scales, moves and opens its mouth over the shot."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 30, (30, 2))
    mouth_dir = rng.normal(0, 1, (len(EXPR), 2))
    plate, neutral = [], []
    for t in range(T):
        face = base.copy()
        face[EXPR] += 6.0 * np.sin(t / 3.0) * mouth_dir  # expression: up to ~0.1 IOD of motion per point
        plate.append(_pose(face, 10 * np.sin(t / 5), 1 + 0.1 * np.cos(t / 4), np.array([320 + 3 * t, 240.0])))
        neutral.append(base)
    return base, mouth_dir, np.array(plate)


def _output(base, mouth_dir, stiff_frames=(), eye_frames=(), seed=1):
    """The de-aged output: constant shape change, a slightly different head pose, same expression except where
    planted."""
    rng = np.random.default_rng(seed)
    young = base + rng.normal(0, 2.0, base.shape)  # constant shape change (~0.05 IOD): must not be flagged
    out = []
    for t in range(T):
        face = young.copy()
        if t not in stiff_frames:
            face[EXPR] += 6.0 * np.sin(t / 3.0) * mouth_dir
        if t in eye_frames:
            face[EYES[-2:]] += np.array([6.0, 0.0])  # irises looking 0.1 IOD to the side
        out.append(_pose(face, 10 * np.sin(t / 5) + 1.5, 1.02 + 0.1 * np.cos(t / 4), np.array([322 + 3 * t, 238.0])))
    return np.array(out)


def test_similarity_transform_recovers_pose():
    src = np.random.default_rng(0).normal(size=(12, 2))
    dst = _pose(src, 33.0, 1.7, np.array([5.0, -2.0]))
    a, ms, md = similarity_transform(src, dst)
    np.testing.assert_allclose((src - ms) @ a.T + md, dst, atol=1e-9)


def test_faithful_output_raises_no_landmark_flag():
    base, mdir, plate = _performance()
    out = _output(base, mdir)
    s = stiff_expression(plate, out, ALIGN, EXPR, IOD)
    e = unnatural_eyes(plate, out, ALIGN, EYES, IOD)
    assert s.flagged.size == 0 and e.flagged.size == 0
    # pose and the constant shape change are removed; what is left is the expression seen through the young
    # face's slightly different alignment: tolerance 0.005 IOD, measured 0.0007 IOD (threshold 0.04)
    assert np.nanmax(s.score) < 0.005


def test_stiff_expression_fires_on_frozen_mouth_only():
    base, mdir, plate = _performance()
    frozen = (6, 7, 8)  # sin(t/3) near its peak: the plate's mouth is wide open, the output's is neutral
    out = _output(base, mdir, stiff_frames=frozen)
    s = stiff_expression(plate, out, ALIGN, EXPR, IOD, frames=np.arange(100, 100 + T))
    assert list(s.flagged) == [106, 107, 108]
    e = unnatural_eyes(plate, out, ALIGN, EYES, IOD)
    assert e.flagged.size == 0  # the mouth does not leak into the eye flag


def test_unnatural_eyes_fires_on_iris_shift_and_on_gaze():
    base, mdir, plate = _performance()
    out = _output(base, mdir, eye_frames=(12,))
    e = unnatural_eyes(plate, out, ALIGN, EYES, IOD)
    assert list(e.flagged) == [12]
    assert stiff_expression(plate, out, ALIGN, EXPR, IOD).flagged.size == 0
    gaze = np.tile(np.array([0.0, 0.0, 1.0]), (T, 2, 1))
    g_out = gaze.copy()
    g_out[3, 0] = [np.sin(np.radians(10)), 0, np.cos(np.radians(10))]  # left eye 10 degrees off at frame 3
    g_out[5, 1] = [np.sin(np.radians(2)), 0, np.cos(np.radians(2))]   # 2 degrees: within tolerance
    e2 = unnatural_eyes(plate, _output(base, mdir), ALIGN, EYES, IOD, gaze_plate=gaze, gaze_output=g_out)
    assert list(e2.flagged) == [3]


def test_landmark_flags_tolerate_missing_frames_and_check_shapes():
    base, mdir, plate = _performance()
    out = _output(base, mdir)
    out[4] = np.nan  # no face found on the output at frame 4
    d = landmark_deviation(plate, out, ALIGN, EXPR, IOD)
    assert np.isnan(d[4]) and np.isfinite(np.delete(d, 4)).all()
    with pytest.raises(ConfigError, match=r"\(T, N, 2\)"):
        stiff_expression(plate[:, :, :1], out[:, :, :1], ALIGN, EXPR, IOD)


def _moving_plates(n=16, h=64, w=80):
    """A textured scene panning 2 px per frame (real motion the flicker flag must ignore)."""
    yy, xx = np.mgrid[0:h, 0:w + 2 * n]
    scene = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    return np.stack([scene[:, 2 * t:2 * t + w] for t in range(n)]).astype(np.float64)


def test_flicker_fires_on_brightness_pop_not_on_motion():
    plates = _moving_plates()
    mask = np.zeros(plates.shape[1:]); mask[16:48, 20:60] = 1
    out = plates.copy()
    out[:, 16:48, 20:60] += 5.0  # a constant grade inside the face: not flicker
    # the edit (output - plate) is steady even though the scene moves: nothing flagged
    assert flicker(temporal_difference(out - plates, mask)).flagged.size == 0
    # the plain output's own frame differences are large (motion) but match the plate's: nothing flagged either
    assert flicker(temporal_difference(out, mask), temporal_difference(plates, mask)).flagged.size == 0
    out[9, 16:48, 20:60] += 8.0  # one frame pops 8 levels brighter
    f = flicker(temporal_difference(out - plates, mask))
    assert list(f.flagged) == [9, 10]  # the pop and the return both spike
    assert f.score[9] == pytest.approx(8.0) and f.score[10] == pytest.approx(8.0)


def test_flicker_without_reference_series():
    d = np.array([0, 1.0, 1.1, 0.9, 1.0, 9.0, 1.0, 1.05])
    assert list(flicker(d).flagged) == [5]
    assert flicker(np.array([0, 1.0, 1.1, 0.9, 1.0, 1.2])).flagged.size == 0


def _seam_scene(h=96, w=96):
    yy, xx = np.mgrid[0:h, 0:w]
    plate = (100 + 0.6 * xx + 20 * np.sin(yy / 9.0)).astype(np.float64)
    mask = ((xx - 48) ** 2 + (yy - 48) ** 2 < 25 ** 2).astype(np.float64)
    return plate, mask


def test_seam_fires_on_hard_paste_not_on_feathered_or_faithful():
    plate, mask = _seam_scene()
    patch = plate + 12.0
    hard = plate * (1 - mask) + patch * mask
    soft_mask = cv2.GaussianBlur(mask, (0, 0), 6.0)
    soft = plate * (1 - soft_mask) + patch * soft_mask
    faithful = plate * (1 - mask) + plate * mask
    s_hard, s_soft, s_same = (seam_score(x, mask, plate) for x in (hard, soft, faithful))
    assert s_hard > 5.0 > s_soft, (s_hard, s_soft)  # threshold 5 grey levels; measured 13.4 (hard) vs 1.6 (feathered)
    assert s_same == pytest.approx(0.0, abs=1e-9)
    # without the plate: band gradient against the rings beside it
    assert seam_score(hard, mask) > 5.0 > seam_score(soft, mask)  # measured 8.5 vs -0.2
    res = seams([faithful, hard, soft], [mask] * 3, [plate] * 3, frames=np.array([10, 11, 12]))
    assert list(res.flagged) == [11]
    assert np.isnan(seam_score(plate, np.zeros_like(mask), plate))  # no boundary, no score
