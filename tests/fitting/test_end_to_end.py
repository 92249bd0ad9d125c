"""End to end on a synthetic session: synth -> sync -> calibrate -> detect (MediaPipe on the rendered frames) ->
fit. The pipeline never sees ground truth; only this test reads ``<session>.truth`` to score the result."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session(tmp_path_factory, repo_root):
    from reconstruct.engine import run_pipeline
    from reconstruct.stage import RunConfig
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.rig import load_rig
    from reconstruct.synth.session import SynthSpec, generate_session

    root = tmp_path_factory.mktemp("e2e") / "take"
    generate_session(load_rig(repo_root / "rigs" / "test-small.toml"), root, SynthSpec(frames=4, seed=0, model="ict"))
    run_pipeline(RunConfig(session=root, device="cpu"), make_plugin_manager())
    return root


def test_mediapipe_finds_the_face_in_every_camera(session):
    rep = json.loads((session / "out" / "detect" / "report.json").read_text())
    for cam, r in rep["cameras"].items():
        assert r["no_face"] == [], f"no face in {cam} frames {r['no_face']}"
        assert r["faces"] >= 3  # 4 ticks; a witness may drop a frame
    assert rep["frames_without_any_face"] == []


def test_fit_vertex_error_against_truth(session, ict_model, face_region):
    from reconstruct.calibration.result import read_calibration
    from reconstruct.camera import CameraModel
    from reconstruct.fitting.result import load_fits
    from reconstruct.fitting.synthetic import vertex_error
    from reconstruct.session import Session

    s = Session.open(session)
    cal = read_calibration(s).cameras
    truth = session.with_name(session.name + ".truth")
    gt = {k: CameraModel.from_dict(dict(v, name=k)) for k, v in json.loads((truth / "cameras.json").read_text()).items()}
    fits = load_fits(s.stage_dir("fit") / "fits.npz")
    V = np.load(truth / "vertices.npz")["vertices"]
    h = s.rig.hero.name
    # calibration world (reference camera) -> truth world, through the hero camera of each
    to_gt = lambda X: ((X @ cal[h].R.T + cal[h].t) - gt[h].t) @ gt[h].R  # noqa: E731
    Vf = np.array([to_gt(v.astype(np.float64)) for v in fits.vertices])
    err = vertex_error(Vf, V[fits.frames], face_region)
    rep = json.loads((s.stage_dir("fit") / "report.json").read_text())
    print(f"end-to-end vertex error {1e3 * err:.2f} mm; fit report {rep}")
    # tolerance 12 mm; measured 5.0 mm (test-small rig, 4 frames). MediaPipe points on rendered faces vs. the computed
    # correspondence differ by ~5.6 px in the 640x480 hero view; the 1 mm target holds for the fitter itself
    # (test_accuracy.py), not for this detector-limited chain.
    assert err < 0.012
    assert all(v is None or v < 15 for v in rep["residual_px"].values())
    assert (s.stage_dir("fit") / "overlay.png").exists() and len(list((s.stage_dir("fit") / "meshes").glob("*.ply"))) == 4


def test_frame_without_face_is_reported_and_skipped(session):
    """Blank every camera's frame of one frame set: detect records it, fit skips it, says so, and goes on."""
    import cv2

    from reconstruct.engine import run_pipeline

    from reconstruct.stage import RunConfig
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.session import Session

    s = Session.open(session)
    fs = s.read_sync()[1]
    for cam, idx in fs.indices.items():
        if idx is None:
            continue
        rec = {r.index: r for r in s.frames(cam)}[idx]
        path = s.camera_dir(cam) / rec.file
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(path), np.full_like(img, 90))
    run_pipeline(RunConfig(session=session, device="cpu", from_stage="detect"), make_plugin_manager())
    det = json.loads((session / "out" / "detect" / "report.json").read_text())
    assert det["frames_without_any_face"] == [fs.frame]
    assert any(fs.frame in r["no_face"] for r in det["cameras"].values())
    rep = json.loads((session / "out" / "fit" / "report.json").read_text())
    assert rep["skipped_frames"] == [fs.frame] and rep["valid_frames"] == rep["frames"] - 1
