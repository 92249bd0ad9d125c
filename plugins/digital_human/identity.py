"""Multi-image identity fit: one identity shared by all young reference stills, expression and head pose free per
image, from 2D landmarks (each still seen by its own camera).

Energy (minimised by Levenberg-Marquardt with analytic Jacobians -- the model is linear in the coefficients; the
lens projection's 2x3 derivative by central differences -- Huber IRLS weights, after PnP initialisation and 5
pose-only iterations; rotations updated multiplicatively; damping schedule, accept/reject loop and Huber weights from
the least-squares core :mod:`reconstruct.lsq`):

    sum_i sum_n w_n c_in rho(|| pi_i(R_i L_n(alpha, beta_i) + t_i) - x_in || / sigma_px)
        + lambda_id ||alpha||^2 + lambda_ex sum_i ||beta_i||^2

with ``L_n`` the model's landmark positions (linear in the coefficients), ``pi_i`` still i's camera (OpenCV,
distortion included), ``rho`` Huber, ``w_n`` the landmark map's reliability weights and ``c_in`` detector
confidences. Blendshape expressions are kept in [0, 1] by projecting every step onto the box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from reconstruct.camera import CameraModel
from reconstruct.conventions import rodrigues
from reconstruct.errors import FitError
from reconstruct.lsq import Damping, damped_step, huber_weights

log = logging.getLogger(__name__)

#: the identity fit's damping schedule (``H + mu diag(diag H + 1e-9)``): an iteration gives up once mu passes 1e8,
#: and so does the fit
DAMPING = Damping(initial=1e-3, increase=4.0, decrease=3.0, floor=1e-9, ceiling=1e8, max_tries=None)


@dataclass(frozen=True, slots=True, eq=False)
class StillsFit:
    """Result of :func:`fit_identity_to_stills`.

    Attributes:
        identity: (Ki,) float64 identity coefficients (model's N(0, 1) units; trailing modes zero if not fitted).
        expression: (S, Ke) float64 expression weights per still.
        R: (S, 3, 3) float64 model-to-world rotations. t: (S, 3) float64 metres (world = the still's camera world).
        residual_px: (S,) RMS landmark reprojection error per still, pixels.
    """

    identity: np.ndarray
    expression: np.ndarray
    R: np.ndarray
    t: np.ndarray
    residual_px: np.ndarray

    def vertices(self, model, i: int) -> np.ndarray:
        """(V, 3) world-frame vertices of still ``i``."""
        return model.vertices(self.identity, self.expression[i]) @ self.R[i].T + self.t[i]


def fit_identity_to_stills(*args, **kwargs) -> StillsFit:
    """See :func:`_fit`. Runs with single-threaded BLAS: the problem is small (a few hundred unknowns) and
    multi-threaded BLAS on a busy machine is up to 100x slower for it."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _fit(*args, **kwargs)


def _fit(model, scheme: str, cams: Sequence[CameraModel], points: Sequence[np.ndarray],
                           conf: Sequence[np.ndarray], *, n_identity: int = 40, lambda_identity: float = 0.5,
                           lambda_expression: float = 0.5, sigma_px: float = 1.0, huber: float = 3.0,
                           iterations: int = 60, identity: np.ndarray | None = None) -> StillsFit:
    """Fit identity (shared), expression and pose (per still) to landmarks.

    Args:
        model: :class:`reconstruct.face.model.FaceModel` (metres) with a landmark map for ``scheme``.
        cams: one camera per still (OpenCV; its world is where the still's pose is expressed).
        points: per still (N, 2) pixel landmarks (NaN = missing). conf: per still (N,) confidences in [0, 1].
        n_identity: identity modes fitted (the rest stay 0).
        lambda_identity / lambda_expression: prior weights (energy units: squared pixels / sigma_px^2).
        identity: a fixed identity (set by the user): only expressions and poses are fitted.
    """
    import cv2

    lm = model.landmark_map(scheme)
    S = len(cams)
    if S == 0 or len(points) != S or len(conf) != S:
        raise FitError(f"identity fit needs one landmark set per still; got {len(points)} for {S} stills")
    ki = min(n_identity, model.n_identity)
    ok_lm = lm.triangle >= 0
    tri = model.triangles[np.where(ok_lm, lm.triangle, 0)]  # (N, 3)
    bary = lm.bary.astype(np.float64)

    def at_lm(arr):  # (..., V, 3) -> (..., N, 3), C-contiguous (einsum's layout would be copied at every product)
        return np.ascontiguousarray(np.einsum("nk,...nkd->...nd", bary, arr[..., tri, :]))

    mean_np = at_lm(model.mean.astype(np.float64))  # (N, 3)
    A_np = at_lm(model.identity_basis[:ki].astype(np.float64))  # (Ki, N, 3)
    B_np = at_lm(model.expression_basis.astype(np.float64))  # (Ke, N, 3)
    wts = []
    obs = []
    for i in range(S):
        p = np.asarray(points[i], np.float64)
        c = np.asarray(conf[i], np.float64)
        if p.shape != (len(lm.triangle), 2):
            raise FitError(f"still {i}: {p.shape[0]} landmarks, the model's {scheme!r} map has {len(lm.triangle)}")
        w = lm.weight * c * ok_lm * np.isfinite(p).all(1)
        wts.append(w)
        obs.append(np.nan_to_num(p))
    Wn = np.stack(wts)  # (S, N)
    Xo = np.stack(obs)  # (S, N, 2)
    # PnP initialisation of each still's pose from the mean shape
    rv0, t0 = np.zeros((S, 3)), np.zeros((S, 3))
    m_np = mean_np
    for i, cam in enumerate(cams):
        use = wts[i] > 0.5
        if use.sum() < 6:
            raise FitError(f"reference still {i} ({cam.name}) has only {int(use.sum())} usable landmarks",
                           hint="use stills where the face is clearly visible, roughly frontal to 3/4 view")
        ok, rv, tv = cv2.solvePnP(m_np[use], obs[i][use], cam.K, cam.dist, flags=cv2.SOLVEPNP_EPNP)
        ok, rv, tv = cv2.solvePnP(m_np[use], obs[i][use], cam.K, cam.dist, rv, tv, True, cv2.SOLVEPNP_ITERATIVE)
        # PnP gives model -> camera; the pose we want is model -> world
        Rc, _ = cv2.Rodrigues(rv)
        Rw = cam.R.T @ Rc
        tw = cam.R.T @ (tv.reshape(3) - cam.t)
        rv0[i] = cv2.Rodrigues(Rw)[0].reshape(3)
        t0[i] = tw
    blend = model.expression_kind == "blendshape"
    fixed = identity is not None
    if fixed:
        A_np = at_lm(model.identity_basis.astype(np.float64))
        ki = model.n_identity
        a = np.zeros(ki)
        given = np.asarray(identity, np.float64).reshape(-1)[:ki]
        a[: given.size] = given
    else:
        a = np.zeros(ki)
    ke = model.n_expression
    N = mean_np.shape[0]
    A_t, B_t = _by_landmark(A_np), _by_landmark(B_np)  # (N, 3, K): the bases' layout for the Jacobian's products
    b = np.full((S, ke), 0.05 if blend else 0.0)
    Rs = np.stack([rodrigues(r) for r in rv0])
    ts = t0.copy()
    na = 0 if fixed else ki
    P = na + S * (ke + 6)

    def project(Xw, cam):
        return cam.project(Xw)

    def evaluate(a, b, Rs, ts, jac: bool):
        """Scaled data residuals (S, N, 2) px/sigma, and if jac the Jacobian (S*N*2, P)."""
        res = np.zeros((S, N, 2))
        J = np.zeros((S * N * 2, P)) if jac else None
        shape = mean_np + np.tensordot(a, A_np, axes=1)  # (N, 3): the identity's part, the same for every still
        for i, cam in enumerate(cams):
            L = shape + np.tensordot(b[i], B_np, axes=1)  # (N, 3)
            RL = L @ Rs[i].T
            Xw = RL + ts[i]
            if not jac:
                res[i] = (project(Xw, cam) - Xo[i]) / sigma_px
                continue
            # d uv / d Xw by central differences (lens distortion included): the points and their 6 shifted copies
            # projected at once (the same floats as one call each: projection works point by point)
            seen = project((Xw[None] + _SHIFTS[:, None, :]).reshape(-1, 3), cam).reshape(7, N, 2)
            res[i] = (seen[0] - Xo[i]) / sigma_px
            D = np.zeros((N, 2, 3))
            for k in range(3):
                D[:, :, k] = (seen[1 + 2 * k] - seen[2 + 2 * k]) / (2 * _H)
            D /= sigma_px
            rows = slice(i * N * 2, (i + 1) * N * 2)
            Jr = J[rows]
            if na:
                Jr[:, :na] = _chain(D, _rotated(Rs[i], A_t)).reshape(N * 2, na)
            c0 = na + i * ke
            Jr[:, c0:c0 + ke] = _chain(D, _rotated(Rs[i], B_t)).reshape(N * 2, ke)
            c1 = na + S * ke + i * 6
            skew = np.zeros((N, 3, 3))  # d(exp(w) RL)/dw at 0 = -[RL]_x
            skew[:, 0, 1], skew[:, 0, 2] = RL[:, 2], -RL[:, 1]
            skew[:, 1, 0], skew[:, 1, 2] = -RL[:, 2], RL[:, 0]
            skew[:, 2, 0], skew[:, 2, 1] = RL[:, 1], -RL[:, 0]
            Jr[:, c1:c1 + 3] = _chain(D, skew).reshape(N * 2, 3)
            Jr[:, c1 + 3:c1 + 6] = D.reshape(N * 2, 3)
        return res, J

    def total(res, hub_w, a, b):
        r = (res * np.sqrt(Wn * hub_w)[..., None]).ravel()
        c = float(r @ r) + lambda_expression * float((b * b).sum())
        if not fixed:
            c += lambda_identity * float(a @ a)
        return c

    mu = DAMPING.initial
    lo_b, hi_b = (0.0, 1.0) if blend else (-np.inf, np.inf)
    for it in range(iterations):
        res, J = evaluate(a, b, Rs, ts, True)
        hub_w = huber_weights(np.linalg.norm(res, axis=-1), huber)
        sw = np.repeat(np.sqrt(Wn * hub_w).ravel(), 2)
        Jw = J * sw[:, None]
        r = res.ravel() * sw
        H = Jw.T @ Jw
        g = Jw.T @ r
        prior = np.zeros(P)
        prior[na:na + S * ke] = lambda_expression
        if na:
            prior[:na] = lambda_identity
        x_lin = np.concatenate([a[:na], b.ravel()])
        g[:na + S * ke] += prior[:na + S * ke] * x_lin
        H[np.diag_indices(P)] += prior
        if it < 5:  # pose-only warm-up
            keep = np.zeros(P, bool)
            keep[na + S * ke:] = True
            H = H * np.outer(keep, keep) + np.diag(~keep * 1.0)
            g = g * keep
        cost = total(res, hub_w, a, b)

        def solve(mu):
            return np.linalg.solve(H + mu * np.diag(np.diag(H) + 1e-9), -g)

        def candidate(step):  # the step applied: plain for the coefficients (then the box), rotations multiplied
            a_n = a.copy()
            if na:
                a_n[:na] = a[:na] + step[:na]
            b_n = np.clip(b + step[na:na + S * ke].reshape(S, ke), lo_b, hi_b)
            pose = step[na + S * ke:].reshape(S, 6)
            R_n = np.stack([rodrigues(pose[i, :3]) @ Rs[i] for i in range(S)])
            t_n = ts + pose[:, 3:]
            res_n, _ = evaluate(a_n, b_n, R_n, t_n, False)
            return total(res_n, hub_w, a_n, b_n), (a_n, b_n, R_n, t_n)

        step = damped_step(solve, candidate, cost, mu, DAMPING)
        mu = step.damping
        if step.accepted:
            a, b, Rs, ts = step.state
        if not step.accepted or np.abs(step.step).max() < 1e-10:
            break
    res, _ = evaluate(a, b, Rs, ts, False)
    d = np.linalg.norm(res, axis=-1) * sigma_px
    rms = np.sqrt((Wn * d ** 2).sum(1) / np.maximum(Wn.sum(1), 1e-9))
    ident = np.zeros(model.n_identity)
    ident[: a.size] = a
    log.info("identity fit to %d stills: %d iterations, landmark RMS %s px", S, it + 1, np.round(rms, 2).tolist())
    return StillsFit(identity=ident, expression=b.copy(), R=Rs, t=ts, residual_px=rms)


_H = 1e-5  #: the central differences' step, metres
#: a point unshifted, then the central differences' shifts, metres: +h and -h along x, then y, then z
_SHIFTS = np.array([[0.0, 0, 0], [_H, 0, 0], [-_H, 0, 0], [0, _H, 0], [0, -_H, 0], [0, 0, _H], [0, 0, -_H]])


def _by_landmark(basis: np.ndarray) -> np.ndarray:
    """(K, N, 3) -> (N, 3, K), C-contiguous."""
    return np.ascontiguousarray(basis.transpose(1, 2, 0))


def _rotated(R: np.ndarray, basis_t: np.ndarray) -> np.ndarray:
    """(N, 3, K): ``R`` (3, 3) applied to each mode's landmark offsets (``basis_t`` (N, 3, K), :func:`_by_landmark`),
    with the floats of ``np.einsum("ij,knj->nik", R, basis)`` on the (K, N, 3) basis (its sum over j in the order
    (0 + 2) + 1), in a layout ~2x faster to compute."""
    out = R[:, 0, None] * basis_t[:, None, 0, :]
    term = np.multiply(R[:, 2, None], basis_t[:, None, 2, :])
    out += term
    out += np.multiply(R[:, 1, None], basis_t[:, None, 1, :], out=term)
    return out


def _chain(D: np.ndarray, dX: np.ndarray) -> np.ndarray:
    """(N, 2, K) = ``D`` (N, 2, 3) times ``dX`` (N, 3, K) per landmark, with the floats of ``np.einsum("nij,njk->nik",
    D, dX)`` (its sum over j in the order (0 + 1) + 2)."""
    out = D[:, :, 0, None] * dX[:, None, 0, :]
    term = np.multiply(D[:, :, 1, None], dX[:, None, 1, :])
    out += term
    out += np.multiply(D[:, :, 2, None], dX[:, None, 2, :], out=term)
    return out
