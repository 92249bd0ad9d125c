"""Deepfake autoencoder on procedural synthetic footage of two identities (reconstruct/training/synthetic_faces.py:
IDENTITY_A, pale with a wide face, as the "now" actor; IDENTITY_B, dark skin and a long face, as the "young"
references). These are 2D drawings, not real people. Bounds are written beside the values measured on CPU."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deage_plugins.deepfake.data import extract_crops, template_face_mask
from deage_plugins.deepfake.merge import colour_transfer, shape_mask, swap_crop
from deage_plugins.deepfake.method import DeepfakeMethod
from deage_plugins.deepfake.train import DeepfakeSettings, DeepfakeTask
from reconstruct.errors import MethodError
from reconstruct.methods import MethodContext
from reconstruct.progress import NullProgress
from reconstruct.training import TrainSettings, run_training
from reconstruct.training.synthetic_faces import IDENTITY_A, IDENTITY_B, footage

sys.path.insert(0, str(Path(__file__).parent))  # fit_scene.py beside this file
from fit_scene import demo_frame, method_ctx  # noqa: E402

SIZE = 32
SETTINGS = DeepfakeSettings(size=SIZE, width=16, latent=128, batch=8, lr=1e-3, w_perceptual=0.0, warp=0.5,
                            coverage=1.4, holdout=8)


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def crops(identity, seed, age, frames=48):
    shot = footage(identity, frames, 96, age, seed)
    return extract_crops(((str(i), f.image, f.points5) for i, f in enumerate(shot)), SIZE, SETTINGS.coverage,
                         "synthetic", masks=[f.face_mask for f in shot]), shot


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("deepfake")
    (a, shot_a), (b, _) = crops(IDENTITY_A, 1, 65), crops(IDENTITY_B, 2, 25)
    (a_tr, a_va), (b_tr, b_va) = a.split(SETTINGS.holdout), b.split(SETTINGS.holdout)
    task = DeepfakeTask(SETTINGS, a_tr, b_tr, val_now=a_va, val_young=b_va)
    before = task.validate()
    result = run_training(task, TrainSettings(steps=250, seed=0, checkpoint_every=0, preview_every=0, log_every=50),
                          out, meta=SETTINGS.meta())
    task.model.eval()
    return dict(out=out, before=before, result=result, task=task, a_va=a_va, b_va=b_va, shot_a=shot_a)


def test_reconstruction_beats_the_untrained_model(trained):
    before, after = trained["before"], trained["result"].validation
    print(f"deepfake held-out PSNR before {before} after {after} ({trained['result'].seconds:.0f} s)")
    # held-out frames (last 8 of each shot): measured now 15.3 -> 26.5 dB, young 14.5 -> 25.0 dB after 250 CPU
    # steps (37 s on a loaded 2-core machine); bound: +6 dB on both sides
    for side in ("now", "young"):
        assert after[f"val_psnr_{side}"] > before[f"val_psnr_{side}"] + 6.0, (before, after)


def embedding(crop: np.ndarray) -> np.ndarray:
    """Fixed identity embedding: the 8x8 RGB thumbnail of the template face region (no learning involved)."""
    m = template_face_mask(SIZE, SETTINGS.coverage)[..., None]
    return cv2.resize(crop * m, (8, 8), interpolation=cv2.INTER_AREA).ravel()


def test_swapped_output_is_closer_to_identity_b(trained):
    task, a_va, b_va = trained["task"], trained["a_va"], trained["b_va"]
    proto_a = np.mean([embedding(c) for c in a_va.images], 0)  # held-out real crops of each identity
    proto_b = np.mean([embedding(c) for c in b_va.images], 0)
    d_a, d_b = [], []
    for crop in a_va.images:  # A's held-out frames through the young (B) decoder, no colour transfer
        rgb, _ = swap_crop(task.model, crop, "young")
        e = embedding(rgb)
        d_a.append(np.linalg.norm(e - proto_a))
        d_b.append(np.linalg.norm(e - proto_b))
    d_a, d_b = np.array(d_a), np.array(d_b)
    print(f"identity distance of swaps: to A {d_a.mean():.3f}, to B {d_b.mean():.3f} "
          f"(A-B prototype distance {np.linalg.norm(proto_a - proto_b):.3f})")
    # measured mean distance to A 1.83 vs to B 0.28 (prototypes 2.09 apart); bound: every held-out swap closer
    # to B, and the mean distance to B at most half that to A
    assert (d_b < d_a).all(), (d_a, d_b)
    assert d_b.mean() < 0.5 * d_a.mean()


def _method(out, **opts) -> DeepfakeMethod:
    m = DeepfakeMethod()
    ctx = MethodContext(session=None, options={f"deepfake.{k}": v for k, v in opts.items()}, device="cpu",
                        work_dir=out, progress=NullProgress(), components=None)
    m.prepare(ctx)
    return m


@pytest.mark.parametrize("colour", ["none", "mean-std", "histogram"])
def test_merge_pastes_the_swap_back_into_the_plate(trained, colour):
    f = trained["shot_a"][-1]
    plate = (f.image * 255).round().astype(np.uint8)
    edit = _method(trained["out"], colour=colour, erode=1, blur=1.5).edit(7, plate, f.points5)
    assert edit.kind == "image" and edit.image.shape == (96, 96, 3) and edit.mask.shape == (96, 96)
    assert edit.info["colour"] == colour
    outside = edit.mask == 0
    assert outside.any() and (edit.mask > 0.9).any()
    np.testing.assert_allclose(edit.image[outside], plate[outside] / 255.0, atol=1e-6)  # plate where unmasked
    face = f.face_mask > 0.5
    inside_mask = edit.mask[face].mean()
    assert inside_mask > 0.5  # the learned mask covers the face: mean inside the drawn face measured 0.71


def test_colour_transfer_modes():
    rng = np.random.default_rng(0)
    src = rng.uniform(0.2, 0.5, (32, 32, 3)).astype(np.float32)
    ref = rng.uniform(0.4, 0.9, (32, 32, 3)).astype(np.float32)
    mask = np.ones((32, 32), np.float32)
    assert colour_transfer(src, ref, mask, "none") is src
    lab = lambda x: cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2Lab).reshape(-1, 3)  # noqa: E731
    out = colour_transfer(src, ref, mask, "mean-std")
    np.testing.assert_allclose(lab(out).mean(0), lab(ref).mean(0), atol=0.5)  # Lab units (L in 0..100)
    np.testing.assert_allclose(lab(out).std(0), lab(ref).std(0), rtol=0.05)
    h = colour_transfer(src, ref, mask, "histogram")
    for c in range(3):
        np.testing.assert_allclose(np.quantile(h[..., c], [0.1, 0.5, 0.9]), np.quantile(ref[..., c], [0.1, 0.5, 0.9]),
                                   atol=0.01)
    with pytest.raises(MethodError, match="unknown colour"):
        colour_transfer(src, ref, mask, "sepia")


def test_mask_erode_and_blur():
    m = np.zeros((40, 40), np.float32)
    m[10:30, 10:30] = 1
    e = shape_mask(m, 3, 0)
    assert e.sum() == pytest.approx(14 * 14)  # 3 px off each side
    b = shape_mask(m, 0, 2.0)
    assert 0 < b[10, 20] < 1 and b[20, 20] == pytest.approx(1, abs=1e-3)


def test_settings_and_untrained_method(tmp_path):
    with pytest.raises(MethodError, match="multiple of 16"):
        DeepfakeSettings(size=40).check()
    with pytest.raises(MethodError, match="colour"):
        DeepfakeSettings.from_mapping({"deepfake.colour": "sepia"}, prefix="deepfake.")
    assert DeepfakeMethod.identity_changing is True
    ctx = MethodContext(session=type("S", (), {"root": tmp_path})(), options={}, device="cpu", work_dir=tmp_path,
                        progress=NullProgress(), components=None)
    with pytest.raises(MethodError, match="reconstruct train deepfake"):
        DeepfakeMethod().prepare(ctx)


def test_apply_finds_the_face_from_the_fit(trained):
    """The age-stage path: landmarks from the fit (demo model's iBUG-68 map projected through the hero camera).
    The plate is a flat painted face the network never saw: this checks placement, not the swap's quality."""
    from reconstruct.training.align import align_matrix, five_points, template, warp_to_plate
    from reconstruct.training.facepoints import fit_landmarks

    m = DeepfakeMethod()
    ctx = method_ctx(trained["out"], {"deepfake.colour": "mean-std"})
    m.prepare(ctx)
    frame, face = demo_frame(shift=(-0.015, 0.01))
    edit = m.apply(ctx, frame)
    assert edit.image.shape == frame.plate.shape and edit.mask.shape == face.shape
    p68 = fit_landmarks(ctx.components, frame.fit, frame.hero, "demo")
    M = align_matrix(p68, SIZE, SETTINGS.coverage)
    res = np.abs(five_points(p68) @ M[:, :2].T + M[:, 2] - template(SIZE, SETTINGS.coverage)).max()
    region = warp_to_plate(np.ones((SIZE, SIZE), np.float32), M, face.shape) > 0
    print(f"deepfake alignment residual {res:.2f} crop px; projected face inside the crop: {region[face].mean():.3f}")
    # the fit's landmarks fit the 5-point template (measured residual 0.75 crop px; a mirrored or flipped landmark
    # order would not fit a similarity) and the crop holds the whole projected face (measured 100 %)
    assert res < 1.5 and region[face].mean() > 0.99
    assert (edit.mask[~region] == 0).all() and (edit.mask > 0.5).any()
    keep = edit.mask == 0
    np.testing.assert_allclose(edit.image[keep], frame.plate[keep] / 255.0, atol=1e-6)


def test_young_folder_with_points_json_and_bad_folders(tmp_path):
    import json

    from reconstruct.training.facepoints import iter_folder_faces

    shot = footage(IDENTITY_B, 3, 64, 25, seed=4)
    pts = {}
    for i, f in enumerate(shot):
        cv2.imwrite(str(tmp_path / f"{i}.png"), cv2.cvtColor((f.image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        pts[f"{i}.png"] = f.points5.tolist()
    (tmp_path / "points.json").write_text(json.dumps(pts))
    faces = list(iter_folder_faces(tmp_path))
    assert [n for n, _, _ in faces] == ["0.png", "1.png", "2.png"]
    c = extract_crops(faces, SIZE, SETTINGS.coverage, str(tmp_path))
    assert c.images.shape == (3, SIZE, SIZE, 3) and c.masks.shape == (3, SIZE, SIZE)
    # 5-point landmarks: the mask target is the template face ellipse, identical for every crop
    assert np.array_equal(c.masks[0], template_face_mask(SIZE, SETTINGS.coverage))
    (tmp_path / "3.png").write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    with pytest.raises(MethodError, match="no landmark detector"):
        list(iter_folder_faces(tmp_path))  # 3.png has no points and no detector was given
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MethodError, match="no images"):
        list(iter_folder_faces(empty))
    with pytest.raises(MethodError, match="does not exist"):
        list(iter_folder_faces(tmp_path / "missing"))
