"""digital_human's still fits of the take's plates take the plates' landmarks from the detect stage (issue 16):
the same detector, built the same way, on the same hero images, found them already -- MediaPipe is neither
imported nor run again in the age stage's preparation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """A synthetic 6-frame take run through the fit stage (its detect stage ran MediaPipe on every view)."""
    tmp = tmp_path_factory.mktemp("plate_lm")
    root = tmp / "take"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args in (("synth", ROOT / "rigs" / "test-small.toml", root, "--frames", "6", "--model", "ict", "--seed", "4",
                  "--calib-poses", "20"), ("run", root)):
        r = subprocess.run([sys.executable, "-m", "reconstruct.cli", *map(str, args)], capture_output=True,
                           text=True, cwd=tmp, env=env, timeout=1200)
        assert r.returncode == 0, r.stderr[-3000:]
    return root


def _context(root: Path, options=None):
    from reconstruct.methods import method_context
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.progress import NullProgress
    from reconstruct.session import Session

    components = make_plugin_manager().components()
    return method_context(Session.open(root), "digital_human", device="cpu", progress=NullProgress(),
                          components=components, options=options or {})


def test_the_detect_stage_found_what_the_detector_finds_on_the_plates(take):
    from deage_plugins.digital_human.stills import detected_plate_landmarks, plate_stills
    from deage_plugins.landmarks import MediaPipeFaceMesh

    mctx = _context(take)
    stills = plate_stills(mctx)
    stored = detected_plate_landmarks(mctx, stills, MediaPipeFaceMesh)
    assert stored is not None and len(stored) == len(stills) == 6
    det = MediaPipeFaceMesh()
    try:
        for (name, img, _), got in zip(stills, stored):
            want = det.detect(img)
            assert (got is None) == (want is None), name
            if want is not None:  # bit for bit: the same numbers as running the detector here
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
    finally:
        det.close()


def test_a_detector_built_otherwise_or_not_recorded_falls_back_to_detecting(take, monkeypatch):
    """The detect stage records how it built its detector (``Detections.detector_options``); the method takes the
    plates' landmarks from it only when that detector was built as the method builds its own (no options) --
    one source of truth, the detect stage's own ``DetectSettings.detector_kwargs()``, instead of a list of
    ``detect.*`` options kept beside it. A result written before the record: the method detects (safe)."""
    from dataclasses import replace

    from deage_plugins.digital_human.stills import detected_plate_landmarks, plate_stills
    from deage_plugins.landmarks import MediaPipeFaceMesh
    from reconstruct.artifacts import Detections
    from reconstruct.artifacts.detections import FILE

    mctx = _context(take)
    stills = plate_stills(mctx)
    real = Detections.load(mctx.session.stage_dir("detect") / FILE)
    assert real.detector_options == {}  # the stage built its detector with its defaults, and said so
    assert detected_plate_landmarks(mctx, stills, MediaPipeFaceMesh) is not None
    for options in ({"crop_px": 256}, {"yunet": "none"}, None):  # None: a session detected before the record
        monkeypatch.setattr(Detections, "load", classmethod(lambda cls, path, o=options: replace(real,
                                                                                          detector_options=o)))
        assert detected_plate_landmarks(mctx, stills, MediaPipeFaceMesh) is None, options
    monkeypatch.undo()

    class Other(MediaPipeFaceMesh):
        name = "other"

    assert detected_plate_landmarks(mctx, stills, Other) is None


def test_the_detector_options_are_kept_in_the_file(tmp_path):
    """Saved and loaded with the landmarks; a file without them (written before) loads with None."""
    from dataclasses import replace

    from reconstruct.artifacts import Detections

    det = Detections(np.arange(2, dtype=np.int32), ("hero",), np.zeros((2, 1, 5, 2), np.float32),
                     np.ones((2, 1, 5), np.float32), np.ones((2, 1), bool), "ibug68", "x",
                     detector_options={"crop_px": 256, "yunet": "none"})
    det.save(tmp_path / "a.npz")
    assert Detections.load(tmp_path / "a.npz").detector_options == {"crop_px": 256, "yunet": "none"}
    assert det.select(rows=[1]).detector_options == det.detector_options
    replace(det, detector_options=None).save(tmp_path / "old.npz")
    with np.load(tmp_path / "old.npz") as d:
        assert "detector_options" not in d.files  # the layout of a file written before the record
    assert Detections.load(tmp_path / "old.npz").detector_options is None


@pytest.mark.parametrize("calibrated", [False, True])
def test_the_performer_fits_run_no_detector(take, monkeypatch, calibrated):
    from deage_plugins.digital_human import young
    from deage_plugins.digital_human.method import DigitalHumanMethod, DigitalHumanSettings
    from deage_plugins.digital_human.stills import plate_stills

    mctx = _context(take)
    method = DigitalHumanMethod()
    method.model = mctx.components.face_model(mctx.fits.model_name)
    st = DigitalHumanSettings(shape_modes=4)
    stills = plate_stills(mctx, calibrated=calibrated)
    # the reference: the plates' landmarks found by the detector, as before
    want = young.stills_identity(method.model, stills, mctx.components, n_identity=4, each=True)[:, :4]

    def no_detector(*a, **k):
        raise AssertionError("a landmark detector was built for the take's plates")

    monkeypatch.setattr(young, "pick_detector", no_detector)
    if calibrated:  # seen through the calibrated hero camera: the plates' pixels are not needed at all
        def no_read(*a, **k):
            raise AssertionError("a plate was read")

        monkeypatch.setattr(type(mctx.session), "read_image", no_read)
    for old in mctx.work_dir.glob("performer-*.npy"):  # fitted here, not read from a cache
        old.unlink()
    got = method._stills_identities(mctx, st, "performer",
                                    lambda images=True: plate_stills(mctx, calibrated=calibrated, images=images),
                                    calibrated, plates=True)
    np.testing.assert_array_equal(got, want)


def test_the_cold_preparation_is_one_batch_on_the_workers(take, tmp_path, monkeypatch):
    """Cold (no cache anywhere), the young asset's build and the per-still identity fits (the young stills' and the
    plates') go to the run's workers as one batch, so that both cores work (issue 16; before, the asset was built
    in the driver alone, then the two sets of fits were two batches), and the preparation gives what it gives in
    process, bit for bit: identity, albedo, report, the young shape change."""
    from dataclasses import replace

    from deage_plugins.digital_human.method import DigitalHumanMethod
    from reconstruct.synth.young import render_young_refs

    sys.path.insert(0, str(Path(__file__).parent))
    from test_dh_parallel_fits import Recording

    refs = render_young_refs(take, tmp_path / "young", stills=3, size=320)
    mctx = _context(take, {"digital_human.young_refs": str(refs)})
    monkeypatch.setenv("DEAGE_METHOD_CACHE_DIR", str(tmp_path / "shared-here"))
    here = DigitalHumanMethod()
    here.prepare(replace(mctx, work_dir=tmp_path / "here", executor=None))
    monkeypatch.setenv("DEAGE_METHOD_CACHE_DIR", str(tmp_path / "shared-there"))
    ex = Recording(mctx.components)
    there = DigitalHumanMethod()
    try:
        there.prepare(replace(mctx, work_dir=tmp_path / "there", executor=ex))
    finally:
        ex.close()
    assert ex.calls == [("prepare_work", 1 + 3 + 6)]  # the asset, 3 young stills, 6 plates: one batch
    np.testing.assert_array_equal(there.identity, here.identity)
    np.testing.assert_array_equal(there.texture, here.texture)
    np.testing.assert_array_equal(there.shift, here.shift)
    assert there.report == here.report and here.report["shape"]["young_stills"] == 3
    assert np.abs(here.identity).max() > 0.05 and here.texture.std() > 0.01  # real fits (measured 4.38, 0.141)
