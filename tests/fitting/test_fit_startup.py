"""The fit stage's per-take start-up (issue 16): the anchored lip / lid landmark map cached by content, the meshes
written without trimesh, the overlay rendered in the mesh's window only."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from reconstruct.camera import CameraModel


@pytest.fixture(scope="module")
def mp_model(ict_model):
    from reconstruct.fitting.pipeline import ensure_scheme

    return ensure_scheme(ict_model, "mediapipe478")


def _canonical():
    from reconstruct.assets import mediapipe_canonical_path
    from reconstruct.face.correspondence import mediapipe_canonical_points

    return mediapipe_canonical_points(mediapipe_canonical_path())


def test_anchored_map_is_cached_by_content(mp_model, tmp_path, monkeypatch):
    from reconstruct.fitting import lip_anchor

    monkeypatch.setenv("DEAGE_CACHE_DIR", str(tmp_path))
    canonical = _canonical()
    first, moved = lip_anchor.anchored_map(mp_model, "mediapipe478", canonical)
    assert len(list((tmp_path / "anchors").glob("mediapipe478-*.npz"))) == 1

    computed = lip_anchor._anchored_map

    def fail(*a, **k):
        raise AssertionError("recomputed although the same model, scheme and placement are cached")

    monkeypatch.setattr(lip_anchor, "_anchored_map", fail)
    again, moved2 = lip_anchor.anchored_map(mp_model, "mediapipe478", canonical)
    # the cached map is the computed one, bit for bit (and of the same dtypes)
    assert again.triangle.dtype == first.triangle.dtype and again.bary.dtype == first.bary.dtype
    assert np.array_equal(again.triangle, first.triangle) and np.array_equal(again.bary, first.bary)
    assert np.array_equal(moved, moved2) and np.array_equal(again.weight, first.weight)

    # another placement, or a model whose arrays differ, is another entry: computed, not read
    calls = []
    monkeypatch.setattr(lip_anchor, "_anchored_map", lambda *a: calls.append(a) or computed(*a))
    lip_anchor.anchored_map(mp_model, "mediapipe478", canonical, lips=False)
    other = replace(mp_model, expression_basis=mp_model.expression_basis[::-1].copy())
    lip_anchor.anchored_map(other, "mediapipe478", canonical)
    assert len(calls) == 2
    assert len(list((tmp_path / "anchors").glob("mediapipe478-*.npz"))) == 3


def test_damaged_cache_entry_is_recomputed(mp_model, tmp_path, monkeypatch):
    from reconstruct.fitting import lip_anchor

    monkeypatch.setenv("DEAGE_CACHE_DIR", str(tmp_path))
    canonical = _canonical()
    first, _ = lip_anchor.anchored_map(mp_model, "mediapipe478", canonical)
    (entry,) = (tmp_path / "anchors").glob("*.npz")
    entry.write_bytes(b"not an npz")
    again, _ = lip_anchor.anchored_map(mp_model, "mediapipe478", canonical)
    assert np.array_equal(again.triangle, first.triangle) and np.array_equal(again.bary, first.bary)
    with np.load(entry) as d:  # written again, whole
        assert np.array_equal(d["triangle"], first.triangle)


def test_ply_matches_what_trimesh_wrote(tmp_path, mp_model):
    trimesh = pytest.importorskip("trimesh")
    from reconstruct.artifacts.meshes import ply_faces, write_ply

    rng = np.random.default_rng(0)
    v = (mp_model.mean + 0.001 * rng.standard_normal(mp_model.mean.shape)).astype(np.float32)
    write_ply(tmp_path / "ours.ply", v, ply_faces(mp_model.triangles))
    trimesh.Trimesh(v, mp_model.triangles, process=False).export(tmp_path / "trimesh.ply", file_type="ply")
    ours, theirs = ((tmp_path / n).read_bytes() for n in ("ours.ply", "trimesh.ply"))
    # the same binary body (float32 vertices, uchar-counted int32 faces); the headers differ only in the comment
    cut = lambda b: b.index(b"end_header\n") + len(b"end_header\n")  # noqa: E731
    assert ours[cut(ours):] == theirs[cut(theirs):]
    strip = lambda b: [ln for ln in b[:cut(b)].split(b"\n") if not ln.startswith(b"comment")]  # noqa: E731
    assert strip(ours) == strip(theirs)
    back = trimesh.load(tmp_path / "ours.ply", process=False)
    assert np.array_equal(np.asarray(back.vertices, np.float32), v) and np.array_equal(back.faces, mp_model.triangles)


def _hero_1080p() -> CameraModel:
    return CameraModel("hero", K=np.array([[2000.0, 0, 951.3], [0, 2000.0, 548.7], [0, 0, 1]]),
                       dist=np.array([-0.12, 0.05, 0.001, -0.0005, 0.0]), t=np.array([0.02, 0.01, 0.9]),
                       image_size=(1920, 1080))


def _whole_frame_overlay(img: np.ndarray, v: np.ndarray, triangles: np.ndarray, cam: CameraModel) -> np.ndarray:
    """What the overlay was before: the whole frame rendered, and blended in float32 where the mesh shows."""
    from reconstruct.render.base import Mesh
    from reconstruct.render.raycast import RaycastRenderer
    from reconstruct.render.shading import linear_to_srgb

    r = RaycastRenderer("cpu").render(Mesh(v, triangles), cam)
    shaded = np.clip(linear_to_srgb(np.clip(r.image, 0, 1)) * 255, 0, 255)
    want = img[..., :3].astype(np.float32)
    m = r.mask.astype(bool)
    want[m] = 0.45 * want[m] + 0.55 * shaded[m]
    return np.clip(want, 0, 255).astype(np.uint8)


def test_overlay_renders_only_the_mesh_window(mp_model, monkeypatch):
    pytest.importorskip("open3d")
    from reconstruct.fitting import overlay
    from reconstruct.render.raycast import RaycastRenderer

    cam = _hero_1080p()
    W, H = cam.image_size
    v = mp_model.mean.astype(np.float64)
    img = np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)
    want = _whole_frame_overlay(img, v, mp_model.triangles, cam)

    sizes = []
    real = RaycastRenderer.render
    monkeypatch.setattr(RaycastRenderer, "render",
                        lambda self, mesh, camera, *a, **k: sizes.append(camera.image_size) or real(self, mesh, camera,
                                                                                                     *a, **k))
    got = overlay.overlay_fit(img, v, mp_model.triangles, cam)
    assert np.array_equal(got, want)  # bit for bit the whole-frame picture
    (size,) = sizes
    assert size[0] * size[1] < 0.25 * W * H, size  # a face's window, not the 1080p frame (measured ~7 %)


def test_open3d_is_imported_without_its_plotly_viewer():
    pytest.importorskip("open3d")
    import subprocess
    import sys

    code = ("import sys\n"
            "import numpy as np\n"
            "from reconstruct.camera import CameraModel\n"
            "from reconstruct.fitting.overlay import overlay_fit\n"
            "cam = CameraModel('c', K=np.array([[80.0, 0, 32], [0, 80.0, 24], [0, 0, 1]]), image_size=(64, 48))\n"
            "v = np.array([[-0.02, -0.02, 0.5], [0.02, -0.02, 0.5], [0.0, 0.02, 0.5]])\n"
            "overlay_fit(np.zeros((48, 64, 3), np.uint8), v, np.array([[0, 1, 2]]), cam)\n"
            "assert 'open3d' in sys.modules, 'the overlay did not use open3d'\n"
            "assert 'dash' not in sys.modules and 'plotly' not in sys.modules, 'the viewer was imported'\n"
            "import open3d as o3d\n"
            "assert callable(o3d.visualization.draw_plotly)\n")  # touched: the real module loads
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=str(Path(__file__).resolve().parents[2]))
    assert r.returncode == 0, r.stderr[-2000:]


def test_landmark_residuals_build_each_frame_once(mp_model, monkeypatch):
    """The fit report's landmark residuals: the frames' model-frame landmarks are computed once for all cameras
    (they were rebuilt from the model per camera: 3 x the vertices), and the identity's part of the vertices once
    for all frames (it was added again for every frame: 6.1 -> 1.5 ms a frame), with the same numbers."""
    from reconstruct.face.model import FaceModel
    from reconstruct.fitting.fit import fitted_landmarks, model_landmarks

    rng = np.random.default_rng(2)
    T = 5
    ident = rng.normal(size=mp_model.n_identity) * 0.5
    expr = rng.uniform(0, 0.4, (T, mp_model.n_expression))
    R = np.repeat(np.eye(3)[None], T, 0)
    t = np.tile([0.0, 0.0, 0.8], (T, 1))
    want = fitted_landmarks(mp_model, "mediapipe478", ident, expr, R, t)
    memo = {}
    for _ in range(2):  # the second call reads the memo
        got = fitted_landmarks(mp_model, "mediapipe478", ident, expr, R, t, memo=memo)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(memo["model_landmarks"], model_landmarks(mp_model, "mediapipe478", ident, expr))
    lm = mp_model.landmark_map("mediapipe478")  # bit for bit each frame's whole model.vertices(identity, expression)
    per_frame = np.stack([lm.points(mp_model.vertices(ident, e), mp_model.triangles) for e in expr])
    np.testing.assert_array_equal(memo["model_landmarks"], per_frame)

    from reconstruct.artifacts import Detections
    from reconstruct.fitting.result import FitSequence
    from deage_plugins.fit_stage import landmark_residuals

    cams = {c: CameraModel(c, K=np.array([[900.0, 0, 320], [0, 900.0, 240], [0, 0, 1]]), t=np.array([x, 0, 0.0]))
            for c, x in (("a", 0.0), ("b", 0.05), ("c", -0.05))}
    world = want.astype(np.float32)
    pts = np.stack([np.stack([cams[c].project(w.reshape(-1, 3)) for c in cams]) for w in world]).astype(np.float32)
    det = Detections(np.arange(T, dtype=np.int32), tuple(cams), pts, np.ones(pts.shape[:3], np.float32),
                     np.ones((T, 3), bool), "mediapipe478", "test")
    seq = FitSequence(model_name="ict", frames=np.arange(T, dtype=np.int32), identity=ident.astype(np.float32),
                      expression=expr.astype(np.float32), R=R, t=t, scale=np.ones(T),
                      vertices=np.zeros((T, mp_model.n_vertices, 3), np.float32), valid=np.ones(T, bool),
                      cameras=tuple(cams), residual_px=np.zeros((T, 3), np.float32))
    calls = []
    real = FaceModel.vertices
    monkeypatch.setattr(FaceModel, "vertices", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    res = landmark_residuals(mp_model, det, seq, cams)
    assert len(calls) == 1  # the identity's part once: not once per frame (5), nor per frame and camera (15)
    # the detections are the fitted landmarks projected: residuals 0 up to the float32 of the points
    assert all(r["all"]["px"] < 1e-3 for r in res.values()), res


def _stored(path) -> set:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return {i.compress_type for i in z.infolist()}


def test_fits_are_stored_not_deflated_and_old_files_still_load(tmp_path):
    """fits.npz: zlib saved 9 % of a 24-frame take's 2.7 MB for 0.23 s of writing and ~0.1 s per reader (measured,
    docs/fitting.md): the arrays are stored; a file written before (deflated) loads the same."""
    import zipfile

    from reconstruct.fitting.result import FitSequence, load_fits, save_fits

    rng = np.random.default_rng(3)
    T, V = 4, 50
    seq = FitSequence(model_name="ict", frames=np.arange(T, dtype=np.int32), identity=rng.normal(size=7).astype("f4"),
                      expression=rng.random((T, 5)).astype("f4"), R=np.repeat(np.eye(3)[None], T, 0),
                      t=rng.normal(size=(T, 3)), scale=np.ones(T), vertices=rng.normal(size=(T, V, 3)).astype("f4"),
                      valid=np.array([1, 1, 0, 1], bool), cameras=("hero", "w1"),
                      residual_px=rng.random((T, 2)).astype("f4"), eye_gaze=rng.normal(size=(T, 2, 3)).astype("f4"))
    save_fits(seq, tmp_path / "fits.npz")
    assert _stored(tmp_path / "fits.npz") == {zipfile.ZIP_STORED}
    first = (tmp_path / "fits.npz").read_bytes()
    save_fits(seq, tmp_path / "fits.npz")
    assert (tmp_path / "fits.npz").read_bytes() == first  # the bytes depend only on the arrays
    back = load_fits(tmp_path / "fits.npz")
    old = tmp_path / "old.npz"  # the layout save_fits wrote before
    np.savez_compressed(old, model_name=np.array("ict"), frames=seq.frames, identity=seq.identity,
                        expression=seq.expression, R=seq.R, t=seq.t, scale=seq.scale, vertices=seq.vertices,
                        valid=seq.valid, cameras=np.array(seq.cameras, dtype=str), residual_px=seq.residual_px,
                        eye_gaze=seq.eye_gaze)
    for got in (back, load_fits(old)):
        assert got.model_name == "ict" and got.cameras == seq.cameras
        for k in ("frames", "identity", "expression", "R", "t", "scale", "vertices", "valid", "residual_px",
                  "eye_gaze"):
            a, b = getattr(got, k), getattr(seq, k)
            assert a.dtype == b.dtype and np.array_equal(a, b), k


def test_converted_model_cache_is_stored_and_loads_the_same(tmp_path, monkeypatch):
    """The converted built-in model's cache entry is read by every process that loads the model: stored arrays
    (ICT: 31 MB read in ~0.015 s; deflated to 19 MB it took ~0.145 s to inflate, measured)."""
    import zipfile

    from reconstruct.face import store
    from reconstruct.face.model import load_face_model

    monkeypatch.setenv("DEAGE_CACHE_DIR", str(tmp_path))
    model = store.load_demo.__wrapped__()  # converted into this empty cache (not the per-process memo)
    (entry,) = tmp_path.glob("demo-*.npz")
    assert _stored(entry) == {zipfile.ZIP_STORED}
    back = load_face_model(entry)
    for k in ("mean", "identity_basis", "expression_basis", "triangles", "uvs", "triangle_uvs", "albedo_texture"):
        a, b = getattr(back, k), getattr(model, k)
        assert (a is None and b is None) or (a.dtype == b.dtype and np.array_equal(a, b)), k
    assert set(back.landmarks) == set(model.landmarks) and set(back.regions) == set(model.regions)
    for s, lm in model.landmarks.items():
        assert np.array_equal(back.landmarks[s].bary, lm.bary) and np.array_equal(back.landmarks[s].triangle,
                                                                                   lm.triangle)


def test_overlay_blends_in_float_only_on_the_mesh_window(mp_model):
    """The overlay's float32 blend and clip run on the mesh's window, not on the whole 1080p frame (~0.1 s and a
    74 MB peak of float copies before): the same picture (the old whole-frame formula, 8-bit and 16-bit frames)."""
    pytest.importorskip("open3d")
    import tracemalloc

    import cv2

    from reconstruct.fitting import overlay

    cam = _hero_1080p()
    W, H = cam.image_size
    v = mp_model.mean.astype(np.float64)
    rng = np.random.default_rng(4)
    dots = rng.uniform((0, 0), (W, H), (40, 2))
    for img in (rng.integers(0, 256, (H, W, 3), dtype=np.uint8), rng.integers(0, 300, (H, W, 4)).astype(np.uint16)):
        want = _whole_frame_overlay(img, v, mp_model.triangles, cam)
        for p in dots:
            cv2.circle(want, (int(round(p[0])), int(round(p[1]))), 5, (0, 255, 0), -1)
        overlay.overlay_fit(img, v, mp_model.triangles, cam, dots)  # warm (imports, ray grids)
        tracemalloc.start()
        got = overlay.overlay_fit(img, v, mp_model.triangles, cam, dots)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert np.array_equal(got, want), img.dtype
        if img.dtype == np.uint8:
            # measured: 34.5 MB (the output frame, 6.2 MB, and the window's rays and shading); with the whole
            # frame's float32 copies (24.9 MB each) 74 MB
            assert peak < 45e6, peak


def test_meshes_of_every_frame_by_the_artifact_writer(tmp_path, mp_model):
    """The fit stage's meshes come from reconstruct.artifacts.meshes (the PLY writer was the stage's own): one file
    per frame, named by the frame, each the frame's vertices."""
    from reconstruct.artifacts.meshes import mesh_path, ply_faces, write_meshes, write_ply

    rng = np.random.default_rng(5)
    verts = (mp_model.mean + 0.001 * rng.standard_normal((3, *mp_model.mean.shape))).astype(np.float32)
    write_meshes(tmp_path / "meshes", np.array([7, 8, 12]), verts, mp_model.triangles)
    assert sorted(p.name for p in (tmp_path / "meshes").iterdir()) == ["000007.ply", "000008.ply", "000012.ply"]
    write_ply(tmp_path / "one.ply", verts[2], ply_faces(mp_model.triangles))
    assert mesh_path(tmp_path / "meshes", 12).read_bytes() == (tmp_path / "one.ply").read_bytes()


def test_fit_stage_files_skip_their_own_fsync(tmp_path, monkeypatch):
    """fits.npz in the stage's temporary folder is written without an fsync of its own (atomic_replace_dir flushes
    the folder when the stage commits): 5-10 ms per file and folder measured here; save_fits alone still syncs."""
    import os

    from reconstruct.fitting.result import FitSequence, load_fits, save_fits

    T = 2
    seq = FitSequence(model_name="ict", frames=np.arange(T, dtype=np.int32), identity=np.zeros(3, "f4"),
                      expression=np.zeros((T, 2), "f4"), R=np.repeat(np.eye(3)[None], T, 0), t=np.zeros((T, 3)),
                      scale=np.ones(T), vertices=np.zeros((T, 4, 3), "f4"), valid=np.ones(T, bool), cameras=("hero",),
                      residual_px=np.zeros((T, 1), "f4"))
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    save_fits(seq, tmp_path / "a.npz", sync=False)
    assert calls == []
    save_fits(seq, tmp_path / "b.npz")
    assert len(calls) == 2  # the file and its folder
    assert np.array_equal(load_fits(tmp_path / "a.npz").vertices, seq.vertices)


def test_model_landmarks_build_only_the_landmarks_vertices(mp_model, monkeypatch):
    """The fit report's model-frame landmarks combine the expression basis on the vertices of the landmarks'
    triangles only (they built every vertex of every frame, in float64), with the same numbers."""
    from reconstruct.fitting.fit import model_landmarks

    rng = np.random.default_rng(3)
    ident = rng.normal(size=mp_model.n_identity) * 0.5
    expr = rng.uniform(0, 0.4, (3, mp_model.n_expression))
    lm = mp_model.landmark_map("mediapipe478")
    want = np.stack([lm.points(mp_model.vertices(ident, e), mp_model.triangles) for e in expr])
    widths = []
    real = np.tensordot
    spy = lambda a, b, axes=2: (widths.append(b.shape[1]) if b.shape[0] == mp_model.n_expression else None) or \
        real(a, b, axes)  # noqa: E731 -- the expression modes' products, one per frame
    monkeypatch.setattr(np, "tensordot", spy)
    got = model_landmarks(mp_model, "mediapipe478", ident, expr)
    monkeypatch.undo()
    np.testing.assert_array_equal(got, want)  # bit for bit, NaN (no correspondence) where the map has none
    assert len(widths) == 3 and max(widths) <= 3 * len(lm.triangle) < mp_model.n_vertices


def test_preload_imports_what_the_stage_runs_with():
    """The fit stage's preload (run by the engine while the detect stage's workers work) leaves torch with the
    solver, open3d for the overlay (without its plotting viewer) and scipy's KD-tree imported in a fresh process."""
    from tests.subproc import run_python

    out = run_python("import sys\n"
                     "from deage_plugins.fit_stage import FitStage\n"
                     "FitStage().preload(None)\n"
                     "mods = ('torch', 'reconstruct.fitting.pipeline', 'reconstruct.fitting.lip_anchor', 'open3d', "
                     "'scipy.spatial', 'reconstruct.fitting.scoring', 'reconstruct.fitting.gaze')\n"
                     "print([m for m in mods if m not in sys.modules], 'plotly' in sys.modules)\n")
    assert out.split() == ["[]", "False"], out
