"""The fit through MediaPipe on a rendered extreme performance (scream, wide smile) on a rig no other test uses,
scored against the synthetic truth: the shipped detector bias against the bare correspondence (issue 15's bars;
the figures of a longer take are in docs/fitting.md)."""

import importlib.util

import numpy as np
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _fit_lab():
    spec = importlib.util.spec_from_file_location("fit_lab", REPO / "tools" / "fit_lab.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def scored(tmp_path_factory, ict_model, face_region):
    from reconstruct.face.detector_bias import builtin_bias
    from reconstruct.fitting.pipeline import ensure_scheme

    lab = _fit_lab()
    root = tmp_path_factory.mktemp("extreme") / "take"
    lab.make_session(REPO / "tests" / "fitting" / "data" / "rig-unseen.toml", root, seed=5, frames=16,
                     extremes=("scream", "smile"))
    model = ensure_scheme(ict_model, "mediapipe478")
    out = {name: lab.score_session(root, model, face_region, bias=b)
           for name, b in (("bias", builtin_bias(model, "mediapipe478")), ("bare", None))}
    for name, r in out.items():
        print(name, lab.report(r))
    return out


def test_detector_bias_lowers_the_vertex_error(scored):
    b, n = scored["bias"]["err"], scored["bare"]["err"]
    # 3 views, unseen rig and identity, MediaPipe, 16 frames: measured face 3.18 mm, mouth 3.25 mm with the bias
    # (bare correspondence 5.73 / 6.00 mm). Tolerances: face 3.5 mm, mouth 3.6 mm, at most 0.6x the bare fit's
    # (measured 0.55x / 0.54x). The bars (2.0 / 2.5 mm) are not met on this short take: docs/fitting.md
    assert b["face"] < 0.0035 and b["mouth"] < 0.0036, b
    assert b["face"] < 0.6 * n["face"] and b["mouth"] < 0.6 * n["mouth"]


def test_smile_lip_corners_within_ten_percent(scored):
    r = scored["bias"]
    smile = r["segment"] == r["segments"].index("smile")
    t, f = r["mouth_truth"][smile, 1], r["mouth_fit"][smile, 1]
    rel = np.abs(f - t) / t
    # the bar: 10 % on every frame; measured max 0.08 (bare correspondence: 0.14)
    assert rel.max() <= 0.10, rel


def test_jitter_of_the_error_not_worse(scored):
    b, n = scored["bias"]["jitter_error"], scored["bare"]["jitter_error"]
    # second differences of (fit - truth), per region; the bar: no worse than the bare fit's (today's);
    # measured face 1.09 / 1.20, mouth 2.05 / 2.14, eyes 0.60 / 0.70 mm/frame^2 (bias / bare; with the bare fit's
    # smoothing the bias gave 1.21 / 1.92 / 0.85: hence its 2x smoothing)
    for k in ("face", "mouth", "eyes"):
        assert b[k] <= n[k], (k, b[k], n[k])
