"""Expression modes by face part (reconstruct/fitting/modes.py) and the robust smoothing restricted to them
(``FitSettings.smooth_robust_modes``, the fit stage's ``fit.smooth_robust_on=mouth``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from reconstruct.fitting.fit import fit_sequence
from reconstruct.fitting.solver import FitSettings
from reconstruct.fitting.synthetic import make_sequence, observe, three_camera_rig


def test_mouth_modes_are_the_jaw_and_lip_modes(ict_model):
    from reconstruct.fitting.modes import mouth_modes
    from reconstruct.fitting.pipeline import ensure_scheme

    model = ensure_scheme(ict_model, "mediapipe478")
    names = [model.expression_names[k] for k in mouth_modes(model)]
    # measured on ICT: all 27 jaw* / mouth* modes and cheekPuff_L/R (29); no eye, brow or nose mode
    assert {"jawOpen", "mouthSmile_L", "mouthFunnel", "mouthClose"} <= set(names)
    assert all(n.startswith(("jaw", "mouth", "cheekPuff")) for n in names), names
    assert sum(n.startswith(("jaw", "mouth")) for n in model.expression_names) == sum(
        n.startswith(("jaw", "mouth")) for n in names)


@pytest.fixture(scope="module")
def scene(ict_model):
    cams = three_camera_rig()
    seq = make_sequence(ict_model, frames=6, seed=7)
    obs, conf = observe(ict_model, seq, cams, "mediapipe478", noise_px=1.5, seed=8)
    return cams, obs, conf


def _fit(ict_model, scene, **kw):
    cams, obs, conf = scene
    s = replace(FitSettings(auto_sigma=False, iterations=6, smooth_expression=0.002), **kw)
    return fit_sequence(ict_model, "mediapipe478", cams, obs, conf, s)


def test_robust_smoothing_only_on_the_chosen_modes(ict_model, scene):
    quad = _fit(ict_model, scene)
    full = _fit(ict_model, scene, smooth_robust=0.5)
    none = _fit(ict_model, scene, smooth_robust=0.5, smooth_robust_modes=())
    some = _fit(ict_model, scene, smooth_robust=0.5, smooth_robust_modes=(26,))
    # no robust mode: the quadratic fit exactly; the robust smoothing on everything changes it, on one mode less so
    np.testing.assert_allclose(none.expression, quad.expression, atol=1e-12)
    d_full = np.abs(full.expression - quad.expression).max()
    d_some = np.abs(some.expression - quad.expression).max()
    assert d_full > 1e-4 and 0 < d_some < d_full, (d_full, d_some)
