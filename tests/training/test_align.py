"""5-point alignment: similarity recovery, landmark schemes, crop round trip, synthetic face ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.errors import MethodError
from reconstruct.training.align import (align_matrix, five_points, similarity, skin_mask_from_68, template,
                                        warp_to_crop, warp_to_plate)
from reconstruct.training.synthetic_faces import IDENTITY_A, FacePose, draw_face


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = 0.3, 1.7, np.array([12.0, -4.0])
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = s * src @ R.T + t
    M = similarity(src, dst)
    np.testing.assert_allclose(M[:, :2], s * R, atol=1e-9)  # exact data: recovered to 1e-9
    np.testing.assert_allclose(M[:, 2], t, atol=1e-7)


def test_five_points_from_schemes():
    p68 = np.arange(136, dtype=float).reshape(68, 2)
    f = five_points(p68)
    np.testing.assert_allclose(f[0], p68[36:42].mean(0))
    np.testing.assert_allclose(f[2], p68[30])
    assert five_points(np.zeros((478, 2))).shape == (5, 2)
    with pytest.raises(MethodError, match="unknown scheme"):
        five_points(np.zeros((10, 2)))
    with pytest.raises(MethodError, match="coincide"):
        align_matrix(np.zeros((5, 2)), 64)


def test_synthetic_face_aligns_onto_the_template_and_back():
    f = draw_face(IDENTITY_A, FacePose(angle=8, scale=0.9, tx=0.03, ty=-0.02), 40, 96)
    M = align_matrix(f.points5, 64, 1.3)
    mapped = f.points5 @ M[:, :2].T + M[:, 2]
    # the drawn face's 5 points are not the template's proportions: residual measured 1.9 px, bound 4 px
    assert np.abs(mapped - template(64, 1.3)).max() < 4.0
    crop = warp_to_crop(f.image, M, 64)
    back = warp_to_plate(crop, M, f.image.shape[:2])
    inside = warp_to_plate(np.ones((64, 64), np.float32), M, f.image.shape[:2]) > 0.999
    # crop and back: two bilinear resamplings; mean error inside measured 0.012, bound 0.03
    assert np.abs(back - f.image)[inside].mean() < 0.03


def test_skin_mask_from_68_excludes_eyes_and_mouth():
    # a schematic 68-point face: jaw on a circle, eyes, brows, nose, mouth at plausible places
    t = np.linspace(np.pi * 0.05, np.pi * 0.95, 17)
    jaw = np.stack([50 + 40 * np.cos(t), 50 + 40 * np.sin(t)], 1)
    brows = np.stack([np.linspace(20, 80, 10), np.full(10, 30.0)], 1)
    nose = np.stack([np.full(9, 50.0), np.linspace(35, 60, 9)], 1)
    eye = lambda cx: np.stack([cx + 8 * np.cos(np.linspace(0, 2 * np.pi, 6, endpoint=False)),  # noqa: E731
                               40 + 3 * np.sin(np.linspace(0, 2 * np.pi, 6, endpoint=False))], 1)
    mouth = np.stack([50 + 12 * np.cos(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
                      72 + 4 * np.sin(np.linspace(0, 2 * np.pi, 20, endpoint=False))], 1)
    p = np.concatenate([jaw, brows, nose, eye(32), eye(68), mouth])
    m = skin_mask_from_68(p, (100, 100))
    assert m[40, 32] == 0 and m[72, 50] == 0  # eye and mouth centres
    assert m[55, 30] == 1 and m[25, 50] == 1  # cheek and forehead above the brows (y 30)
