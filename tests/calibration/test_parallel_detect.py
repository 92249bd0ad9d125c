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
