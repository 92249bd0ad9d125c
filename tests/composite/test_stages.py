"""The render and composite stages (and the digital_human method through the age stage) on a session prepared
with known fits: a synthetic hero plate of the built-in demo model, calibration and fits written directly, and
young stills of another identity. Detection is a stand-in that returns the stills' true landmarks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reconstruct import hookimpl
from reconstruct.camera import CameraModel
from reconstruct.engine import run_pipeline
from reconstruct.session import STAGE_FILE
from reconstruct.stage import RunConfig
from reconstruct.fitting.result import FitSequence, save_fits
from reconstruct.methods import BaseMethod, FaceEdit
from reconstruct.plugins import make_plugin_manager
from reconstruct.rig import load_rig
from reconstruct.session import ConsentRecord, FrameRecord, FrameSet, Session, atomic_write_json

ROOT = Path(__file__).resolve().parents[2]
TRUTH: dict[bytes, np.ndarray] = {}


class TruthDetector:
    name, scheme, priority = "truth68", "ibug68", 100

    def detect(self, image):
        pts = TRUTH.get(np.ascontiguousarray(image).tobytes())
        return None if pts is None else (pts, np.ones(len(pts)))


class SquareEdit(BaseMethod):
    """Test method: an image edit (a grey square)."""

    name = "square"

    def apply(self, ctx, frame):
        h, w = frame.plate.shape[:2]
        img = np.full((h, w, 3), 0.5, np.float32)
        mask = np.zeros((h, w), np.float32)
        mask[h // 4:h // 2, w // 4:w // 2] = 1
        return FaceEdit(frame=frame.frame, kind="image", image=img, mask=mask)


class TestPlugin:
    @hookimpl
    def register_landmark_detectors(self):
        return [TruthDetector]

    @hookimpl
    def register_aging_methods(self):
        return [SquareEdit]


def _pose(yaw_deg, dist=0.55):
    from reconstruct.conventions import rodrigues

    return rodrigues(np.radians([0.0, yaw_deg, 0.0])) @ np.diag([1.0, -1.0, -1.0]), np.array([0.0, 0.0, dist])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from reconstruct.render import Mesh, linear_to_srgb
    from reconstruct.render.raycast import RaycastRenderer
    from reconstruct.synth.scene import key_light

    tmp = tmp_path_factory.mktemp("stages")
    host = make_plugin_manager(extra_plugins=[("stage-test", TestPlugin())])
    model = host.components().get("face_model", "demo").load()
    rig = load_rig(ROOT / "rigs" / "test-small.toml")
    s = Session.create(tmp / "take", rig, name="take")
    s.add_consent(ConsentRecord("Test Performer", "young stills", "Test Performer", "2026-01-01", ("digital_human",)))
    w, h = rig.hero.resolution
    hero = CameraModel("hero", K=np.array([[900.0, 0, w / 2 - 0.5], [0, 900.0, h / 2 - 0.5], [0, 0, 1]]),
                       image_size=(w, h))
    rng = np.random.default_rng(0)
    id_a = rng.normal(size=model.n_identity)
    r = RaycastRenderer()
    T = 2
    expr = rng.uniform(0, 0.4, (T, model.n_expression))
    Rs, ts, verts = [], [], []
    with s.frame_log("hero") as flog:
        for i in range(T):
            R, t = _pose(8.0 * i - 4)
            v = model.vertices(id_a, expr[i]) @ R.T + t
            out = r.render(Mesh(v, model.triangles, uvs=model.uvs, triangle_uvs=model.triangle_uvs,
                                texture=model.albedo_texture), hero, key_light())
            img = np.where(out.mask[..., None], out.image, 0.3)
            s.write_image("hero", f"{i:06d}.png", np.round(linear_to_srgb(img) * 255).astype(np.uint8))
            flog.append(FrameRecord(index=i, t_capture_ns=i * 33_333_333, file=f"{i:06d}.png"))
            Rs.append(R), ts.append(t), verts.append(v)
    s.write_sync([FrameSet(frame=i, t_ns=i * 33_333_333, indices={"hero": i}) for i in range(T)])
    s.write_calibration({"cameras": {"hero": hero.to_dict()}})  # the calibrate stage's layout
    save_fits(FitSequence(model_name="demo", frames=np.arange(T, dtype=np.int32), identity=id_a.astype(np.float32),
                          expression=expr.astype(np.float32), R=np.array(Rs), t=np.array(ts), scale=np.ones(T),
                          vertices=np.array(verts, np.float32), valid=np.ones(T, bool)),
              s.stage_dir("fit") / "fits.npz")
    for st in ("sync", "fit"):  # upstream stages "already ran"
        atomic_write_json(s.stage_dir(st) / STAGE_FILE, {"stage": st, "key": f"prepared-{st}"})
    # young stills of identity B
    refs = tmp / "young"
    refs.mkdir()
    id_b = id_a * 0.5 + rng.normal(size=model.n_identity) * 0.7
    cams = {}
    for k, yaw in enumerate((0, -25, 25)):
        cam = CameraModel(f"y{k}.png", K=np.array([[800.0, 0, 199.5], [0, 800.0, 199.5], [0, 0, 1]]),
                          image_size=(400, 400))
        R, t = _pose(yaw, 0.5)
        v = model.vertices(id_b, np.zeros(model.n_expression)) @ R.T + t
        out = r.render(Mesh(v, model.triangles, uvs=model.uvs, triangle_uvs=model.triangle_uvs,
                            texture=model.albedo_texture), cam, key_light())
        img = np.round(linear_to_srgb(np.where(out.mask[..., None], out.image, 0.2)) * 255).astype(np.uint8)
        import cv2

        cv2.imwrite(str(refs / cam.name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        TRUTH[img.tobytes()] = cam.project(model.landmarks["ibug68"].points(v, model.triangles))
        cams[cam.name] = {"K": cam.K.tolist()}
    (refs / "cameras.json").write_text(json.dumps(cams))
    return dict(host=host, session=s, refs=refs, model=model)


def _run(p, method, stage, **opts):
    cfg = RunConfig(session=p["session"].root, method=method, only_stage=stage,
                    options={"digital_human.young_refs": str(p["refs"]), **opts})
    return run_pipeline(cfg, p["host"])


def _read16(path):
    import cv2

    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def test_digital_human_through_age_render_composite(prepared):
    from reconstruct.provenance import read_exr, read_manifest, read_png_provenance

    s = prepared["session"]
    for stage in ("age", "render", "composite"):  # the render mode: a young double drawn over the face
        _run(prepared, "digital_human", stage, **{"digital_human.mode": "render"})
    edits = json.loads((s.stage_dir("age") / "edits.json").read_text())
    assert edits["method"] == "digital_human" and edits["identity_changing"]
    rj = json.loads((s.stage_dir("render") / "render.json").read_text())
    assert rj["renderer"] == "raycast" and rj["frames"]["0"]["lighting"]["n_pixels"] > 1000
    plates = s.root / "out" / "plates" / "digital_human" / "hero"
    for i in range(2):
        plate = s.read_image("hero", f"{i:06d}.png")
        png = _read16(plates / f"{i:06d}.png")
        assert png.dtype == np.uint16 and png.shape == plate.shape
        info = json.loads((s.stage_dir("composite") / "patches" / f"{i:06d}.json").read_text())
        import cv2

        a = cv2.imread(str(s.stage_dir("composite") / "patches" / f"{i:06d}_mask.png"), cv2.IMREAD_UNCHANGED)
        mask = np.zeros(plate.shape[:2], bool)
        x, y = info["offset_px"]
        mask[y:y + a.shape[0], x:x + a.shape[1]] = a > 0
        assert mask.sum() > 2000
        assert (png[~mask] == plate[~mask].astype(np.uint16) * 257).all()  # bit-exact outside the mask
        assert np.abs(png[mask] / 257.0 - plate[mask]).mean() > 1.0  # the face changed inside
        assert read_exr(plates / f"{i:06d}.exr").shape == plate.shape
        rec = read_png_provenance(plates / f"{i:06d}.png")
        assert rec is not None and rec.method == "digital_human" and rec.stage == "composite"
    assert (s.stage_dir("composite") / "preview.mp4").stat().st_size > 0
    assert "out/plates/digital_human/hero/000000.exr" in read_manifest(s)


def test_image_edits_pass_through_render(prepared):
    s = prepared["session"]
    for stage in ("age", "render", "composite"):
        _run(prepared, "square", stage, **{"composite.compositor": "alpha", "composite.feather_px": "0",
                                           "composite.feather_frac": "0", "composite.color": "none",
                                           "composite.erode_px": "0"})
    plate = s.read_image("hero", "000000.png")
    png = _read16(s.root / "out" / "plates" / "square" / "hero" / "000000.png")
    h, w = plate.shape[:2]
    inside = png[h // 4:h // 2, w // 4:w // 2]
    assert (inside == 32768).all()  # the edit's 0.5 grey, alpha 1, no colour transfer
    outside = np.ones((h, w), bool)
    outside[h // 4:h // 2, w // 4:w // 2] = False
    assert (png[outside] == plate[outside].astype(np.uint16) * 257).all()


def test_mesh_edits_identical_in_two_processes(prepared):
    """digital_human's mesh edits drawn by the render stage and composited give the same files in process and in
    --jobs 2 worker processes (frame chunks of 1: each frame in its own work item)."""
    from reconstruct.provenance import read_exr

    s = prepared["session"]

    def outputs():
        files = {}
        for stage in ("age", "render"):
            files.update({f"{stage}/{p.name}": p.read_bytes() for p in sorted(s.stage_dir(stage).glob("*.npz"))})
        plates = s.root / "out" / "plates" / "digital_human" / "hero"
        files.update({p.name: read_exr(p).tobytes() for p in sorted(plates.glob("*.exr"))})
        files.update({p.name: _read16(p).tobytes() for p in sorted(plates.glob("*.png"))})
        files["render.json"] = (s.stage_dir("render") / "render.json").read_bytes()  # lighting fit numbers
        return files

    runs = []
    for jobs in (1, 2):
        for stage in ("age", "render", "composite"):
            cfg = RunConfig(session=s.root, method="digital_human", only_stage=stage, jobs=jobs,
                            options={"digital_human.young_refs": str(prepared["refs"]), "frames.chunk": "1",
                                     "digital_human.mode": "render"})
            run_pipeline(cfg, prepared["host"])
        runs.append(outputs())
    assert len(runs[0]) == 9 and runs[0] == runs[1]  # 2 edits, 2 renders, 2 EXR, 2 PNG, render.json: identical
    rj = json.loads((s.stage_dir("render") / "render.json").read_text())
    assert rj["renderer"] == "raycast" and rj["frames"]["1"]["kind"] == "mesh"
