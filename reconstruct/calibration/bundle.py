"""Bundle adjustment of a whole rig: camera poses, board poses and (optionally) intrinsics, jointly.

Unknowns: world-to-camera pose (Rodrigues vector + translation, metres) of every camera except the reference
(fixed at identity: it defines the world frame), board-to-world pose of every view, and, with
``refine_intrinsics``, each camera's fx, fy (or one f when the aspect ratio is fixed), cx, cy and distortion.
Residuals: projected minus detected corner, pixels, two per observation.

Solver: Levenberg-Marquardt (:mod:`.lm`) with an analytic sparse Jacobian (:meth:`_Problem.jacobian`; finite
differences over the sparsity pattern remain available) and a Schur complement over the board poses
(``tools/bench_calibration.py`` times it against a dense finite-difference Jacobian and against OpenCV). Two passes: a
robust one (soft-L1 loss, scale 1 px, iteratively re-weighted) from the initial poses, then observations whose
residual exceeds ``max(outlier_px, 5 sigma)`` (sigma from the median residual), and whole images whose RMS exceeds
``max(2.5 outlier_px, 4 x the median image RMS)`` (blur, a frame out of sync), are dropped and a plain
least-squares pass gives the final estimate, its RMS and its covariance (``sigma^2 (J^T J)^-1``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import CalibrationError
from ..rig import BoardSpec
from .detect import BoardDetection
from .lm import levenberg_marquardt

log = logging.getLogger(__name__)


def rodrigues(r: np.ndarray) -> np.ndarray:
    """(N, 3) rotation vectors -> (N, 3, 3) rotation matrices (vectorised Rodrigues formula)."""
    r = np.asarray(r, np.float64).reshape(-1, 3)
    th = np.linalg.norm(r, axis=1)
    small = th < 1e-12
    k = r / np.where(small, 1.0, th)[:, None]
    K = np.zeros((len(r), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    s, c = np.sin(th)[:, None, None], np.cos(th)[:, None, None]
    R = np.eye(3)[None] + s * K + (1 - c) * (K @ K)
    R[small] = np.eye(3)
    return R


def _rvec(R: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(np.asarray(R, np.float64))[0].ravel()


def project(Xc: np.ndarray, intr: np.ndarray, model: str, aspect: float | None = None) -> np.ndarray:
    """Camera-frame points (N, 3) -> pixels (N, 2). ``intr`` = (fx, fy, cx, cy, *dist) or, with ``aspect``,
    (f, cx, cy, *dist) and fy = f * aspect."""
    if aspect is None:
        fx, fy, cx, cy, d = intr[0], intr[1], intr[2], intr[3], intr[4:]
    else:
        fx, cx, cy, d = intr[0], intr[1], intr[2], intr[3:]
        fy = fx * aspect
    z = Xc[:, 2]
    x, y = Xc[:, 0] / z, Xc[:, 1] / z
    if model == "fisheye":
        r = np.sqrt(x * x + y * y)
        th = np.arctan(r)
        th2 = th * th
        thd = th * (1 + d[0] * th2 + d[1] * th2**2 + d[2] * th2**3 + d[3] * th2**4)
        s = np.where(r > 1e-12, thd / np.maximum(r, 1e-12), 1.0)
        xd, yd = x * s, y * s
    else:
        k = np.zeros(8)
        k[: min(len(d), 8)] = d[:8]
        r2 = x * x + y * y
        radial = (1 + k[0] * r2 + k[1] * r2**2 + k[4] * r2**3) / (1 + k[5] * r2 + k[6] * r2**2 + k[7] * r2**3)
        xd = x * radial + 2 * k[2] * x * y + k[3] * (r2 + 2 * x * x)
        yd = y * radial + k[2] * (r2 + 2 * y * y) + 2 * k[3] * x * y
    return np.stack([fx * xd + cx, fy * yd + cy], axis=1)


def _skew(v: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N, 3, 3) cross-product matrices."""
    S = np.zeros((len(v), 3, 3))
    S[:, 0, 1], S[:, 0, 2], S[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    S[:, 1, 0], S[:, 2, 0], S[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    return S


def _right_jacobian(r: np.ndarray) -> np.ndarray:
    """(N, 3) rotation vectors -> (N, 3, 3) right Jacobians of SO(3): R(r + d) ~ R(r) exp([J_r d]_x)."""
    th = np.linalg.norm(r, axis=1)[:, None, None]
    K = _skew(r)
    small = th < 1e-8
    ths = np.where(small, 1.0, th)
    a = np.where(small, 0.5, (1 - np.cos(ths)) / ths**2)
    b = np.where(small, 1 / 6, (ths - np.sin(ths)) / ths**3)
    return np.eye(3)[None] - a * K + b * (K @ K)


def _lens_jacobian(Xc: np.ndarray, intr: np.ndarray, model: str, aspect: float | None):
    """d(pixels)/d(camera point) (N, 2, 3) and d(pixels)/d(intrinsics vector) (N, 2, K), central differences."""
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


class _Problem:
    """Packing of unknowns, the residual function and its Jacobian sparsity."""

    def __init__(self, cams: list[CameraInit], reference: str, boards: dict[int, np.ndarray],
                 dets: list[BoardDetection], board: BoardSpec, refine_intrinsics: bool, fix_aspect: bool) -> None:
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

    def residuals(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        cam_R, cam_t, intr, bR, bt = self.unpack(x)
        sel = slice(None) if mask is None else mask
        obj, oc, ov, uv = self.obj[sel], self.oc[sel], self.ov[sel], self.uv[sel]
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
        r, c = np.concatenate(rows), np.concatenate(cols)
        return coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(2 * len(oc), self.n_params)).tocsr()


def bundle_adjust(cams: list[CameraInit], reference: str, boards: dict[int, np.ndarray], dets: list[BoardDetection],
                  board: BoardSpec, *, refine_intrinsics: bool = True, fix_aspect: bool = False,
                  outlier_px: float = 2.0, sparse: bool = True, max_nfev: int = 200,
                  analytic: bool = True) -> BundleResult:
    """Jointly refine a rig. See the module docstring for the unknowns and the two passes."""
    import time

    t0 = time.perf_counter()
    P = _Problem(cams, reference, boards, dets, board, refine_intrinsics, fix_aspect)
    mask = np.ones(len(P.oc), bool)
    nfev = 0

    def solve(x0, mask, robust):
        nonlocal nfev
        fun = lambda x: P.residuals(x, mask)  # noqa: E731
        S = P.sparsity(mask) if sparse else None
        jac = (lambda x, f: P.jacobian(x, mask)) if analytic and sparse else None  # noqa: E731
        x, J, r, n, msg = levenberg_marquardt(fun, x0, S, robust_scale=1.0 if robust else None, max_iter=max_nfev,
                                              n_camera_params=P.board_col, jac=jac)
        nfev += n
        log.debug("Levenberg-Marquardt (%s): %s after %d evaluations", "soft_l1" if robust else "linear", msg, n)
        return x, J, r

    x1, _, _ = solve(P.x0, mask, True)
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
    x, J2, f2 = solve(x1, mask, False)
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
    std = _param_std(P, J2, f2)
    secs = time.perf_counter() - t0
    log.info("bundle adjustment: %d cameras, %d views, %d/%d corners kept, RMS %.3f px, %d evaluations, %.2f s",
             len(cams), len(P.views), int(mask.sum()), mask.size, rms, nfev, secs)
    return BundleResult(cameras=out_cams, boards=out_boards, obs_camera=np.array(P.names)[P.oc],
                        obs_view=np.array(P.views)[P.ov], obs_id=P.oid.copy(), residuals=res, inliers=mask, rms=rms,
                        param_std=std, seconds=secs, nfev=nfev)


def _param_std(P: _Problem, J, f: np.ndarray) -> dict[str, dict[str, float]]:
    """Standard deviations from sigma^2 (J^T J)^-1 at the final solution (``f``: residuals of the final pass)."""
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
    out = {}
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
        out[c.name] = d
    return out
