"""Face model loaders: ICT light npz and OBJ folder, FLAME (safe unpickling), BFM 2017 h5, the demo model."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest

from reconstruct.errors import FaceModelError
from reconstruct.face.bfm import load_bfm2017
from reconstruct.face.flame import load_flame, safe_load_pickle
from reconstruct.face.ict import load_ict_folder, read_obj


@pytest.fixture(scope="module")
def ict():
    from reconstruct.assets import ict_light_path
    from reconstruct.face.ict import load_ict_light

    return load_ict_light(ict_light_path(), texture_size=256)


def test_ict_light_in_metres_with_landmarks_regions_albedo(ict):
    from reconstruct.assets import ict_light_path

    raw = np.load(ict_light_path())
    assert np.allclose(ict.mean, raw["mean"] * 0.01, atol=1e-7)  # cm -> m
    assert 0.2 < np.ptp(ict.mean[:, 1]) < 0.4 and ict.n_identity == 100 and ict.n_expression == 53
    lm = ict.landmark_map("ibug68")
    pts = lm.points(ict.mean.astype(float), ict.triangles)
    assert np.allclose(pts, ict.mean[raw["landmarks_68_multipie"]], atol=1e-7)  # one-hot on the listed vertices
    assert np.all(lm.weight[:17] < 1) and np.all(lm.weight[17:] == 1)
    for r in ("face", "eyes", "lips", "skin"):
        assert ict.regions[r].sum() > 50, r
    assert not np.any(ict.regions["skin"] & ict.regions["lips"])
    # procedural albedo: lips redder and darker than skin, brows dark
    a = ict.albedo_mean
    lips, skin = a[ict.regions["lips"]].mean(0), a[ict.regions["skin"]].mean(0)
    assert lips.sum() < skin.sum() and lips[0] / lips[1] > skin[0] / skin[1]
    assert a[ict.regions["brows"]].mean() < 0.6 * skin.mean()
    assert ict.albedo_texture.shape == (256, 256, 3) and 0 <= ict.albedo_texture.min() <= ict.albedo_texture.max() <= 1


def _write_obj(path, v, quads, uv=None):
    lines = [f"v {x} {y} {z}" for x, y, z in v]
    if uv is not None:
        lines += [f"vt {a} {b}" for a, b in uv]
        lines += ["f " + " ".join(f"{i + 1}/{i + 1}" for i in q) for q in quads]
    else:
        lines += ["f " + " ".join(str(i + 1) for i in q) for q in quads]
    path.write_text("\n".join(lines) + "\n")


def test_ict_folder_reads_neutral_identities_and_expressions_in_metres(tmp_path):
    rng = np.random.default_rng(0)
    v = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0], [20, 0, 0], [20, 10, 0]], float)  # cm
    quads = [[0, 1, 2, 3], [1, 4, 5, 2]]
    uv = v[:, :2] / 20
    _write_obj(tmp_path / "generic_neutral_mesh.obj", v, quads, uv)
    deltas = {}
    for name in ("identity000", "identity001", "jawOpen", "eyeBlink_L"):
        d = rng.normal(size=v.shape)
        deltas[name] = d
        _write_obj(tmp_path / f"{name}.obj", v + d, quads)
    m = load_ict_folder(tmp_path, lm68_vertices=None, texture_size=0)
    assert m.mean.shape == (6, 3) and m.triangles.shape == (4, 3)  # quads fanned into triangles
    assert np.allclose(m.mean, v * 0.01)
    assert m.n_identity == 2 and np.allclose(m.identity_basis[1], deltas["identity001"] * 0.01, atol=1e-6)
    assert m.expression_names == ("eyeBlink_L", "jawOpen")
    assert np.allclose(m.expression_basis[1], deltas["jawOpen"] * 0.01, atol=1e-6)
    assert m.triangle_uvs.shape == (4, 3)
    _write_obj(tmp_path / "identity002.obj", v[:5], [[0, 1, 2, 3]])
    with pytest.raises(FaceModelError, match="identity002.obj has 5 vertices"):
        load_ict_folder(tmp_path, texture_size=0)
    with pytest.raises(FaceModelError, match="no generic_neutral_mesh"):
        load_ict_folder(tmp_path / "nope")
    assert read_obj(tmp_path / "generic_neutral_mesh.obj")[0].shape == (6, 3)


# -- FLAME -----------------------------------------------------------------------------------------------------
class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_flame_loader_refuses_pickles_that_run_code(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3)), "payload": _Evil(marker)}, protocol=2))
    with pytest.raises(FaceModelError, match="refusing to load"):
        load_flame(bad)
    assert not marker.exists()
    with pytest.raises(FaceModelError, match="refusing to load .*eval"):
        safe_load_pickle(b"cbuiltins\neval\n(S'1+1'\ntR.")


def _fake_chumpy_pickle(d: dict) -> bytes:
    """Pickle ``d`` with objects of a class that claims to be ``chumpy.ch.Ch`` (chumpy itself is not needed)."""
    mod = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._parents = None

        def __getstate__(self):
            return {"x": self.x, "_cache_info": {}}

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod.Ch = Ch
    pkg = types.ModuleType("chumpy")
    pkg.ch = mod
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, mod
    try:
        return pickle.dumps({k: Ch(v) if k in ("v_template", "shapedirs") else v for k, v in d.items()}, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


def test_flame_structured_pickle_with_chumpy_and_sparse(tmp_path):
    import scipy.sparse

    rng = np.random.default_rng(3)
    V = 12
    v = rng.normal(size=(V, 3)) * 0.05
    sd = rng.normal(size=(V, 3, 310)) * 1e-3
    weights = np.zeros((V, 5))
    weights[:, 1] = 1
    weights[6:, 1], weights[6:, 2] = 0, 1  # the lower half follows the jaw joint
    J = rng.normal(size=(5, 3)) * 0.02
    d = {"v_template": v, "shapedirs": sd, "f": np.array([[0, 1, 2], [2, 3, 4], [5, 6, 7], [8, 9, 10]], np.uint32),
         "weights": weights, "J": J, "J_regressor": scipy.sparse.csc_matrix(rng.random((5, V))),
         "posedirs": np.zeros((V, 3, 36)), "kintree_table": np.zeros((2, 5), np.int64), "bs_style": "lbs"}
    p = tmp_path / "generic_model.pkl"
    p.write_bytes(_fake_chumpy_pickle(d))
    m = load_flame(p)
    assert np.allclose(m.mean, v, atol=1e-7) and m.n_identity == 300 and m.expression_kind == "pca"
    assert np.allclose(m.identity_basis[7], sd[:, :, 7], atol=1e-7)
    assert np.allclose(m.expression_basis[9], sd[:, :, 309], atol=1e-7)
    assert m.expression_names[-1] == "jawOpen" and m.n_expression == 11
    jaw = m.expression_basis[-1]
    assert np.allclose(jaw[:6], 0) and np.abs(jaw[6:]).max() > 1e-4  # only jaw-weighted vertices move
    npz = tmp_path / "flame.npz"
    np.savez(npz, v_template=v, shapedirs=sd, f=d["f"])
    assert load_flame(npz).n_expression == 10
    notflame = tmp_path / "x.pkl"
    notflame.write_bytes(pickle.dumps({"a": np.zeros(3)}, protocol=2))
    with pytest.raises(FaceModelError, match="not a FLAME model: missing"):
        load_flame(notflame)


# -- BFM 2017 -------------------------------------------------------------------------------------------------
def test_bfm2017_tiny_h5(tmp_path):
    import h5py

    rng = np.random.default_rng(4)
    V, K = 5, 3
    pts = rng.normal(size=(3, V)) * 60 + np.array([[0], [0], [80]])  # millimetres
    pts[0, 0], pts[0, 1] = -90, 90  # a head-sized extent
    p = tmp_path / "model2017-1_bfm_nomouth.h5"
    with h5py.File(p, "w") as h:
        h["shape/representer/points"] = pts
        h["shape/representer/cells"] = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]]).T
        U, _ = np.linalg.qr(rng.normal(size=(3 * V, K)))
        for part, mean in (("shape", pts.T.ravel()), ("expression", np.zeros(3 * V)), ("color", np.full(3 * V, 0.5))):
            h[f"{part}/model/mean"] = mean
            h[f"{part}/model/pcaBasis"] = U
            h[f"{part}/model/pcaVariance"] = np.array([4.0, 1.0, 0.25])
    m = load_bfm2017(p)
    assert np.allclose(m.mean, pts.T * 1e-3, atol=1e-6)  # mm -> m
    assert np.allclose(m.identity_basis[0].ravel(), U[:, 0] * 2.0 * 1e-3, atol=1e-6)  # sqrt(variance) scaling
    assert m.triangles.shape == (3, 3) and m.n_expression == 3
    assert np.allclose(m.albedo_mean, 0.214, atol=0.01)  # sRGB 0.5 -> linear
    with pytest.raises(FaceModelError, match="not a Basel Face Model"):
        with h5py.File(tmp_path / "empty.h5", "w") as h:
            h["x"] = 1
        load_bfm2017(tmp_path / "empty.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(FaceModelError, match="not an HDF5 file"):
        load_bfm2017(tmp_path / "text.h5")


# -- demo model -----------------------------------------------------------------------------------------------
def test_demo_model_expressions_move_the_right_parts():
    from reconstruct.face.demo import build_demo_model

    m = build_demo_model()
    assert m.name == "demo" and m.n_identity >= 10 and m.albedo_texture is not None
    assert {"jawOpen", "mouthSmile_L", "eyeBlink_L", "browInnerUp_R"} <= set(m.expression_names)
    lm = m.landmark_map("ibug68")
    base = lm.points(m.mean.astype(float), m.triangles)

    def after(name, w=1.0):
        e = np.zeros(m.n_expression)
        e[m.expression_names.index(name)] = w
        return lm.points(m.vertices(None, e), m.triangles)

    jaw = after("jawOpen")
    assert jaw[57, 1] - base[57, 1] < -0.008 and abs(jaw[27, 1] - base[27, 1]) < 1e-4  # lower lip drops, nose stays
    blink = after("eyeBlink_L")
    # ibug 43/44 (left upper lid) close onto 47/46 (lower lid): gap from ~10 mm to under 1 mm
    assert np.linalg.norm(base[43] - base[47]) > 0.008 and abs(blink[43, 1] - blink[47, 1]) < 0.001
    assert after("mouthSmile_L")[54, 1] - base[54, 1] > 0.002
    assert after("browInnerUp_L")[24, 1] - base[24, 1] > 0.003
    assert m.regions["face"].sum() > 1000 and m.regions["lips"].sum() > 20
    ids = m.vertices(np.ones(m.n_identity)) - m.mean
    assert 0.002 < np.abs(ids).max() < 0.03  # one std per mode: millimetres, not centimetres
