"""What the age stage's workers rebuild and import for the digital_human plate mode (issue 16, age9): the pickled
method travels without its face model (a copy loads it by name), the plate retoucher is built once per worker,
shape weights need no scipy, the young vertices keep their identity part (the same numbers), the workers leave
open3d's plotting viewer unloaded, and a lens seen once undistorts only the rays it casts."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from reconstruct.executors.resources import Resources
from reconstruct.plugins import make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def components():
    return make_plugin_manager().components()


def _method(components):
    from deage_plugins.digital_human.method import DigitalHumanMethod

    m = DigitalHumanMethod()
    m.model, m.model_name = components.face_model("ict"), "ict"
    m.identity, m.texture = np.zeros(m.model.n_identity), np.zeros((16, 16, 3), np.float32)
    m.shift = np.linspace(-0.5, 0.5, m.model.n_identity)
    m.report = {"skin_rgb": [0.6, 0.45, 0.4]}
    return m


def test_the_pickled_method_loads_its_model_by_name_and_shares_the_workers_retoucher(components):
    from deage_plugins.digital_human.method import DigitalHumanSettings

    method = _method(components)
    packed = pickle.dumps(method)
    assert len(packed) < 2_000_000  # the ICT model's arrays (~30 MB) stay behind
    res = Resources(components)
    ctx = SimpleNamespace(resources=res, components=components, device="cpu")
    copies = [pickle.loads(packed) for _ in range(2)]  # two chunks in one worker
    assert all(c.model is None for c in copies)
    assert all(c._face_model(ctx) is components.face_model("ict") for c in copies)
    st = DigitalHumanSettings()
    first, second = (c._plate(ctx, st) for c in copies)
    assert first is second  # built once per worker, not per chunk
    other = pickle.loads(packed)
    other.shift = other.shift * 2.0
    other._face_model(ctx)
    assert other._plate(ctx, st) is not first  # another shape change: its own retoucher
    # a model set by hand (not the registered one of that name) travels as it is, not swapped for the registry's
    custom = _method(components)
    custom.model = SimpleNamespace(name="hand-made")
    assert pickle.loads(pickle.dumps(custom)).model.name == "hand-made"


def test_young_vertices_are_the_models_vertices_bit_for_bit(components):
    from reconstruct.conventions import rodrigues
    from deage_plugins.digital_human.plate import PlateRetoucher, PlateSettings

    model = components.face_model("ict")
    rng = np.random.default_rng(3)
    shift = rng.normal(size=model.n_identity) * 0.3
    ret = PlateRetoucher(model, None, shift, None, PlateSettings())
    ident = rng.normal(size=model.n_identity)
    for k in range(4):  # the same identity frame after frame, then another one
        if k == 3:
            ident = rng.normal(size=model.n_identity)
        fit = SimpleNamespace(identity=ident, expression=rng.random(model.n_expression), scale=1.02,
                              R=rodrigues(rng.normal(size=3) * 0.2), t=np.array([0.01, -0.02, 0.6]))
        want = float(fit.scale) * model.vertices(ident + shift, fit.expression) @ np.asarray(fit.R).T + fit.t
        np.testing.assert_array_equal(ret.young_vertices(fit), want)


def _sparse_shape_weights(model, rings: int) -> np.ndarray:
    """The rings grown with a scipy sparse adjacency matrix (the implementation before age9)."""
    import scipy.sparse as sp

    tris = np.asarray(model.triangles)
    i = np.concatenate([tris[:, 0], tris[:, 1], tris[:, 2], tris[:, 1], tris[:, 2], tris[:, 0]])
    j = np.concatenate([tris[:, 1], tris[:, 2], tris[:, 0], tris[:, 0], tris[:, 1], tris[:, 2]])
    adj = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(model.n_vertices,) * 2)
    ring = np.where(np.asarray(model.regions["face"], bool), 0, rings + 1)
    reached = ring == 0
    for k in range(1, rings + 1):
        nxt = reached | (adj @ reached.astype(np.float64) > 0)
        ring[nxt & ~reached] = k
        reached = nxt
    w = np.clip(1.0 - ring / (rings + 1.0), 0.0, 1.0)
    return w * w * (3.0 - 2.0 * w)


_NO_SCIPY = """
import sys
from reconstruct.plugins import make_plugin_manager
from deage_plugins.digital_human.plate import shape_weights
w = shape_weights(make_plugin_manager().components().face_model("ict"))
print("scipy.sparse" in sys.modules, w.shape)
"""


def test_shape_weights_need_no_scipy_and_are_the_sparse_matrix_ones(components):
    from deage_plugins.digital_human.plate import shape_weights

    model = components.face_model("ict")
    for rings in (1, 4, 12):
        np.testing.assert_array_equal(shape_weights(model, rings), _sparse_shape_weights(model, rings))
    r = subprocess.run([sys.executable, "-c", _NO_SCIPY], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[0] == "False", r.stdout


_WORKER = """
import sys
from reconstruct.executors.resources import Resources
from reconstruct.methods import SideWork
from deage_plugins.age_stage import age_work

def uses_open3d(item, res):
    import open3d
    return "dash" in sys.modules, type(sys.modules["open3d.visualization"]).__name__

print(*age_work(SideWork(uses_open3d, None), Resources()))
"""


def test_an_age_worker_leaves_open3ds_plotting_viewer_unloaded():
    pytest.importorskip("open3d")
    r = subprocess.run([sys.executable, "-c", _WORKER], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-2:] == ["False", "_LazyModule"], r.stdout


def test_a_lens_seen_once_undistorts_only_the_window_asked_for():
    from reconstruct.camera import CameraModel
    from reconstruct.render import fragments as F

    K = np.array([[1400.0, 0, 951.3], [0, 1398.0, 537.8], [0, 0, 1]])
    cam = CameraModel(name="hero", K=K, dist=np.array([-0.12, 0.05, 0.001, -0.0005, 0.0]), image_size=(1920, 1080))
    full = F._RayGrids().rays(cam)
    grids = F._RayGrids()
    win = (700, 200, 1100, 640)
    got = grids.rays(cam, win)
    np.testing.assert_array_equal(got, full[200:640, 700:1100])
    (_, _, grid), = grids._grids.values()
    assert grid.shape == (440, 400, 3)  # only the window's rays were undistorted
    # a later call that needs more grows the grid past the whole camera; the same numbers
    np.testing.assert_array_equal(grids.rays(cam, (0, 0, 1920, 1080)), full)
    np.testing.assert_array_equal(grids.rays(cam, (10, 20, 30, 50)), full[20:50, 10:30])


_DRIVER = """
import sys
from types import SimpleNamespace
from reconstruct.plugins import make_plugin_manager
from deage_plugins.digital_human.method import _import_for_workers
comps = make_plugin_manager().components()
_import_for_workers(SimpleNamespace(device=sys.argv[1], components=comps))
print("open3d" in sys.modules, "dash" in sys.modules)
"""


@pytest.mark.parametrize("device, imported", [("cpu", "True"), ("cuda", "False")])
def test_the_driver_imports_the_ray_caster_for_the_workers_it_forks(device, imported):
    """On the CPU the frames' (and the preparation's) workers are forked with open3d already imported, without its
    plotting viewer; a GPU device is left to pick its own renderer."""
    pytest.importorskip("open3d")
    r = subprocess.run([sys.executable, "-c", _DRIVER, device], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-2:] == [imported, "False"], r.stdout
