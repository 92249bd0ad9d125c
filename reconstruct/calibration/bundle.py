"""Bundle adjustment of a whole rig: camera poses, board poses and (optionally) intrinsics, jointly.

Unknowns: world-to-camera pose (Rodrigues vector + translation, metres) of every camera except the reference
(fixed at identity: it defines the world frame), board-to-world pose of every view, and, with
``refine_intrinsics``, each camera's fx, fy (or one f when the aspect ratio is fixed), cx, cy and distortion.
Residuals: projected minus detected corner, pixels, two per observation. Optionally (``refine_board``) the
board's shape: a 3-D offset of every corner from its nominal print position, shared by all views, with its 7
gauge freedoms (rigid motion, scale) held by constraint rows; ``refine_board=None`` keeps it only when an F-test
(:mod:`.model_select`) finds it significant. The lens model is :mod:`reconstruct.lens`; the projection from the
intrinsics vector and its Jacobians are in :mod:`.projection`.

Solver: Levenberg-Marquardt (:mod:`.lm`, on the least-squares core :mod:`reconstruct.lsq`) with an analytic sparse
Jacobian (:meth:`_Problem.jacobian`; finite differences over the sparsity pattern remain available) and a Schur
complement over the board poses (``tools/bench_calibration.py`` times it against a dense finite-difference Jacobian
and against OpenCV). Two passes: a robust one (soft-L1 loss, scale 1 px, iteratively re-weighted) from the initial
poses, then observations whose residual exceeds ``max(outlier_px, 5 sigma)`` (sigma from the median residual), and
whole images whose RMS exceeds ``max(2.5 outlier_px, 4 x the median image RMS)`` (blur, a frame out of sync), are
dropped and a plain least-squares pass gives the final estimate, its RMS and its covariance (``sigma^2 (J^T J)^-1``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import CalibrationError
from ..rig import BoardSpec
from .boards import corner_points
from .detect import BoardDetection
from .lm import levenberg_marquardt
from .projection import _lens_jacobian, _right_jacobian, _rvec, _skew, project, rodrigues
from .model_select import nested_f_test

log = logging.getLogger(__name__)


#: weight of the board-shape gauge constraints relative to the shape prior
_GAUGE_STIFFNESS = 1e3
#: with the board's shape left to the data, a shape that moves a focal length by more than this fraction from the
#: rigid board's solution is not told apart from the lens (few views: the OpenCV ChArUco sample's 4 photos of one
#: camera went from f = 457 px to 20 px with an "estimated" shape); the rigid board is kept. A real print error
#: moves the focal length by ~0.2 % (docs/calibration.md, model choice)
MAX_SHAPE_FOCAL_SHIFT = 0.02


def _gauge_basis(Q: np.ndarray) -> np.ndarray:
    """Orthonormal basis (3N, 7) of the deformations of the N points ``Q`` (board frame) that are a rigid motion
    or a uniform scaling about their centroid (the board poses' and the square size's, not the shape's)."""
    c = Q - Q.mean(0)
    n = len(Q)
    G = [np.tile(e, n) for e in np.eye(3)]  # translations
    G += [np.cross(e, c).ravel() for e in np.eye(3)]  # infinitesimal rotations
    G.append(c.ravel())  # scaling
    U, S, _ = np.linalg.svd(np.stack(G, axis=1), full_matrices=True)
    rank = int(np.sum(S > 1e-9 * max(S.max(), 1e-12)))
    return U[:, :rank]


@dataclass(frozen=True, slots=True)
class CameraInit:
    """One camera going into the bundle adjustment: intrinsics, lens model, world-to-camera (4, 4) pose."""

    name: str
    K: np.ndarray
    dist: np.ndarray
    model: str
    image_size: tuple[int, int]
    T: np.ndarray
    fixed_dist: tuple[int, ...] = ()  # indices of distortion coefficients held at their value (e.g. p1, p2 = 2, 3)


@dataclass(frozen=True, slots=True)
class BundleResult:
    """Output of :func:`bundle_adjust`.

    Attributes:
        cameras: camera name -> (K (3, 3), dist (N,), T world-to-camera (4, 4), metres).
        boards: view -> (4, 4) board-to-world transform, metres.
        obs_camera: (M,) camera name per observation (one observation = one corner in one image).
        obs_view: (M,) int view index; ``obs_id``: (M,) int corner id.
        residuals: (M, 2) float64 projected minus detected, pixels, at the solution.
        inliers: (M,) bool, False for observations rejected as outliers.
        rms: RMS residual length over inliers, pixels.
        param_std: camera name -> standard deviations: ``fx``, ``fy``, ``cx``, ``cy`` (px), ``rotation_deg``,
            ``translation_mm`` (the latter two 0 for the reference camera, which defines the world).
        seconds: solve time; ``nfev``: function evaluations of both passes.
        board_offsets: with ``refine_board``, (max corner id + 1, 3) estimated offset of every corner from its
            nominal position in the board frame, metres (zeros for corners never observed); else None.
        board_test: with ``refine_board=None``, the F-test that decided (:class:`.model_select.ModelTest` as a
            dict).
        tangential_wald: camera name -> Wald statistic ``p^T cov(p)^-1 p`` of its tangential coefficients
            p = (p1, p2), for cameras whose p1, p2 were refined (chi-square with 2 degrees of freedom when the lens
            has no tangential distortion).
    """

    cameras: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    boards: dict[int, np.ndarray]
    obs_camera: np.ndarray
    obs_view: np.ndarray
    obs_id: np.ndarray
    residuals: np.ndarray
    inliers: np.ndarray
    rms: float
    param_std: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    nfev: int = 0
    board_offsets: np.ndarray | None = None
    board_test: dict | None = None
    tangential_wald: dict[str, float] = field(default_factory=dict)


class _Problem:
    """Packing of unknowns, the residual function and its Jacobian sparsity."""

    def __init__(self, cams: list[CameraInit], reference: str, boards: dict[int, np.ndarray],
                 dets: list[BoardDetection], board: BoardSpec, refine_intrinsics: bool, fix_aspect: bool,
                 refine_board: bool = False, board_prior_m: float = 0.002) -> None:
        self.cams = cams
        self.names = [c.name for c in cams]
        self.ref = self.names.index(reference)
        self.refine = refine_intrinsics
        self.fix_aspect = fix_aspect
        self.views = sorted(boards)
        vidx = {v: i for i, v in enumerate(self.views)}
        cidx = {n: i for i, n in enumerate(self.names)}
        obj, oc, ov, oid, uv = [], [], [], [], []
        for d in dets:
            if d.camera not in cidx or d.view not in vidx:
                continue
            obj.append(d.object_points(board))
            uv.append(d.corners)
            oc.append(np.full(d.n, cidx[d.camera]))
            ov.append(np.full(d.n, vidx[d.view]))
            oid.append(d.ids)
        if not obj:
            raise CalibrationError("no board observations to adjust")
        self.obj, self.uv = np.concatenate(obj), np.concatenate(uv)
        self.oc, self.ov, self.oid = np.concatenate(oc), np.concatenate(ov), np.concatenate(oid)
        self.aspect = [c.K[1, 1] / c.K[0, 0] if fix_aspect else None for c in cams]
        # column layout
        self.pose_col: dict[int, int] = {}
        col = 0
        for i in range(len(cams)):
            if i != self.ref:
                self.pose_col[i] = col
                col += 6
        self.intr_col: dict[int, tuple[int, int]] = {}
        for i, c in enumerate(cams):
            n = (3 if fix_aspect else 4) + len(self._free(c))
            if refine_intrinsics:
                self.intr_col[i] = (col, n)
                col += n
        # board shape: a 3-D offset of every observed corner from its nominal position (board frame, metres), shared
        # by all views (a print that is not exactly to scale, not flat). The 7 deformations the board poses absorb
        # or the square size defines (a rigid motion, a uniform scaling: the board keeps its nominal mean size) are
        # held at zero by stiff constraint rows; a weak zero-mean prior (board_prior_m) keeps corners seen in few
        # views in place.
        self.refine_board = refine_board
        self.prior_w = 1.0 / board_prior_m
        self.corner_ids = np.unique(self.oid) if refine_board else np.zeros(0, int)
        self.corner_k = np.full(int(self.oid.max()) + 1, -1)
        self.corner_k[self.corner_ids] = np.arange(len(self.corner_ids))
        self.gauge = _gauge_basis(corner_points(board)[self.corner_ids]) if refine_board else np.zeros((0, 0))
        self.shape_col = col
        col += 3 * len(self.corner_ids)
        self.board_col = col
        self.n_params = col + 6 * len(self.views)
        x0 = np.zeros(self.n_params)
        for i, c in enumerate(cams):
            if i in self.pose_col:
                x0[self.pose_col[i]:self.pose_col[i] + 3] = _rvec(c.T[:3, :3])
                x0[self.pose_col[i] + 3:self.pose_col[i] + 6] = c.T[:3, 3]
            if i in self.intr_col:
                a, n = self.intr_col[i]
                x0[a:a + n] = self._intr_vec(c)
        for j, v in enumerate(self.views):
            x0[self.board_col + 6 * j:self.board_col + 6 * j + 3] = _rvec(boards[v][:3, :3])
            x0[self.board_col + 6 * j + 3:self.board_col + 6 * j + 6] = boards[v][:3, 3]
        self.x0 = x0

    @staticmethod
    def _free(c: CameraInit) -> list[int]:
        return [i for i in range(len(c.dist)) if i not in c.fixed_dist]

    def _intr_vec(self, c: CameraInit) -> np.ndarray:
        K = c.K
        d = np.asarray(c.dist)[self._free(c)]
        if self.fix_aspect:
            return np.concatenate([[K[0, 0], K[0, 2], K[1, 2]], d])
        return np.concatenate([[K[0, 0], K[1, 1], K[0, 2], K[1, 2]], d])

    def full_intr(self, i: int, v: np.ndarray) -> np.ndarray:
        """Free intrinsics vector of camera i -> (fx|f, [fy], cx, cy, full dist)."""
        c = self.cams[i]
        k = 3 if self.fix_aspect else 4
        d = np.array(c.dist, np.float64)
        d[self._free(c)] = v[k:]
        return np.concatenate([v[:k], d])

    def unpack(self, x: np.ndarray):
        cam_R, cam_t, intr = [], [], []
        for i, c in enumerate(self.cams):
            if i in self.pose_col:
                p = x[self.pose_col[i]:self.pose_col[i] + 6]
                cam_R.append(rodrigues(p[:3])[0])
                cam_t.append(p[3:])
            else:
                cam_R.append(c.T[:3, :3])
                cam_t.append(c.T[:3, 3])
            if i in self.intr_col:
                a, n = self.intr_col[i]
                intr.append(self.full_intr(i, x[a:a + n]))
            else:
                intr.append(self.full_intr(i, self._intr_vec(c)))
        b = x[self.board_col:].reshape(-1, 6)
        return cam_R, cam_t, intr, rodrigues(b[:, :3]), b[:, 3:]

    def board_offsets(self, x: np.ndarray) -> np.ndarray:
        """(n_corners_max + 1, 3) offset of every corner id from its nominal board position, metres."""
        out = np.zeros((len(self.corner_k), 3))
        if self.refine_board:
            out[self.corner_ids] = x[self.shape_col:self.board_col].reshape(-1, 3)
        return out

    def prior(self, x: np.ndarray) -> np.ndarray:
        """Residuals of the board-shape prior (offset / prior sigma) and of the gauge constraints (stiff), padded
        to an even count (the solver takes residuals in pairs)."""
        d = x[self.shape_col:self.board_col]
        r = np.concatenate([d * self.prior_w, self.gauge.T @ d * (_GAUGE_STIFFNESS * self.prior_w)])
        return np.concatenate([r, np.zeros(len(r) % 2)])

    def prior_jacobian(self):
        from scipy.sparse import coo_matrix

        n = self.board_col - self.shape_col
        g = self.gauge.shape[1]
        rows = np.concatenate([np.arange(n), np.repeat(n + np.arange(g), n)])
        cols = self.shape_col + np.concatenate([np.arange(n), np.tile(np.arange(n), g)])
        vals = np.concatenate([np.full(n, self.prior_w), (self.gauge.T * (_GAUGE_STIFFNESS * self.prior_w)).ravel()])
        m = n + g
        return coo_matrix((vals, (rows, cols)), shape=(m + m % 2, self.n_params)).tocsr()

    def residuals(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        cam_R, cam_t, intr, bR, bt = self.unpack(x)
        sel = slice(None) if mask is None else mask
        obj, oc, ov, uv = self.obj[sel], self.oc[sel], self.ov[sel], self.uv[sel]
        if self.refine_board:
            obj = obj + self.board_offsets(x)[self.oid[sel]]
        Xw = np.einsum("nij,nj->ni", bR[ov], obj) + bt[ov]
        out = np.empty((len(obj), 2))
        for i, c in enumerate(self.cams):
            m = oc == i
            if not np.any(m):
                continue
            Xc = Xw[m] @ cam_R[i].T + cam_t[i]
            out[m] = project(Xc, intr[i], c.model, self.aspect[i]) - uv[m]
        return out.ravel()

    def jacobian(self, x: np.ndarray, mask: np.ndarray):
        """Analytic Jacobian of :meth:`residuals` (sparse CSR, same layout as :meth:`sparsity`).

        Poses by the chain rule with ``d(R(r) p)/dr = -R [p]_x J_r(r)`` (``J_r``: right Jacobian of SO(3));
        the lens function (a few operations per point) by central differences over its inputs.
        """
        from scipy.sparse import coo_matrix

        cam_R, cam_t, intr, bR, bt = self.unpack(x)
        obj, oc, ov = self.obj[mask], self.oc[mask], self.ov[mask]
        if self.refine_board:
            obj = obj + self.board_offsets(x)[self.oid[mask]]
        RvX = np.einsum("nij,nj->ni", bR[ov], obj)
        Xw = RvX + bt[ov]
        b = x[self.board_col:].reshape(-1, 6)
        Jr_b = _right_jacobian(b[:, :3])  # (V, 3, 3)
        dXw_drv = -np.einsum("nij,njk,nkl->nil", bR[ov], _skew(obj), Jr_b[ov])  # (n, 3, 3)
        rows, cols, vals = [], [], []
        obs = np.arange(len(oc))

        def put(o, c0, block):  # block (len(o), 2, k) into rows 2o, 2o+1 and columns c0..c0+k-1
            k = block.shape[2]
            r = (2 * o[:, None] + np.arange(2)[None, :])[:, :, None]
            rows.append(np.broadcast_to(r, block.shape).ravel())
            cols.append(np.broadcast_to(np.asarray(c0)[..., None, None] + np.arange(k)[None, None, :]
                                        if np.ndim(c0) else c0 + np.arange(k)[None, None, :], block.shape).ravel())
            vals.append(block.ravel())

        for i, c in enumerate(self.cams):
            m = oc == i
            if not np.any(m):
                continue
            o = obs[m]
            Ri = cam_R[i]
            Xc = Xw[m] @ Ri.T + cam_t[i]
            J_X, J_I = _lens_jacobian(Xc, intr[i], c.model, self.aspect[i])  # (n,2,3), (n,2,k_full)
            if i in self.pose_col:
                Jr_c = _right_jacobian(x[self.pose_col[i]:self.pose_col[i] + 3][None])[0]
                dXc_drc = -np.einsum("ij,njk,kl->nil", Ri, _skew(Xw[m]), Jr_c)
                put(o, self.pose_col[i], np.concatenate([J_X @ dXc_drc, J_X], axis=2))
            if i in self.intr_col:
                a, _ = self.intr_col[i]
                kfix = 3 if self.fix_aspect else 4
                free = [*range(kfix), *(kfix + j for j in self._free(c))]
                put(o, a, J_I[:, :, free])
            JXR = J_X @ Ri  # (n, 2, 3)
            put(o, self.board_col + 6 * ov[m], np.concatenate([JXR @ dXw_drv[m], JXR], axis=2))
            if self.refine_board:
                put(o, self.shape_col + 3 * self.corner_k[self.oid[mask][m]], JXR @ bR[ov[m]])
        r, cc, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        return coo_matrix((v, (r, cc)), shape=(2 * len(oc), self.n_params)).tocsr()

    def sparsity(self, mask: np.ndarray):
        from scipy.sparse import coo_matrix

        oc, ov = self.oc[mask], self.ov[mask]
        obs = np.arange(len(oc))
        rows, cols = [], []

        def add(o: np.ndarray, c: np.ndarray) -> None:  # every (2 rows of obs o) x (columns c) block
            for k in (0, 1):
                rows.append(np.repeat(2 * o + k, c.shape[-1]))
                cols.append(np.broadcast_to(c, (len(o), c.shape[-1])).ravel())

        for i in range(len(self.cams)):
            o = obs[oc == i]
            c = []
            if i in self.pose_col:
                c += list(range(self.pose_col[i], self.pose_col[i] + 6))
            if i in self.intr_col:
                a, n = self.intr_col[i]
                c += list(range(a, a + n))
            if c and len(o):
                add(o, np.array(c)[None, :])
        add(obs, self.board_col + 6 * ov[:, None] + np.arange(6)[None, :])
        if self.refine_board:
            add(obs, self.shape_col + 3 * self.corner_k[self.oid[mask]][:, None] + np.arange(3)[None, :])
        r, c = np.concatenate(rows), np.concatenate(cols)
        return coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(2 * len(oc), self.n_params)).tocsr()


def bundle_adjust(cams: list[CameraInit], reference: str, boards: dict[int, np.ndarray], dets: list[BoardDetection],
                  board: BoardSpec, *, refine_intrinsics: bool = True, fix_aspect: bool = False,
                  outlier_px: float = 2.0, sparse: bool = True, max_nfev: int = 200,
                  analytic: bool = True, refine_board: bool | None = False,
                  board_prior_m: float = 0.002) -> BundleResult:
    """Jointly refine a rig. See the module docstring for the unknowns and the passes.

    ``refine_board``: True estimates the board's shape, False holds it rigid, None decides by an F-test on the final
    pass (the shape is kept when it lowers the residuals by more than chance would at the 0.1 % level).
    """
    import time

    t0 = time.perf_counter()
    def problem(shape: bool) -> _Problem:
        return _Problem(cams, reference, boards, dets, board, refine_intrinsics, fix_aspect, shape, board_prior_m)

    P = problem(refine_board is not False)
    mask = np.ones(len(P.oc), bool)

    def solve(P, x0, mask, robust):
        from scipy.sparse import vstack

        # the sparsity pattern only for finite differences: the analytic Jacobian has it built in
        pattern = sparse and not analytic
        if P.refine_board:  # the board-shape prior's rows go after the corners'
            fun = lambda x: np.concatenate([P.residuals(x, mask), P.prior(x)])  # noqa: E731
            S = vstack([P.sparsity(mask), P.prior_jacobian()]).tocsr() if pattern else None
            jac = ((lambda x, f: vstack([P.jacobian(x, mask), P.prior_jacobian()]).tocsr())  # noqa: E731
                   if analytic and sparse else None)
        else:
            fun = lambda x: P.residuals(x, mask)  # noqa: E731
            S = P.sparsity(mask) if pattern else None
            jac = (lambda x, f: P.jacobian(x, mask)) if analytic and sparse else None  # noqa: E731
        x, J, r, n, msg = levenberg_marquardt(fun, x0, S, robust_scale=1.0 if robust else None, max_iter=max_nfev,
                                              n_camera_params=P.board_col, jac=jac)
        log.debug("Levenberg-Marquardt (%s): %s after %d evaluations", "soft_l1" if robust else "linear", msg, n)
        return x, J, r, n

    x1, _, _, nfev = solve(P, P.x0, mask, True)
    res = P.residuals(x1).reshape(-1, 2)
    norm = np.linalg.norm(res, axis=1)
    sigma = float(np.median(norm)) / 1.1774  # median of a 2-D Gaussian's radius = 1.1774 sigma
    thresh = max(outlier_px, 5 * sigma)
    mask = norm < thresh
    # whole (camera, view) images that fit far worse than the rest are blurred or not simultaneous: drop them
    key = P.oc * (len(P.views) + 1) + P.ov
    view_rms = {k: float(np.sqrt(np.mean(norm[key == k] ** 2))) for k in np.unique(key)}
    med_view = float(np.median(list(view_rms.values())))
    for k, v in view_rms.items():
        if v > max(4 * med_view, 2.5 * outlier_px):
            mask[key == k] = False
            log.info("bundle adjustment: camera %s view %s rejected (RMS %.2f px, median view %.2f px)",
                     P.names[k // (len(P.views) + 1)], P.views[k % (len(P.views) + 1)], v, med_view)
    if mask.mean() < 0.5:
        raise CalibrationError(
            f"bundle adjustment kept only {mask.mean():.0%} of the corners (median error {np.median(norm):.1f} px); "
            "the rig geometry did not converge", hint="check that views with the same index are simultaneous "
            "across cameras (frames.csv rows) and that the board spec matches the print")
    test = None
    if refine_board is None:  # also the rigid board from the same start; keep the shape only if it is significant
        shaped, rigid = P, problem(False)
        x0r = np.concatenate([x1[:shaped.shape_col], x1[shaped.board_col:]])
        (x, J2, f2, n), (xr, Jr, fr, nr) = _both(lambda: solve(shaped, x1, mask, False),
                                                 lambda: solve(rigid, x0r, mask, False))
        nfev += n + nr
        rr, rs = rigid.residuals(xr, mask), shaped.residuals(x, mask)
        # 3 unknowns per corner, 7 of them gauge (held by the constraint rows)
        test = nested_f_test(float(rr @ rr), float(rs @ rs), 3 * len(shaped.corner_ids) - 7, rs.size,
                             shaped.n_params - 7)
        degenerate = _shape_moves_focal(shaped, x, rigid, xr) if test.significant else None
        if not test.significant or degenerate:
            P, x, J2, f2 = rigid, xr, Jr, fr
        log.info("board shape: F = %.1f (critical %.1f): %s", test.F, test.F_critical,
                 "estimated" if test.significant and not degenerate else "held rigid")
    else:
        x, J2, f2, n = solve(P, x1, mask, False)
        nfev += n
    res = P.residuals(x).reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum(res[mask] ** 2, axis=1))))
    cam_R, cam_t, intr, bR, bt = P.unpack(x)
    out_cams = {}
    for i, c in enumerate(cams):
        v = intr[i]
        if fix_aspect:
            fx, cx, cy, d = v[0], v[1], v[2], v[3:]
            fy = fx * P.aspect[i]
        else:
            fx, fy, cx, cy, d = v[0], v[1], v[2], v[3], v[4:]
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = cam_R[i], cam_t[i]
        out_cams[c.name] = (K, np.array(d, np.float64), T)
    out_boards = {}
    for j, v in enumerate(P.views):
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = bR[j], bt[j]
        out_boards[v] = T
    std, wald = _param_std(P, J2, f2, x)
    secs = time.perf_counter() - t0
    log.info("bundle adjustment: %d cameras, %d views, %d/%d corners kept, RMS %.3f px, %d evaluations, %.2f s",
             len(cams), len(P.views), int(mask.sum()), mask.size, rms, nfev, secs)
    return BundleResult(cameras=out_cams, boards=out_boards, obs_camera=np.array(P.names)[P.oc],
                        obs_view=np.array(P.views)[P.ov], obs_id=P.oid.copy(), residuals=res, inliers=mask, rms=rms,
                        param_std=std, seconds=secs, nfev=nfev,
                        board_offsets=P.board_offsets(x) if P.refine_board else None,
                        board_test=(None if test is None else
                                    {**test.to_dict(), **({"held_rigid": degenerate} if degenerate else {})}),
                        tangential_wald=wald)


def _both(a, b):
    """``(a(), b())``: on two threads where two cores are free (the two solves of the board-shape test are
    independent, and NumPy, SciPy's sparse products and LAPACK let go of the GIL), else one after the other."""
    from ..executors.local import available_cores

    if available_cores() < 2:
        return a(), b()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        fb = pool.submit(b)
        ra = a()
        return ra, fb.result()


def _shape_moves_focal(shaped: _Problem, xs: np.ndarray, rigid: _Problem, xr: np.ndarray) -> str | None:
    """Why a significant board shape is not kept (None: keep it): it moves a camera's focal length by more than
    ``MAX_SHAPE_FOCAL_SHIFT`` from the rigid board's solution, i.e. the data cannot tell the board's shape from
    the lens."""
    fs, fr = shaped.unpack(xs)[2], rigid.unpack(xr)[2]
    for name, a, b in zip(shaped.names, fs, fr):
        if abs(a[0] / b[0] - 1) > MAX_SHAPE_FOCAL_SHIFT:
            log.info("board shape: camera %s focal %.1f px with the shape, %.1f px without: held rigid",
                     name, a[0], b[0])
            return (f"with the shape, the focal length of camera {name!r} would move from {b[0]:.1f} to {a[0]:.1f} "
                    "px: too few views to tell the board's shape from the lens")
    return None


def _param_std(P: _Problem, J, f: np.ndarray, x: np.ndarray) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Standard deviations from sigma^2 (J^T J)^-1 at the final solution ``x`` (``f``: residuals of the final
    pass), and the Wald statistic of each camera's refined tangential coefficients (see :class:`BundleResult`)."""
    m, p = J.shape
    dof = max(m - p, 1)
    s2 = float(np.sum(f ** 2)) / dof
    JtJ = J.T @ J
    JtJ = JtJ.toarray() if hasattr(JtJ, "toarray") else np.asarray(JtJ)
    try:
        cov = np.linalg.inv(JtJ) * s2
    except np.linalg.LinAlgError:  # singular: a parameter the data do not constrain
        cov = np.linalg.pinv(JtJ) * s2
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    out, wald = {}, {}
    for i, c in enumerate(P.cams):
        d: dict[str, float] = {"rotation_deg": 0.0, "translation_mm": 0.0}
        if i in P.pose_col:
            a = P.pose_col[i]
            d["rotation_deg"] = float(np.degrees(np.linalg.norm(sd[a:a + 3])))
            d["translation_mm"] = float(1000 * np.linalg.norm(sd[a + 3:a + 6]))
        if i in P.intr_col:
            a, _ = P.intr_col[i]
            if P.fix_aspect:
                d.update(fx=float(sd[a]), fy=float(sd[a] * P.aspect[i]), cx=float(sd[a + 1]), cy=float(sd[a + 2]))
            else:
                d.update(fx=float(sd[a]), fy=float(sd[a + 1]), cx=float(sd[a + 2]), cy=float(sd[a + 3]))
            free = P._free(c)
            if c.model == "pinhole" and 2 in free and 3 in free:
                j = a + (3 if P.fix_aspect else 4) + free.index(2)
                p = x[j:j + 2]
                C = cov[j:j + 2, j:j + 2]
                try:
                    wald[c.name] = float(p @ np.linalg.solve(C, p))
                except np.linalg.LinAlgError:
                    wald[c.name] = float("inf")
        out[c.name] = d
    return out, wald

