"""digital_human's plate mode applies the young shape to the face only: a head model's neck, ears and scalp are
not pinned by landmarks, and their identity-mode motion moved the collar and tie of obama_address by 3-4 px
(more than the face moved); with the weights the plate below the chin is bit-exact (measured: 0 changed pixels in
rows 420-511 of frames 0 and 20, face flow ~1 px)."""

from __future__ import annotations

import numpy as np

from deage_plugins.digital_human.plate import shape_weights


def _ict():
    from reconstruct.plugins import make_plugin_manager

    src = make_plugin_manager().components().get("face_model", "ict")
    return src.load() if hasattr(src, "load") else src


def test_face_takes_the_whole_young_shape_and_the_neck_none():
    model = _ict()
    w = shape_weights(model, rings=12)
    face = np.asarray(model.regions["face"], bool)
    assert np.all(w[face] == 1.0)
    assert 0.0 <= w.min() and w.max() <= 1.0
    # measured on ICT: 5718 face vertices at 1, 2160 in the 12-ring fade, 1531 at 0 (the far neck and the back)
    assert (w == 0).sum() > 1000
    # the lowest vertices of the head (the neck's base, furthest below the face) take none of the shape
    up = model.mean_shape[:, 1] if hasattr(model, "mean_shape") else model.vertices(
        np.zeros(model.n_identity), np.zeros(model.n_expression))[:, 1]
    lowest = np.argsort(up)[:50]
    assert np.all(w[lowest] == 0.0)


def test_weights_fall_monotonically_ring_by_ring():
    model = _ict()
    w = shape_weights(model, rings=4)
    vals = np.unique(w)
    assert len(vals) == 6  # 1 on the face, 4 rings of fade, 0 beyond
