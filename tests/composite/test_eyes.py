"""Lid apertures from landmarks (reconstruct.composite.eyes) and the keep_eyes option's parsing."""

import numpy as np
import pytest

from reconstruct.composite import CompositeSettings
from reconstruct.composite.eyes import EYE_APERTURES, eye_apertures
from reconstruct.errors import ConfigError


def _ibug_eyes(centres=((200, 150), (300, 150)), half=(20, 8)):
    """68 landmarks, NaN except the two eye loops: hexagons of half-width/-height ``half`` around ``centres``."""
    pts = np.full((68, 2), np.nan)
    ang = np.radians([180, 120, 60, 0, -60, -120])
    for loop, (cx, cy) in zip(EYE_APERTURES["ibug68"], centres):
        pts[list(loop)] = np.stack([cx + half[0] * np.cos(ang), cy - half[1] * np.sin(ang)], axis=1)
    return pts


def test_apertures_cover_both_eyes_and_nothing_else():
    m = eye_apertures(_ibug_eyes(), "ibug68", (300, 500), grow_px=0)
    assert m[150, 200] and m[150, 300] and not m[150, 250] and not m[100, 200]
    # two hexagons of width 40 and height ~13.9 (inscribed in 20 x 8 half-axes): about 2 x 415 px
    assert 700 < m.sum() < 950
    grown = eye_apertures(_ibug_eyes(), "ibug68", (300, 500), grow_px=2)
    assert grown.sum() > m.sum() and np.all(grown[m])


def test_missing_eye_or_scheme():
    pts = _ibug_eyes()
    pts[36] = np.nan  # one eye's loop incomplete: only the other eye
    m = eye_apertures(pts, "ibug68", (300, 500), grow_px=0)
    assert not m[150, 200] and m[150, 300]
    assert eye_apertures(np.full((68, 2), np.nan), "ibug68", (300, 500)) is None
    assert eye_apertures(_ibug_eyes(), "unknown", (300, 500)) is None
    assert eye_apertures(np.zeros((10, 2)), "mediapipe478", (300, 500)) is None  # too few points


def test_keep_eyes_option():
    assert CompositeSettings().keep_eyes is True
    assert CompositeSettings.from_options({"composite.keep_eyes": "false"}).keep_eyes is False
    with pytest.raises(ConfigError):
        CompositeSettings.from_options({"composite.keep_eyes": "maybe"})
