"""The fast landmark-fit solve (reconstruct/fitting/normal.py: cameras folded into a 3x3 metric per landmark, banded
Cholesky, identity by Schur complement) takes the same steps as the full-Jacobian sparse-LU solve it replaced
(kept as ``FitSettings(linear="sparse-lu")``), in every configuration the fit uses. Its speed is in
tools/bench_fit.py (docs/fitting.md)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from reconstruct.fitting.fit import fit_sequence
from reconstruct.fitting.solver import FitSettings
from reconstruct.fitting.synthetic import make_sequence, observe, three_camera_rig


@pytest.fixture(scope="module")
def scene(ict_model):
    cams = three_camera_rig()
    seq = make_sequence(ict_model, frames=6, seed=7)
    obs, conf = observe(ict_model, seq, cams, "mediapipe478", noise_px=1.5, seed=8)
    return cams, seq, obs, conf


@pytest.mark.parametrize("case", ["three views", "hero only", "identity fixed", "no smoothing", "robust smoothing",
                                  "geman-mcclure"])
def test_band_solve_equals_sparse_lu(ict_model, scene, case):
    cams, seq, obs, conf = scene
    s = FitSettings(auto_sigma=False, iterations=6)
    sel, identity = [0, 1, 2], None
    if case == "hero only":
        sel = [0]
    elif case == "identity fixed":
        s, identity = replace(s, fit_identity=False), seq.identity * 0.8
    elif case == "no smoothing":
        s = replace(s, smooth_rotation=0.0)
    elif case == "robust smoothing":
        s = replace(s, smooth_robust=2.0)
    elif case == "geman-mcclure":
        s = replace(s, loss="geman-mcclure")
    cs = [cams[i] for i in sel]
    a = fit_sequence(ict_model, "mediapipe478", cs, obs[:, sel], conf[:, sel], replace(s, linear="sparse-lu"),
                     identity=identity)
    b = fit_sequence(ict_model, "mediapipe478", cs, obs[:, sel], conf[:, sel], replace(s, linear="band"),
                     identity=identity)
    assert a.iterations == b.iterations
    # same steps up to rounding: measured differences ~1e-13 (coefficients) and 1e-16 m (translations)
    assert np.abs(a.identity - b.identity).max() < 1e-8
    assert np.abs(a.expression - b.expression).max() < 1e-8
    assert np.abs(a.t - b.t).max() < 1e-10 and np.abs(a.R - b.R).max() < 1e-9
    assert abs(a.cost - b.cost) <= 1e-9 * a.cost
    if case == "three views":  # the [0, 1] box of the blendshape weights was active (weights held at 0)
        assert (b.expression <= 1e-12).any()
