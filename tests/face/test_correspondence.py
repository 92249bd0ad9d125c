"""Computed landmark correspondences (MediaPipe canonical mesh registered onto the model)."""

from pathlib import Path

import numpy as np
import pytest

from reconstruct.face.correspondence import (boundary_loops, closest_surface_points, landmark_map_from_vertices,
                                             mediapipe_canonical_points, umeyama)


@pytest.fixture(scope="module")
def ict_and_map():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fitting"))
    from ict import load_ict  # the fitting tests' cached loader: the correspondence is computed once per run

    model = load_ict()
    return model, model.landmark_map("mediapipe478")


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(50, 3))
    a = 0.4
    R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    dst = 2.5 * src @ R.T + [1, 2, 3]
    s, R2, t = umeyama(src, dst)
    assert abs(s - 2.5) < 1e-9 and np.allclose(R2, R) and np.allclose(t, [1, 2, 3])


def test_closest_points_on_a_triangle():
    V = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    F = np.array([[0, 1, 2]])
    p, tri, bary, d = closest_surface_points(V, F, np.array([[0.25, 0.25, 0.3], [2.0, 0.0, 0.0]]))
    assert np.allclose(p[0], [0.25, 0.25, 0]) and abs(d[0] - 0.3) < 1e-6
    assert np.allclose(p[1], [1, 0, 0], atol=1e-6)
    assert np.allclose(bary.sum(1), 1) and (tri == 0).all()


def test_boundary_loops_of_a_strip():
    F = np.array([[0, 1, 2], [1, 3, 2]])
    loops = boundary_loops(F)
    assert len(loops) == 1 and len(loops[0]) == 4


def test_vertex_map_is_exact():
    from reconstruct.face.model import FaceModel

    V = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    m = FaceModel("t", V, np.zeros((1, 4, 3), np.float32), np.zeros((1, 4, 3), np.float32),
                  np.array([[0, 1, 2], [0, 2, 3]], np.int32))
    lm = landmark_map_from_vertices(m, np.array([3, 1]), "x")
    assert np.allclose(lm.points(V.astype(float), m.triangles), V[[3, 1]])


def test_mediapipe_map_covers_the_mesh(ict_and_map):
    model, lm = ict_and_map
    assert lm.triangle.shape == (478,) and lm.scheme == "mediapipe478"
    assert (lm.triangle[:468] >= 0).sum() >= 440  # measured 468/468 on ICT
    assert (lm.triangle[468:] == -1).all()  # iris centres lie in the eyeball, not on the face surface
    assert np.allclose(lm.bary[lm.triangle >= 0].sum(1), 1, atol=1e-5)


def test_mediapipe_points_agree_with_ict_68_points(ict_and_map):
    """Semantically equal points of the two schemes (eye corners, nose, mouth corners, chin) must land close on
    the surface. Eyes, nose, mouth and chin are an independent check (the registration pins only the brows to ICT's
68-point brow line; eye and mouth contours go to the model's holes)."""
    model, lm = ict_and_map
    mp = lm.points(model.mean.astype(float), model.triangles)
    l68 = model.landmark_map("ibug68").points(model.mean.astype(float), model.triangles)
    pairs = {33: 36, 263: 45, 133: 39, 362: 42, 4: 30, 152: 8, 61: 48, 291: 54, 105: 19, 334: 24}
    err = {a: 1e3 * np.linalg.norm(mp[a] - l68[b]) for a, b in pairs.items()}
    # tolerance 4.5 mm each; measured eye corners 1.1-2.9, nose 2.3, chin 3.6, mouth corners 3.2, brows 1.3 mm
    assert max(err.values()) < 4.5, err


def test_canonical_mesh_reader_rejects_other_files(tmp_path):
    from reconstruct.errors import FaceModelError

    p = tmp_path / "x.obj"
    p.write_text("v 0 0 0\nv 1 0 0\n")
    with pytest.raises(FaceModelError, match="468 or 478"):
        mediapipe_canonical_points(p)
