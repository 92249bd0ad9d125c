"""The calibrate stage's per-take cost (issue 16): the board is searched for in the run's executor workers, and the
model-choice tests do not import scipy.stats -- both without changing the calibration."""

import subprocess
import sys

import numpy as np
from scipy.stats import chi2, f

from reconstruct.calibration.model_select import LEVEL, nested_f_test, wald_test
from reconstruct.calibration.rig_solve import calibrate_session, detect_session
from reconstruct.executors.local import LocalExecutor


class CountingExecutor(LocalExecutor):
    """A --jobs 2 executor that records what it was given."""

    def __init__(self) -> None:
        super().__init__(jobs=2)
        self.calls: list[tuple[str, int]] = []

    def map(self, fn, items, *args, **kw):
        items = list(items)
        self.calls.append((fn.__name__, len(items)))
        return super().map(fn, items, *args, **kw)


def _same(a, b) -> None:
    assert list(a) == list(b)
    for cam in a:
        assert [d.view for d in a[cam]] == [d.view for d in b[cam]], cam
        for x, y in zip(a[cam], b[cam]):
            assert np.array_equal(x.ids, y.ids) and np.array_equal(x.corners, y.corners), (cam, x.view)
            assert np.array_equal(x.marker_ids, y.marker_ids), (cam, x.view)


def test_board_search_in_workers_gives_the_same_detections(rendered_session):
    s, _, _ = rendered_session
    here = detect_session(s)
    ex = CountingExecutor()
    there = detect_session(s, executor=ex)
    n_images = sum(len([r for r in s.frames(c, kind="calib") if r.file]) for c in s.rig.camera_names)
    assert ex.calls == [("detect_board_job", n_images)]  # every image a work item of the executor
    _same(here, there)  # bit-identical corners, same views, same order


def test_calibration_through_the_executor_is_unchanged(rendered_session):
    s, _, _ = rendered_session
    a = calibrate_session(s)
    b = calibrate_session(s, executor=LocalExecutor(jobs=2))
    for name in a.cameras:
        assert np.array_equal(a.cameras[name].K, b.cameras[name].K), name
        assert np.array_equal(a.cameras[name].dist, b.cameras[name].dist), name
        assert np.array_equal(a.cameras[name].R, b.cameras[name].R), name
        assert np.array_equal(a.cameras[name].t, b.cameras[name].t), name
    assert a.quality["rms_px"] == b.quality["rms_px"]


def test_model_tests_match_scipy_stats_to_the_last_bit():
    for k in (1, 2, 3, 6, 11):
        for dof in (1, 5, 37, 1000, 3907, 100000):
            t = nested_f_test(2.0 * dof, 1.9 * dof, k, dof + 20, 20)
            assert t.F_critical == float(f.ppf(1 - LEVEL, k, dof))
        for x in (0.0, 0.5, 3.0, 17.2, 250.0):
            assert wald_test(x, k)["p_value"] == float(chi2.sf(x, k))


def test_model_tests_do_not_import_scipy_stats():
    # scipy.stats costs 0.3-0.5 s to import and nothing else in a run uses it
    code = ("import sys\nfrom reconstruct.calibration.model_select import LEVEL, nested_f_test, wald_test\n"
            "nested_f_test(10.0, 9.0, 2, 500, 20); wald_test(3.0, 2)\n"
            "assert 'scipy.stats' not in sys.modules, 'scipy.stats imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-500:]


def test_bundle_adjustment_with_the_analytic_jacobian_does_not_import_scipy_optimize():
    # the sparsity pattern and its column colouring (scipy.optimize's group_columns) serve finite differences only;
    # the analytic Jacobian (the default) needs neither, and scipy.optimize is used nowhere else in a run
    code = ("import sys\nimport numpy as np\n"
            "from reconstruct.calibration.bundle import CameraInit, _Problem, bundle_adjust\n"
            "from reconstruct.calibration.synthetic import example_rig_cameras, ideal_detections, make_board_poses\n"
            "from reconstruct.rig import BoardSpec\n"
            "def no_pattern(*a, **k):\n    raise AssertionError('sparsity pattern built')\n"
            "_Problem.sparsity = no_pattern\n"
            "board = BoardSpec(squares=(6, 8), square_size=0.035, marker_size=0.026, dictionary='DICT_4X4_50')\n"
            "cams = example_rig_cameras()\nposes = make_board_poses(board, cams, 6, seed=2)\n"
            "dets = [d for ds in ideal_detections(board, cams, poses, 0.3).values() for d in ds]\n"
            "T_ref = cams['hero'].world_to_camera\n"
            "inits = [CameraInit(n, c.K * [[1.01], [0.99], [1]], c.dist, c.model, c.image_size,\n"
            "                    c.world_to_camera @ np.linalg.inv(T_ref)) for n, c in cams.items()]\n"
            "r = bundle_adjust(inits, 'hero', {k: T_ref @ poses[k] for k in range(6)}, dets, board, refine_board=None)\n"
            "assert r.rms < 1.0, r.rms\n"
            "assert 'scipy.optimize' not in sys.modules, 'scipy.optimize imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-800:]
