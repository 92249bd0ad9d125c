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



def test_the_fit_evaluates_the_model_once_per_point(ict_model, scene, monkeypatch):
    """An iteration's residuals at its start (for the weights, then the cost), at the point its accepted step was
    evaluated at, and the final ones reuse the last evaluation at the same tensors and view state: no model
    evaluation without Jacobian is repeated at the same point (main evaluated each iteration's start twice, the
    accepted point again, and the end again), and the solution is bit-equal to recomputing every time."""
    from reconstruct.fitting import solver

    cams, seq, obs, conf = scene
    s = FitSettings(iterations=6)
    seen, views, in_jac = [], [0], [False]
    residuals, update_view = solver._Problem.residuals, solver._Problem.update_view
    world_points = solver._Problem.world_points

    def flagging(self, alpha, beta, rot, trans, jac):
        in_jac[0] = jac
        return residuals(self, alpha, beta, rot, trans, jac)

    def counting(self, alpha, beta, rot, trans):  # a model evaluation
        if not in_jac[0]:  # the tensors kept alive (their ids are not reused) with the view state: the point
            seen.append(((alpha, beta, rot, trans), (id(alpha), id(beta), id(rot), id(trans), views[0])))
        return world_points(self, alpha, beta, rot, trans)

    def counting_update_view(self, x):
        if self.b.view is not None or self.Bx is not None:
            views[0] += 1
        return update_view(self, x)

    monkeypatch.setattr(solver._Problem, "residuals", flagging)
    monkeypatch.setattr(solver._Problem, "world_points", counting)
    monkeypatch.setattr(solver._Problem, "update_view", counting_update_view)
    a = fit_sequence(ict_model, "mediapipe478", cams, obs, conf, s)
    keys = [k for _, k in seen]
    assert len(keys) == len(set(keys)), "a model evaluation was repeated at the same point"

    def recomputing(self, alpha, beta, rot, trans, jac):
        self._last = None
        return residuals(self, alpha, beta, rot, trans, jac)

    monkeypatch.setattr(solver._Problem, "residuals", recomputing)
    b = fit_sequence(ict_model, "mediapipe478", cams, obs, conf, s)
    assert a.iterations == b.iterations and a.cost == b.cost and a.history == b.history
    for k in ("identity", "expression", "R", "t", "residual_px"):
        assert np.array_equal(getattr(a, k), getattr(b, k), equal_nan=True), k
