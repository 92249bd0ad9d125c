"""The calibrate stage's faster paths give the numbers of the plain ones (issue 16, docs/calibration.md "Speed"):
calibration images read through the project's PNG decoder (OpenCV's pixels; the decoder itself is tested in
tests/test_png_decode.py), the lens Jacobian in fewer passes (bit-equal to one
projection per shifted input), the multi-start intrinsics on threads (the same solution), and the collinearity
pre-check of the initialisation (never calls a view spread that the exact test finds collinear)."""

import cv2
import numpy as np
import pytest

from reconstruct.calibration import intrinsics as intr_mod
from reconstruct.calibration import quality as Q
from reconstruct.calibration.boards import corner_points
from reconstruct.calibration.projection import _lens_jacobian, project
from reconstruct.calibration.rig_solve import read_calib_image
from reconstruct.png import decode_png

from .conftest import SMALL_BOARD


def _opencv(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if img.ndim == 3 else img


def test_calibration_images_read_as_the_session_reads_them(rendered_session, tmp_path):
    s, _, _ = rendered_session
    for cam in s.rig.camera_names:
        for rec in s.frames(cam, kind="calib")[:3]:
            path = s.camera_dir(cam, kind="calib") / rec.file
            assert decode_png(path.read_bytes()) is not None  # the fast path is taken here
            assert np.array_equal(read_calib_image(s, cam, rec), s.read_image(cam, rec, kind="calib"))


def _lens_jacobian_by_definition(Xc, intr, model, aspect):
    """One projection per shifted input (the implementation before the fewer-passes one)."""
    n, k = len(Xc), len(intr)
    J_X = np.empty((n, 2, 3))
    for j in range(3):
        h = 1e-6 * np.maximum(np.abs(Xc[:, 2]), 1e-3)
        d = np.zeros_like(Xc)
        d[:, j] = h
        J_X[:, :, j] = (project(Xc + d, intr, model, aspect) - project(Xc - d, intr, model, aspect)) / (2 * h[:, None])
    J_I = np.empty((n, 2, k))
    for j in range(k):
        h = 1e-6 * max(abs(intr[j]), 1.0)
        ip, im = intr.copy(), intr.copy()
        ip[j] += h
        im[j] -= h
        J_I[:, :, j] = (project(Xc, ip, model, aspect) - project(Xc, im, model, aspect)) / (2 * h)
    return J_X, J_I


@pytest.mark.parametrize("model,n_dist", [("pinhole", 4), ("pinhole", 5), ("pinhole", 8), ("pinhole", 14),
                                          ("fisheye", 4)])
@pytest.mark.parametrize("aspect", [None, 1.0003])
def test_lens_jacobian_is_bit_equal_to_the_definition(model, n_dist, aspect):
    rng = np.random.default_rng(n_dist)
    Xc = np.c_[rng.normal(0, 0.3, (301, 2)), rng.uniform(0.4, 3.0, 301)]
    head = [2000.0, 2001.5, 960.2, 540.7] if aspect is None else [2000.0, 960.2, 540.7]
    intr = np.r_[head, rng.normal(0, 0.05, n_dist)]
    got, want = _lens_jacobian(Xc, intr, model, aspect), _lens_jacobian_by_definition(Xc, intr, model, aspect)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_multi_start_on_threads_is_the_same_solution(rendered_session, monkeypatch):
    from reconstruct.calibration.rig_solve import detect_session

    s, _, _ = rendered_session
    dets = detect_session(s)["hero"]
    obj = [d.object_points(SMALL_BOARD).astype(np.float32).reshape(-1, 1, 3) for d in dets]
    img = [d.corners.astype(np.float32).reshape(-1, 1, 2) for d in dets]
    crit = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    import reconstruct.executors.local as local

    results = []
    for cores in (1, 2, 6):
        monkeypatch.setattr(local, "available_cores", lambda: cores)
        results.append(intr_mod._multi_start(obj, img, dets[0].image_size, 0, crit))
    for r in results[1:]:
        assert r[0] == results[0][0]
        assert np.array_equal(r[1], results[0][1]) and np.array_equal(r[2], results[0][2])


def test_spread_precheck_never_passes_a_collinear_view():
    q = corner_points(SMALL_BOARD)
    rng = np.random.default_rng(7)
    sure = 0
    for t in range(3000):
        k = int(rng.integers(4, len(q)))
        if t % 2:
            ids = rng.choice(len(q), k, replace=False)
        else:  # a run of ids (rows of the board), sometimes with one stray corner
            a = int(rng.integers(0, len(q) - k + 1))
            ids = np.arange(a, a + k)
            if t % 4 == 0:
                ids = np.r_[ids, rng.integers(0, len(q))]
        pts = q[np.unique(ids)]
        if Q.surely_spread(pts, SMALL_BOARD.square_size):
            sure += 1
            assert Q.view_span_squares(pts, SMALL_BOARD.square_size) >= Q.MIN_VIEW_SPAN_SQUARES
    assert sure > 300  # the pre-check settles most views (the bench take: 82 of 85)
    assert Q.surely_spread(q, SMALL_BOARD.square_size)  # the whole board
    assert not Q.surely_spread(q[:5], SMALL_BOARD.square_size)  # one row of corners


def test_board_shape_test_solves_on_threads_give_the_same_adjustment(monkeypatch):
    """refine_board=None solves the shaped and the rigid board from the same start: on two threads where two
    cores are free, one after the other on one core; the same numbers either way."""
    import reconstruct.executors.local as local
    from reconstruct.calibration.bundle import CameraInit, bundle_adjust
    from reconstruct.calibration.synthetic import example_rig_cameras, ideal_detections, make_board_poses

    cams = example_rig_cameras()
    poses = make_board_poses(SMALL_BOARD, cams, 8, seed=2)
    dets = ideal_detections(SMALL_BOARD, cams, poses, 0.3)
    T_ref = cams["hero"].world_to_camera
    rng = np.random.default_rng(4)
    inits = [CameraInit(n, c.K * [[1.01], [0.99], [1]], c.dist, c.model, c.image_size,
                        c.world_to_camera @ np.linalg.inv(T_ref)) for n, c in cams.items()]
    boards = {k: T_ref @ poses[k] for k in range(8)}
    boards = {k: np.r_[np.c_[T[:3, :3], T[:3, 3] + rng.normal(0, 1e-3, 3)], [[0, 0, 0, 1]]] for k, T in boards.items()}
    out = []
    for cores in (1, 2):
        monkeypatch.setattr(local, "available_cores", lambda: cores)
        out.append(bundle_adjust(inits, "hero", boards, [d for ds in dets.values() for d in ds], SMALL_BOARD,
                                 refine_board=None))
    a, b = out
    assert a.board_test is not None and a.board_test == b.board_test and a.rms == b.rms and a.nfev == b.nfev
    for name in a.cameras:
        for u, v in zip(a.cameras[name], b.cameras[name]):
            assert np.array_equal(u, v), name
    assert a.param_std == b.param_std and a.tangential_wald == b.tangential_wald


def test_the_rig_solve_runs_blas_on_one_thread(monkeypatch):
    """The rig's solve sums its products on one BLAS thread on every machine (the same numbers whatever the core
    count; less CPU than threads spinning on small products), and the caller's limits come back after it."""
    from threadpoolctl import threadpool_info

    from reconstruct.calibration import rig_solve
    from reconstruct.calibration.synthetic import example_rig_cameras, ideal_detections, make_board_poses

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen = []
    real = rig_solve.bundle_adjust

    def spy(*args, **kwargs):
        seen.append(blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(rig_solve, "bundle_adjust", spy)
    before = blas_threads()
    cams = example_rig_cameras((640, 480))
    dets = ideal_detections(SMALL_BOARD, cams, make_board_poses(SMALL_BOARD, cams, 10, seed=1), 0.2)
    rig_solve.calibrate_rig(dets, SMALL_BOARD, rig_solve.CalibrationOptions(reference="hero"))
    assert seen and all(t and set(t) == {1} for t in seen), seen
    assert blas_threads() == before
