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
    from reconstruct.fitting.lip_anchor import anchor_inner_lips

    model = ensure_scheme(ict_model, "mediapipe478")
    out = {}
    bias = builtin_bias(model, "mediapipe478")
    for name, b, lips in (("bias", bias, True), ("bare", None, False), ("computed", bias, False)):
        m = model
        if lips:  # the fit stage's default: MediaPipe's inner lips and lids on the model's lines
            m, b = anchor_inner_lips(model, "mediapipe478", b)
        out[name] = lab.score_session(root, m, face_region, bias=b)
    for name, r in out.items():
        print(name, lab.report(r))
    return out


def test_detector_bias_lowers_the_vertex_error(scored):
    b, n = scored["bias"]["err"], scored["bare"]["err"]
    # 3 views, unseen rig and identity, MediaPipe, 16 frames: measured face 2.86 mm, mouth 2.81 mm with the bias
    # (degree-4 view term, learned on the lid lines), the inner lips and lids on the model's lines and the mouth's
    # smoothing relief (FitSettings.mouth_relief; without it 2.87 / 2.85 mm) (3.03 / 3.21 mm
    # with the computed contours; the first, quadratic bias file: 3.08 / 3.02 mm) (bare correspondence 5.73 / 6.00
    # mm). Tolerances: face 3.5 mm, mouth 3.6 mm, at most 0.6x the bare fit's (measured 0.50x / 0.47x). The issue's
    # bars (2.0 / 2.5 mm) are not met on this short take: docs/fitting.md
    assert b["face"] < 0.0035 and b["mouth"] < 0.0036, b
    assert b["face"] < 0.6 * n["face"] and b["mouth"] < 0.6 * n["mouth"]


def test_smile_lip_corners_within_ten_percent(scored):
    r = scored["bias"]
    smile = r["segment"] == r["segments"].index("smile")
    t, f = r["mouth_truth"][smile, 1], r["mouth_fit"][smile, 1]
    rel = np.abs(f - t) / t
    # the bar: 10 % on every frame; measured max 0.08 (without the mouth relief 0.09; first bias file 0.08;
    # bare correspondence: 0.14)
    assert rel.max() <= 0.10, rel


def test_jitter_of_the_error_not_worse(scored):
    b, n = scored["bias"]["jitter_error"], scored["bare"]["jitter_error"]
    # second differences of (fit - truth), per region; the bar: no worse than the bare fit's (today's);
    # measured face 1.05 / 1.18, mouth 1.95 / 2.11, eyes 0.57 / 0.68 mm/frame^2 (bias / bare, both with the mouth's
    # smoothing relief; without it 1.08 / 1.20, 2.01 / 2.14, 0.59 / 0.70; with the bare fit's smoothing the bias gave
    # 1.21 / 1.92 / 0.85: hence its 2x smoothing)
    for k in ("face", "mouth", "eyes"):
        assert b[k] <= n[k], (k, b[k], n[k])


def test_mouth_opening_follows_the_lips(scored):
    # MediaPipe's inner lips and lids on the model's lines (the stage's default) against the computed correspondence
    # (lower inner lip on the upper lip): mean relative error of the mouth opening over the scream and smile frames
    def err(r):
        m = np.isin(r["segment"], [r["segments"].index("scream"), r["segments"].index("smile")])
        t, f = r["mouth_truth"][m, 0], r["mouth_fit"][m, 0]
        return float(np.mean(np.abs(f - t) / t))

    e, c = err(scored["bias"]), err(scored["computed"])
    print("opening mean rel err: edges", e, "computed", c)
    # measured 0.17 against 0.28 (without the mouth's smoothing relief 0.21 / 0.28; first bias file: 0.20 / 0.30)
    # (the bar, 10 % on every frame, is not met:
    # docs/fitting.md)
    assert e < 0.8 * c, (e, c)
