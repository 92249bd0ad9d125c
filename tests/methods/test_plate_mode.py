"""digital_human's plate mode on a synthetic take with a *known* young identity: the warped plate moves toward a
render of the young identity with the same performance, and stays a photograph of the plate (measures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "reconstruct.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """A synthetic take, young stills of a known young identity, and two runs of the plate mode: with the young
    identity estimated from the stills (plates copied to ``estimated/``), then with it given (identity.npy)."""
    import shutil

    from reconstruct.synth import load_truth
    from reconstruct.synth.young import render_young_refs

    tmp = tmp_path_factory.mktemp("plate")
    root = tmp / "take"
    _cli("synth", ROOT / "rigs" / "test-small.toml", root, "--frames", "6", "--model", "ict", "--seed", "4",
         "--calib-poses", "20", cwd=tmp)
    # the young actor: the performer with a clearly different overall face shape (the leading identity modes),
    # so that the change is measurable on a 640x480 hero
    young = np.array(load_truth(root).identity, np.float64)
    young[:3] += (2.5, -2.0, 1.5)
    refs = render_young_refs(root, root / "young-refs", stills=4, seed=7, identity=young)
    _cli("consent", "add", root, "--performer", "Synth", "--reference", "synthetic young stills", "--granted-by",
         "Synth", "--date", "2026-12-05", "--scope", "digital_human,fran", cwd=tmp)
    _cli("run", root, "--method", "digital_human", "--young-refs", refs, cwd=tmp)
    shutil.copytree(root / "out" / "plates" / "digital_human", tmp / "estimated")
    shutil.copyfile(root / "out" / "report" / "measures.json", tmp / "estimated" / "measures.json")
    np.save(tmp / "young.npy", young)
    _cli("run", root, "--method", "digital_human", "--young-refs", refs, "--option",
         f"digital_human.identity={tmp / 'young.npy'}", cwd=tmp)
    return root, young, tmp / "estimated"


def _young_renders(root: Path, young: np.ndarray, plates_dir: Path | None = None):
    """Frame -> (plate, result, render of the young identity with the frame's true expression and pose)."""
    from reconstruct.artifacts.plates import plate_paths, read_plate
    from reconstruct.face.store import load_model_by_name
    from reconstruct.render.raycast import RaycastRenderer
    from reconstruct.session import Session
    from reconstruct.synth import load_truth
    from reconstruct.synth.imaging import render_view
    from reconstruct.synth.scene import HeadState

    s = Session.open(root)
    truth = load_truth(root)
    model = load_model_by_name(truth.meta["model"])
    hero = s.rig.hero
    plates = plate_paths((plates_dir or s.method_plates("digital_human")) / hero.name)
    out = {}
    for fs in s.read_sync():
        rec = s.frame_record(hero.name, fs.indices.get(hero.name))
        if rec is None or fs.frame not in plates:
            continue
        t = rec.tick
        state = HeadState(identity=young, expression=truth.expression[t], R=truth.R[t], t=truth.t[t])
        gt = render_view(RaycastRenderer(), model, state, truth.cameras[hero.name], hero, np.random.default_rng(t))
        out[fs.frame] = (s.read_image(hero.name, rec), read_plate(plates[fs.frame]), gt)
    return out


def _progress(renders) -> tuple[float, float, float]:
    """(mean landmark progress from the plate to the young render, face PSNR plate->young, result->young)."""
    import cv2

    from deage_plugins.landmarks import MediaPipeFaceMesh

    det = MediaPipeFaceMesh()
    progress, psnr_plate, psnr_result = [], [], []
    for f, (plate, result, gt) in renders.items():
        P, O, Y = (det.detect(x) for x in (plate, result, gt))
        assert P is not None and O is not None and Y is not None, f"frame {f}: no face found"
        P, O, Y = P[0][:468], O[0][:468], Y[0][:468]
        need = np.linalg.norm(Y - P, axis=1)
        sel = need > 1.5  # landmarks the young shape really moves (px)
        progress.append(float(np.mean(1 - np.linalg.norm(Y - O, axis=1)[sel] / need[sel])))
        face = np.zeros(plate.shape[:2], np.uint8)
        cv2.fillConvexPoly(face, cv2.convexHull(np.concatenate([P, Y]).astype(np.float32)).astype(np.int32), 1)
        face = face.astype(bool)
        for img, acc in ((plate, psnr_plate), (result, psnr_result)):
            err = np.mean((img[face].astype(np.float64) - gt[face].astype(np.float64)) ** 2)
            acc.append(10 * np.log10(255.0 ** 2 / err))
    return float(np.mean(progress)), float(np.mean(psnr_plate)), float(np.mean(psnr_result))


def test_the_warp_moves_the_face_toward_the_young_identity(take):
    """With the young identity known (given to the method), the warped plate moves the landmarks >= 60 % of the
    way to a render of the young identity with the same performance and gets closer to it (PSNR)."""
    root, young, _ = take
    progress, p_plate, p_result = _progress(_young_renders(root, young))
    print(f"plate mode, young identity given: landmark progress {progress:.3f}; face PSNR to the young render: "
          f"plate {p_plate:.2f} dB, result {p_result:.2f} dB")
    assert progress >= 0.6  # issue 14's bar
    assert p_result > p_plate


def test_the_young_shape_estimated_from_stills_moves_the_right_way(take):
    """The young identity estimated from the stills (landmarks only, 10 modes) moves the face toward the young
    render, but only part of the way: measured, not hidden (docs/methods/digital_human.md)."""
    root, young, estimated = take
    progress, p_plate, p_result = _progress(_young_renders(root, young, estimated))
    print(f"plate mode, young identity from stills: landmark progress {progress:.3f}; face PSNR to the young "
          f"render: plate {p_plate:.2f} dB, result {p_result:.2f} dB")
    assert progress > 0.0 and p_result > p_plate


def test_the_result_stays_a_photograph_of_the_plate(take):
    """The measures of the QC report on the estimated run (a realistic shape change): issue 14's bars."""
    root, _, estimated = take
    m = json.loads((estimated / "measures.json").read_text())["digital_human"]["summary"]
    print(f"plate mode measures (synthetic take, young shape from stills): {m}")
    assert m["frames"] == 6
    assert m["expression_iod_pct_mean"] <= 2.0 and m["expression_iod_pct_worst"] <= 4.0
    assert m["detail_ratio"] >= 0.85 and m["dark_pct_worst"] <= 0.2
    assert m["age_features_reduced"] >= 0.30 and m["flicker_ratio"] <= 1.0
    flags = json.loads((root / "out" / "report" / "flags.json").read_text())
    assert not any("seams" in v for v in flags["flagged"].values())


def test_fran_trains_on_plate_mode_pairs_and_the_report_compares_the_methods(take):
    """FRAN learns from the take itself (real plates in, plate-mode results out), runs, keeps its own plates beside
    digital_human's, and the QC report measures both side by side."""
    root, _, _ = take
    tmp = root.parent
    r = _cli("train", "fran", root, "--pairs", "plate", "--young", root / "young-refs", "--steps", "20",
             "--size", "64", "--crop", "64", "--width", "8", "--depth", "3", "--holdout", "1",
             "--checkpoint-every", "10", "--preview-every", "20", cwd=tmp)
    assert "checkpoint:" in r.stdout
    _cli("run", root, "--method", "fran", "--option", "fran.window=64", "--option", "fran.stride=32", cwd=tmp)
    plates = root / "out" / "plates"
    assert (plates / "fran" / "hero").is_dir() and (plates / "digital_human" / "hero").is_dir()
    measures = json.loads((root / "out" / "report" / "measures.json").read_text())
    assert set(measures) == {"fran", "digital_human"}
    assert measures["fran"]["summary"]["frames"] == measures["digital_human"]["summary"]["frames"] == 6
    print("side by side:", {m: v["summary"] for m, v in measures.items()})
    page = (root / "out" / "report" / "report.html").read_text()
    assert '<section id="methods">' in page and "digital_human" in page and "fran" in page
