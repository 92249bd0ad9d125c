"""The fit on real footage, one view: ../shared/data/faces/obama_address (512x512), 40 frames, guessed pinhole
calibration (tools/one_view_session.py). Scored by the detector's own landmarks: mouth and eye-lid residuals in %
of the inter-ocular distance, the QC report's stiff-expression test on the fitted landmarks, the gaze range.
Skips without the shared data."""

import importlib.util
import json

import numpy as np
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _stiff_flags(root, model, bias):
    """Frames the QC report's stiff-expression test flags between the detected and the fitted landmarks."""
    from reconstruct.artifacts import Detections
    from reconstruct.artifacts.detections import FILE
    from reconstruct.fitting.fit import fitted_landmarks
    from reconstruct.fitting.result import load_fits
    from reconstruct.report import flags
    from reconstruct.report.data import LANDMARK_GROUPS
    from reconstruct.session import Session

    s = Session.open(root)
    det = Detections.load(s.stage_dir("detect") / FILE)
    fits = load_fits(s.stage_dir("fit") / "fits.npz")
    cam = s.cameras()["hero"]
    W = fitted_landmarks(model, det.scheme, fits.identity, fits.expression, fits.R, fits.t, bias, cam)
    O = cam.project(W.reshape(-1, 3)).reshape(W.shape[:2] + (2,))
    rows = [list(det.frames).index(f) for f in fits.frames]
    P = det.points[rows, 0].astype(np.float64)
    g = LANDMARK_GROUPS[det.scheme]
    iod = np.linalg.norm(P[:, g["iod_left"]].mean(1) - P[:, g["iod_right"]].mean(1), axis=-1)
    return flags.stiff_expression(P[:, :468], O[:, :468], g["align"], g["expression"], iod, fits.frames).flagged


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory, ict_model):
    from reconstruct.engine import run_pipeline
    from reconstruct.face.detector_bias import builtin_bias
    from reconstruct.fitting.lip_anchor import anchor_inner_lips
    from reconstruct.fitting.pipeline import ensure_scheme
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.stage import RunConfig

    frames = shared_data / "faces" / "obama_address" / "frames"
    root = _tool("one_view_session").make_one_view_session(frames, tmp_path_factory.mktemp("obama") / "take",
                                                           count=40)
    pm = make_plugin_manager()
    model = ensure_scheme(ict_model, "mediapipe478")
    out = {}
    for name, opts in (("bare", {"fit.bias": "none", "fit.gaze_prior": "false"}), ("default", {})):
        run_pipeline(RunConfig(session=root, options=opts, from_stage="fit" if out else None), pm)
        rep = json.loads((root / "out" / "fit" / "report.json").read_text())
        bias = builtin_bias(model, "mediapipe478").for_views(1) if name == "default" else None
        m, bias = anchor_inner_lips(model, "mediapipe478", bias)  # the stage's default (fit.lips=edges)
        out[name] = (rep, _stiff_flags(root, m, bias))
        print(name, json.dumps(rep["landmarks"]), rep["gaze"], "stiff flags", list(out[name][1]))
    return out


def test_mouth_and_eye_residuals(runs):
    lm = runs["default"][0]["landmarks"]["hero"]
    bare = runs["bare"][0]["landmarks"]["hero"]
    mouth, eyes = lm["mouth"]["iod_percent"], lm["eyes"]["iod_percent"]
    # measured (40 frames) mouth 1.65 %, eyes 1.11 % of the IOD with the detector bias (one view: without its
    # identity term; its 2x smoothing), the inner lips and lids on the model's lines (fit.lips / fit.lids=edges;
    # 2.14 / 2.47 % with the computed contours) and the mouth's smoothing relief where the detected mouth moves fast
    # (FitSettings.mouth_relief; without it 1.74 / 1.10 %). The bar is 1.5 % on average: met for the lids,
    # not the mouth (190 frames: 1.59 / 1.24 %, docs/fitting.md). Tolerances 1.8 / 1.5 %
    assert mouth < 1.8 and eyes < 1.5, lm
    assert mouth < 0.8 * bare["mouth"]["iod_percent"] and eyes < 0.8 * bare["eyes"]["iod_percent"]


def test_no_stiff_expression_flags(runs):
    # measured 0 flagged frames of 40 with the bias (the first bias file: 1; bare correspondence: 9); tolerance 1.
    # On all 190 frames: 0 with the mouth's smoothing relief, 1 (frame 68) without (docs/fitting.md)
    assert len(runs["default"][1]) <= 1


def test_gaze_within_a_plausible_range(runs):
    g = runs["default"][0]["gaze"]
    yaw, pitch = np.ptp(g["yaw_deg"]), np.ptp(g["pitch_deg"])
    # a speaker reading to camera: measured ranges yaw 9.4, pitch 6.5 deg with the gaze prior (without the mouth's
    # smoothing relief 8.9 / 7.6; first bias file 8.2 / 6.9; bare fit, per frame, no prior: 21.5 / 20.5 deg);
    # tolerance 12 deg each
    assert yaw < 12 and pitch < 12, g
    assert max(abs(v) for v in g["yaw_deg"] + g["pitch_deg"]) < 30
