"""The fit stage's landmark residuals (report.json): a camera that missed the face on some frames is measured on
the others, quietly (the demo printed numpy's "Mean of empty slice" warning to the user)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from deage_plugins import fit_stage


class _Cam:
    def project(self, pts):
        return pts[:, :2] * 1.0


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_residuals_skip_a_camera_s_missed_frames_quietly(monkeypatch):
    from reconstruct.fitting import fit as fit_mod
    from reconstruct.fitting.scoring import landmark_groups

    groups = landmark_groups("mediapipe478")
    rng = np.random.default_rng(0)
    truth = rng.uniform(100, 300, (2, 478, 2))
    world = np.concatenate([truth + [2.0, 0.0], np.ones((2, 478, 1))], -1)  # fitted = detected + 2 px in x
    monkeypatch.setattr(fit_mod, "fitted_landmarks", lambda *a, **k: world)
    points = np.stack([truth, truth], axis=1)  # (F, cameras, N, 2)
    points[1, 1] = np.nan  # camera "w" missed the face on frame 1
    det = SimpleNamespace(scheme="mediapipe478", frames=np.array([0, 1]), points=points,
                          camera_index=lambda c: {"hero": 0, "w": 1}[c])
    seq = SimpleNamespace(valid=np.array([True, True]), frames=np.array([0, 1]), cameras=["hero", "w"],
                          identity=None, expression=np.zeros((2, 1)), R=np.zeros((2, 3, 3)), t=np.zeros((2, 3)))
    out = fit_stage.landmark_residuals(None, det, seq, {"hero": _Cam(), "w": _Cam()})
    for c in ("hero", "w"):
        assert out[c]["mouth"]["px"] == pytest.approx(2.0, abs=1e-9)  # measured 2.0 exactly
        iod = np.linalg.norm(truth[0, groups["iod_left"]].mean(0) - truth[0, groups["iod_right"]].mean(0))
        assert out[c]["all"]["iod_percent"] > 0 and np.isfinite(out[c]["all"]["iod_percent"])
    assert out["w"]["eyes"]["iod_percent"] == pytest.approx(100 * 2.0 / iod, rel=1e-9)  # frame 0 alone
