"""Photometric refinement (``--option fit.photometric=1``) on a synthetic session: the same frames scored against
ground truth with and without it. The pipeline never sees ground truth; only the scoring here reads it."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _vertex_error(root, face_region):
    from reconstruct.calibration.result import read_calibration
    from reconstruct.fitting.result import load_fits
    from reconstruct.session import Session
    from reconstruct.synth.session import load_truth

    s = Session.open(root)
    cal = read_calibration(s).cameras
    truth = load_truth(root)
    gt = truth.cameras
    fits = load_fits(s.stage_dir("fit") / "fits.npz")
    h = s.rig.hero.name
    # calibration world (reference camera) -> truth world, through the hero camera of each
    to_gt = lambda X: ((X @ cal[h].R.T + cal[h].t) - gt[h].t) @ gt[h].R  # noqa: E731
    Vf = np.array([to_gt(v.astype(np.float64)) for v in fits.vertices])
    e = np.linalg.norm(Vf - truth.vertices[fits.frames], axis=-1)[:, face_region].mean(axis=1)
    rep = json.loads((s.stage_dir("fit") / "report.json").read_text())
    return e, rep


def test_photometric_refinement_lowers_vertex_error(tmp_path, repo_root, ict_model, face_region):
    from reconstruct.engine import run_pipeline
    from reconstruct.stage import RunConfig
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.rig import load_rig
    from reconstruct.synth.session import SynthSpec, generate_session

    root = tmp_path / "take"
    generate_session(load_rig(repo_root / "rigs" / "test-small.toml"), root, SynthSpec(frames=4, seed=0, model="ict"))
    pm = make_plugin_manager()
    # the refinement's own effect, on the landmark fit with the bare correspondence (no learned detector bias)
    bare = {"fit.bias": "none"}
    run_pipeline(RunConfig(session=root, device="cpu", options=bare), pm)
    e0, rep0 = _vertex_error(root, face_region)
    run_pipeline(RunConfig(session=root, device="cpu", from_stage="fit", options={**bare, "fit.photometric": "1"}), pm)
    e1, rep = _vertex_error(root, face_region)
    print(f"vertex error per frame (mm): landmark fit {np.round(1e3 * e0, 2)}, photometric {np.round(1e3 * e1, 2)}")
    # tolerance: at least 0.2 mm lower on average; measured 5.21 -> 4.62 mm (seed 0, 4 frames, test-small rig)
    assert e1.mean() < e0.mean() - 0.0002
    # tolerance: no frame more than 0.1 mm worse; measured every frame 0.5-0.7 mm better
    assert np.all(e1 < e0 + 0.0001)
    # tolerance: jitter at most 1.2x the landmark fit's; measured 0.27 -> 0.27 mm/frame^2 (corrections smoothed)
    assert rep["jitter_mm_per_frame2"] <= 1.2 * rep0["jitter_mm_per_frame2"]
    # tolerance 8 px: the weak landmark prior keeps the refined fit near the detections; measured RMS 1.2-1.9 px
    # after the landmark fit and 2.2-4.6 px after refinement (the detections themselves are biased by ~5 px)
    assert all(v is not None and v < 8 for v in rep["residual_px"].values())

    # the default fit (the shipped detector bias) beats the refinement: measured 1.90 mm (bias) against 4.6 mm
    # (photometric, bare correspondence) and 5.2 mm (bare); tolerance: below 3 mm and below the refinement's
    run_pipeline(RunConfig(session=root, device="cpu", from_stage="fit"), pm)
    e2, _ = _vertex_error(root, face_region)
    print(f"vertex error per frame (mm), landmark fit with the detector bias: {np.round(1e3 * e2, 2)}")
    assert e2.mean() < min(0.003, e1.mean())
