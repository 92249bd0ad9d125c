"""Multi-view 3DMM fit of a landmark sequence: one identity for the session, expression and head pose per frame.

Energy (all terms are squared, unit-free residuals; a Levenberg-Marquardt solve of the whole sequence at once):

* data: for each frame t, camera c, landmark n: ``sqrt(w) * (pi_c(R_t L_n(alpha, beta_t) + t_t) - u_tcn) / sigma_px``
  with ``pi_c`` the calibrated projection incl. distortion and ``w = confidence * landmark weight * visibility *
  robust weight`` (IRLS: Huber or Geman-McClure on the 2D residual norm, Zach 2014 "Robust bundle adjustment
  revisited" for the IRLS view of both);
* priors: ``alpha / sigma_identity`` (N(0, 1) identity), ``beta / sigma_expression``; blendshape weights are
  projected onto [0, 1] after every step;
* temporal smoothing: second differences ``(theta_{t-1} - 2 theta_t + theta_{t+1}) / sigma_smooth`` of rotation
  vector, translation and expression (a window of three frames; it penalises acceleration, not motion);
* visibility: a landmark whose surface normal faces away from a camera (self-occlusion when the head turns) gets
  zero weight in that camera; contour landmarks carry their (reduced) map weight.

Jacobians are analytic (exact SO(3) left Jacobian for the rotation vector; the 2x3 lens Jacobian from
:func:`reconstruct.lens.distort_jacobian_torch`, forward-mode autodiff when a camera is fisheye). The normal equations
are block-sparse (identity couples all frames, smoothing couples neighbours) and solved with a sparse LU (scipy) —
the only CPU step; everything per landmark runs on ``device``. The damping schedule, its accept/reject loop and the
IRLS weights are the project's least-squares core (:mod:`reconstruct.lsq`); a singular system is a
:class:`~reconstruct.errors.FitError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import FitError
from ..lsq import Damping, damped_step, geman_mcclure_weights, huber_weights
from .landmark_basis import LandmarkBasis
from .projection import CameraStack, project_with_jacobian

log = logging.getLogger(__name__)

#: the landmark fit's damping schedule (``H + diag(mu max(diag H, 1e-9) + 1e-12)``); restarts after the pose-only
#: iterations
DAMPING = Damping(initial=1e-3, increase=8.0, decrease=10.0, floor=1e-8, max_tries=8)


@dataclass(frozen=True, slots=True)
class FitSettings:
    """Fit settings (parsed once from the CLI/stage options).

    Attributes:
        sigma_px: landmark noise, pixels (data residuals are divided by it).
        loss: robust loss on each landmark's 2D residual: ``"huber"``, ``"geman-mcclure"`` or ``"l2"``.
        robust_px: robust loss scale, pixels.
        sigma_identity: prior std of identity coefficients (model units are N(0, 1)).
        sigma_expression: prior std of expression weights.
        smooth_rotation: std of the per-frame rotation acceleration, radians/frame^2 (<= 0 disables smoothing).
        smooth_translation: std of the translation acceleration, metres/frame^2.
        smooth_expression: std of the expression acceleration, weights/frame^2.
        smooth_robust: robust scale of the smoothing, in its own standard deviations: an acceleration beyond it is
            penalised linearly (Huber, IRLS), so that the onset of a fast expression (a scream, a blink) the
            landmarks clearly show is not cut down like noise (<= 0: quadratic, as before).
        smooth_robust_modes: the expression modes whose smoothing is robust (e.g. the mouth's,
            :func:`.modes.mouth_modes`); None: every smoothed parameter (pose included).
        smooth_mouth: multiplier of the temporal smoothing strength of the mouth's expression modes (``mouth_modes``)
            relative to the rest (1: the same; 0.5: half as strong).
        mouth_relief: where the detected mouth accelerates beyond this many times the take's typical value in every
            camera that sees it (:func:`.mouth_motion.mouth_acceleration`), the smoothing of the mouth's modes is
            weakened there (:func:`.mouth_motion.smoothing_relief`), so that a fast opening the landmarks show is
            kept (0: off; default 3, measured in docs/fitting.md "Fast mouth motion").
        inner_lip_weight: multiplier of the inner-lip landmarks' weight (:data:`.mouth_motion.INNER_LIPS`; 1: the
            weight the detector bias's scatter gives them). Measured, not the default (docs/fitting.md "Fast mouth
            motion": 1.5 brings obama's mouth residual 1.59 -> 1.48 % IOD, but the opt-in photometric refinement's
            gain on the test-small take falls 0.3 -> 0.09 mm).
        mouth_modes: the expression modes ``smooth_mouth`` and ``mouth_relief`` apply to; None: found from the model
            by :func:`.fit.fit_sequence` (:func:`.modes.mouth_modes`) when either is in use.
        visibility_cos: a landmark counts as visible in a camera when cos(normal, direction to camera) exceeds this.
        iterations: Levenberg-Marquardt iterations (after ``pose_iterations`` pose-only ones).
        pose_iterations: iterations that move only the head poses (initialisation).
        fit_identity: estimate the identity (False: keep ``identity`` given to :func:`fit_landmarks`).
        auto_sigma: when the fitted residuals show the landmarks are noisier than ``sigma_px`` (by more than 1.5x),
            refit once with ``sigma_px`` (and ``robust_px``) set to the measured noise, so that priors and temporal
            smoothing get the weight a noisier detector needs.
        n_identity / n_expression: use only the first modes (None = all).
        linear: how each damped system is solved: ``"band"`` (cameras folded into a 3x3 metric per landmark,
            banded Cholesky with the identity's Schur complement, :mod:`.normal`) or ``"sparse-lu"`` (the full
            per-camera Jacobian and scipy's sparse LU: the solver before, kept as the reference it is checked and
            benchmarked against; same steps to rounding).
        size_prior: relative std of the identity's face size (RMS radius of its neutral landmarks) about the model
            mean's (0: no such prior). One view cannot tell a face's size from its distance; this decides it
            (:mod:`.size_prior`).
    """

    sigma_px: float = 1.0
    loss: Literal["huber", "geman-mcclure", "l2"] = "huber"
    robust_px: float = 3.0
    sigma_identity: float = 1.0
    sigma_expression: float = 1.0
    smooth_rotation: float = 0.001
    smooth_translation: float = 0.0002
    smooth_expression: float = 0.0125
    smooth_robust: float = 0.0
    smooth_robust_modes: tuple[int, ...] | None = None
    smooth_mouth: float = 1.0
    mouth_relief: float = 3.0
    inner_lip_weight: float = 1.0
    mouth_modes: tuple[int, ...] | None = None
    visibility_cos: float = 0.05
    iterations: int = 15
    pose_iterations: int = 4
    fit_identity: bool = True
    auto_sigma: bool = True
    n_identity: int | None = None
    n_expression: int | None = None
    linear: Literal["band", "sparse-lu"] = "band"
    size_prior: float = 0.0

    def smoothed(self, multiplier: float) -> "FitSettings":
        """These settings with the temporal smoothing ``multiplier`` x stronger (smaller allowed accelerations);
        ``multiplier`` <= 0 switches it off."""
        if multiplier <= 0:
            return replace(self, smooth_rotation=0.0)
        m = multiplier
        return replace(self, smooth_rotation=self.smooth_rotation / m, smooth_translation=self.smooth_translation / m,
                       smooth_expression=self.smooth_expression / m)


#: default smoothing multiplier of a fit with a detector bias: the bias lowers the landmark residuals (MediaPipe
#: 3-4 px -> 1.7-2 px on renders), ``auto_sigma`` then weighs the data ~3x more, and the bare fit's smoothing let
#: 20-27 % more jitter through; 2x brings it below the bare fit's at the same vertex error (docs/fitting.md)
BIAS_SMOOTH = 2.0


@dataclass(frozen=True, slots=True, eq=False)
class FitSolution:
    """Result of :func:`fit_landmarks` (numpy, float64).

    Attributes:
        identity: (Ki,). expression: (T, Ke). rotvec: (T, 3) model-to-world rotation vectors. R: (T, 3, 3).
        t: (T, 3) metres. residual_px: (T, C) RMS reprojection error per camera over used landmarks (NaN: none).
        used: (T, C, N) bool, landmarks that entered the fit (visible, confident, with a correspondence).
        cost: final energy. iterations: LM iterations run.
    """

    identity: np.ndarray
    expression: np.ndarray
    rotvec: np.ndarray
    R: np.ndarray
    t: np.ndarray
    residual_px: np.ndarray
    used: np.ndarray
    cost: float
    iterations: int
    history: tuple[float, ...] = field(default=())


# -- rotations ----------------------------------------------------------------------------------------------------
def _skew(v: torch.Tensor) -> torch.Tensor:
    z = torch.zeros_like(v[..., 0])
    return torch.stack([torch.stack([z, -v[..., 2], v[..., 1]], -1),
                        torch.stack([v[..., 2], z, -v[..., 0]], -1),
                        torch.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def rodrigues(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation vectors (T, 3) -> rotation matrices (T, 3, 3) and SO(3) left Jacobians (T, 3, 3)."""
    th = torch.linalg.norm(r, dim=-1, keepdim=True)[..., None].clamp_min(1e-12)  # (T,1,1)
    Kx = _skew(r)
    I = torch.eye(3, dtype=r.dtype, device=r.device).expand_as(Kx)
    small = th < 1e-6
    a = torch.where(small, torch.ones_like(th), torch.sin(th) / th)
    b = torch.where(small, 0.5 * torch.ones_like(th), (1 - torch.cos(th)) / th**2)
    c = torch.where(small, torch.ones_like(th) / 6, (th - torch.sin(th)) / th**3)
    KK = Kx @ Kx
    return I + a * Kx + b * KK, I + b * Kx + c * KK


def _log_so3(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (T, 3, 3) -> rotation vectors (T, 3) (via OpenCV's Rodrigues, robust near pi)."""
    import cv2

    Rn = R.detach().cpu().numpy()
    out = np.stack([cv2.Rodrigues(np.ascontiguousarray(r))[0].reshape(3) for r in Rn]) if len(Rn) else np.zeros((0, 3))
    return torch.as_tensor(out, dtype=R.dtype, device=R.device)


# -- the solver ---------------------------------------------------------------------------------------------------
class _Problem:
    def __init__(self, basis: LandmarkBasis, cams: CameraStack, obs: torch.Tensor, conf: torch.Tensor,
                 s: FitSettings, blendshape: bool) -> None:
        self.b, self.cams, self.obs, self.s = basis, cams, obs, s
        self.blendshape = blendshape
        self.Ki = basis.A.shape[2] if s.n_identity is None else min(s.n_identity, basis.A.shape[2])
        self.Ke = basis.B.shape[2] if s.n_expression is None else min(s.n_expression, basis.B.shape[2])
        self.A = basis.A[..., : self.Ki].contiguous()

        self.B = basis.B[..., : self.Ke].contiguous()
        self.Bx = None if basis.Bx is None else basis.Bx[..., : self.Ke, :].contiguous()
        self.view_phi = None  # (T, C, 2) view directions' x, y for the expression x view term (update_view)
        self.Bx_rows = None if self.Bx is None else self.Bx.permute(0, 1, 3, 2).reshape(-1, self.Ke).contiguous()
        self.T = obs.shape[0]
        self.P = 6 + self.Ke
        self.R_ref = torch.eye(3, dtype=obs.dtype, device=obs.device)
        self.view_off = None  # per camera view-bias offsets (update_view)
        # the last residuals without Jacobian: (the x tensors they were computed at, the result); an iteration asks
        # for them at its start twice (weights, cost) and at the point its accepted step was evaluated at
        self._last: tuple | None = None
        # the model's world points and camera-frame points at the x tensors of the last evaluation: the Jacobian's
        # residuals of an iteration are asked at the point its start evaluated (the same computation, kept)
        self._points: tuple | None = None
        finite = torch.isfinite(obs).all(-1)
        self.base_w = torch.where(finite, conf, torch.zeros_like(conf)) * basis.weight  # (T, C, N)
        self.obs0 = torch.where(finite[..., None], obs, torch.zeros_like(obs))
        sm = np.concatenate([np.full(3, s.smooth_rotation), np.full(3, s.smooth_translation),
                             np.full(self.Ke, s.smooth_expression)])
        if s.smooth_mouth != 1.0 and s.mouth_modes:
            m = [6 + k for k in s.mouth_modes if k < self.Ke]
            sm[m] = sm[m] / s.smooth_mouth if s.smooth_mouth > 0 else np.inf
        self.smooth = s.smooth_rotation > 0 and self.T >= 3
        if self.smooth:
            D = sp.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(self.T - 2, self.T))
            self.S0 = sp.kron(D, sp.diags(1.0 / sm)).tocsr()  # (T-2)P x TP, unweighted
            self.relief = None  # (T-2) P weights of the smoothing rows from the detected mouth motion
            if s.mouth_relief > 0 and s.mouth_modes:
                from .mouth_motion import mouth_acceleration, smoothing_relief

                acc = mouth_acceleration(obs.cpu().numpy(), basis.scheme)
                if acc is not None:
                    rel = np.ones((self.T - 2, self.P))
                    m = [6 + k for k in s.mouth_modes if k < self.Ke]
                    rel[:, m] = smoothing_relief(acc[1:-1], s.mouth_relief)[:, None]
                    self.relief = rel.reshape(-1)
            self.set_smooth_weights(None)

    def identity_prior(self, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Hessian (Ki, Ki), gradient (Ki,) and cost of the identity's prior N(0, sigma_identity) per mode."""
        s = self.s
        H = torch.eye(self.Ki, dtype=alpha.dtype, device=alpha.device) / s.sigma_identity**2
        g, c = alpha / s.sigma_identity**2, float((alpha**2).sum()) / s.sigma_identity**2
        if s.size_prior > 0:
            from .size_prior import size_residual

            r, j = size_residual(self.b.mean, self.A, self.b.weight, alpha, s.size_prior)
            H, g, c = H + torch.outer(j, j), g + r * j, c + float(r) ** 2
        return H, g, c

    def set_smooth_weights(self, x: dict | None) -> None:
        """IRLS weights of the smoothing rows (Huber at ``smooth_robust`` standard deviations) at ``x``; None or a
        quadratic smoothing: all 1. ``S`` is the weighted second-difference matrix, ``StS`` its normal matrix."""
        if not self.smooth:
            return
        w = np.ones(self.S0.shape[0])
        if x is not None and self.s.smooth_robust > 0:
            a = np.abs(self.S0 @ self.theta(x))
            k = self.s.smooth_robust
            w = np.where(a > k, k / np.maximum(a, 1e-12), 1.0)
            if self.s.smooth_robust_modes is not None:  # only these expression modes' rows are robust
                robust = np.zeros(self.P, bool)
                robust[[6 + m for m in self.s.smooth_robust_modes if m < self.Ke]] = True
                w = np.where(np.tile(robust, self.T - 2), w, 1.0)
        if self.relief is not None:
            w = w * self.relief
        self.S = (sp.diags(np.sqrt(w)) @ self.S0).tocsr()
        self.StS = (self.S.T @ self.S).tocsr()

    def update_view(self, x: dict) -> None:
        """Per camera offsets of the detector bias's view term at the current head poses (held for an iteration,
        like the visibility): ``view_off`` (T, C, N, 3) model frame, or None without a view term; with an
        expression x view term its view features ``view_phi`` (T, C, 2)."""
        if self.b.view is None and self.Bx is None:
            return
        self._last = self._points = None  # the residuals depend on the view state
        from ..face.detector_bias import view_features

        Rh = rodrigues(x["rot"])[0] @ self.R_ref
        d = self.cams.centers[None] - x["trans"][:, None]  # (T, C, 3) world, face to camera
        v = torch.einsum("tji,tcj->tci", Rh, d) - self.b.view_centre
        v = v / torch.linalg.norm(v, dim=-1, keepdim=True)
        if self.b.view is not None:
            self.view_off = torch.einsum("ndf,tcf->tcnd", self.b.view, view_features(v))
        if self.Bx is not None:
            self.view_phi = v[..., :2].contiguous()

    # model evaluation
    def world_points(self, alpha, beta, rot, trans):
        """Model-frame landmarks L (T, C', N, 3) (C' = C with a per-camera view bias, else 1), their rotation
        RL = Rh L, world points RL + trans, head rotations Rh (T, 3, 3) and left Jacobians Jl (T, 3, 3)."""
        L = self.b.mean + (self.A @ alpha)[None] + (self.B @ beta.T).permute(2, 0, 1)  # (T, N, 3)
        L = L[:, None] if self.view_off is None else L[:, None] + self.view_off
        if self.view_phi is not None:  # the expression x view term: each camera's own expression slopes
            Xb = (self.Bx_rows @ beta.T).reshape(-1, 3, 2, self.T)  # (N, 3, 2, T): Bx beta_t per view feature
            phi = self.view_phi
            L = L + Xb[:, :, 0].permute(2, 0, 1)[:, None] * phi[..., 0, None, None] \
                + Xb[:, :, 1].permute(2, 0, 1)[:, None] * phi[..., 1, None, None]
        Rd, Jl = rodrigues(rot)  # rot is relative to R_ref (no wrap-around near pi; smoothing stays linear)
        Rh = Rd @ self.R_ref
        RL = L @ Rh.transpose(1, 2)[:, None]
        return L, RL, RL + trans[:, None, None], Rh, Jl

    def residuals(self, alpha, beta, rot, trans, jac: bool):
        """(residuals (T, C, N, 2) px, world points Xw, head rotations Rh, Jacobian parts or None). Without
        ``jac``, the result at the same tensors (and view state) as the previous call is that call's (the same
        computation: the same numbers)."""
        key = (alpha, beta, rot, trans)
        if not jac and self._last is not None and all(a is b for a, b in zip(self._last[0], key)):
            return self._last[1]
        if self._points is not None and all(a is b for a, b in zip(self._points[0], key)):
            RL, Xw, Rh, Jl, Xc = self._points[1]
        else:
            _, RL, Xw, Rh, Jl = self.world_points(alpha, beta, rot, trans)
            Xc = Xw @ self.cams.R.transpose(1, 2)[None] + self.cams.t[None, :, None]
            self._points = (key, (RL, Xw, Rh, Jl, Xc))
        if not jac:
            from .projection import project_camera_frame
            out = project_camera_frame(Xc, self.cams) - self.obs0, Xw, Rh, None
            self._last = (key, out)
            return out
        uv, Jp = project_with_jacobian(Xc, self.cams)
        return uv - self.obs0, Xw, Rh, (Jp, RL, Rh, Jl)

    def visibility(self, Xw, Rh):
        n = torch.einsum("tij,nj->tni", Rh, self.b.normals)  # (T, N, 3)
        d = self.cams.centers[None, :, None] - Xw  # (T, C, N, 3)
        cos = (n[:, None] * d).sum(-1) / torch.linalg.norm(d, dim=-1).clamp_min(1e-9)
        return (cos > self.s.visibility_cos).to(Xw.dtype)

    def robust(self, r):
        s = self.s
        rn = torch.linalg.norm(r, dim=-1)
        if s.loss == "huber":
            return huber_weights(rn, s.robust_px)
        if s.loss == "geman-mcclure":
            return geman_mcclure_weights(rn, s.robust_px)
        return torch.ones_like(rn)

    def cost(self, x: dict, w: torch.Tensor) -> float:
        r, *_ = self.residuals(x["alpha"], x["beta"], x["rot"], x["trans"], jac=False)
        e = float((w * (r**2).sum(-1)).sum()) / self.s.sigma_px**2
        return 0.5 * (e + self._prior_cost(x))

    def _prior_cost(self, x) -> float:
        s = self.s
        e = self.identity_prior(x["alpha"])[2] + float((x["beta"] ** 2).sum()) / s.sigma_expression**2
        if self.smooth:
            th = self.theta(x)
            e += float(((self.S @ th) ** 2).sum())
        return e

    def theta(self, x) -> np.ndarray:
        return torch.cat([x["rot"], x["trans"], x["beta"]], dim=1).reshape(-1).cpu().numpy()

    def normal_equations(self, x: dict, w: torch.Tensor):
        s = self.s
        T, P, Ki, Ke, N = self.T, self.P, self.Ki, self.Ke, self.b.n
        r, Xw, Rh, (Jp, RL, Rh, Jl) = self.residuals(x["alpha"], x["beta"], x["rot"], x["trans"], jac=True)
        sw = torch.sqrt(w)[..., None, None] / s.sigma_px  # (T, C, N, 1, 1)
        G = sw * (Jp @ self.cams.R[None, :, None])  # d e / d Xw  (T, C, N, 2, 3)
        J_rot = -G @ (_skew(RL) @ Jl[:, None, None])  # (T, C, N, 2, 3)
        GR = G @ Rh[:, None, None]  # d e / d L  (T, C, N, 2, 3)
        e = sw[..., 0, 0][..., None] * r  # (T, C, N, 2) weighted residuals
        view_g = None
        if self.view_phi is None:
            J_beta = GR @ self.B  # (T, C, N, 2, Ke)
        else:  # the expression x view term: the Hessian's basis at the mean view, the gradient exact (normal.py):
            # J_beta^T e below uses the mean view, view_g moves it to each camera's own
            from .normal import expression_view_gradient, mean_view, mean_view_basis

            pm = mean_view(G, self.view_phi)
            J_beta = GR @ mean_view_basis(self.B, self.Bx, pm)[:, None]
            zc = torch.einsum("tcnid,tcni->tcnd", GR, e)
            view_g = expression_view_gradient(zc, self.Bx, self.view_phi) \
                - expression_view_gradient(zc, self.Bx, pm[:, None].expand(-1, len(self.cams), -1, -1))
        Jt = torch.cat([J_rot, G, J_beta], dim=-1).reshape(T, -1, P)  # (T, M, P)
        ev = e.reshape(T, -1)
        Htt = Jt.transpose(1, 2) @ Jt
        gt = (Jt.transpose(1, 2) @ ev[..., None])[..., 0]
        # identity blocks without forming d e / d alpha: it is GR @ A_n, and A_n does not depend on t or c.
        A = self.A.reshape(N * 3, Ki)
        Y = torch.einsum("tcnip,tcnid->tpnd", Jt.reshape(T, -1, N, 2, P), GR).reshape(T, P, N * 3)
        Hta = Y @ A  # (T, P, Ki)
        Q = torch.einsum("tcnid,tcnie->nde", GR, GR)  # (N, 3, 3)
        QA = (Q @ self.A).reshape(N * 3, Ki)
        Haa = A.T @ QA
        z = torch.einsum("tcnid,tcni->nd", GR, e).reshape(N * 3)
        ga = A.T @ z
        Htt[:, 6:, 6:] += torch.eye(Ke, dtype=Htt.dtype, device=Htt.device) / s.sigma_expression**2
        gt[:, 6:] += x["beta"] / s.sigma_expression**2
        if view_g is not None:
            gt[:, 6:] += view_g
        Hp, gp, _ = self.identity_prior(x["alpha"])
        Haa, ga = Haa + Hp, ga + gp
        return Htt, Hta.transpose(1, 2).transpose(1, 2), Haa, gt, ga

    def reduced_normal_equations(self, x: dict, w: torch.Tensor, free_identity: bool, pose_only: bool):
        """The same system as :meth:`normal_equations` built through :func:`.normal.reduced_blocks`."""
        from .normal import reduced_blocks

        s = self.s
        r, Xw, Rh, (Jp, RL, Rh, Jl) = self.residuals(x["alpha"], x["beta"], x["rot"], x["trans"], jac=True)
        sw = torch.sqrt(w)[..., None, None] / s.sigma_px  # (T, C, N, 1, 1)
        G = sw * (Jp @ self.cams.R[None, :, None])  # (T, C, N, 2, 3)
        e = sw[..., 0, 0][..., None] * r
        out = reduced_blocks(G, e, RL, Rh, Jl, self.A, self.B, free_identity, pose_only, self.Bx, self.view_phi)
        Htt, gt = out[0], out[1]
        Ke = self.Ke
        Htt[:, 6:, 6:] += torch.eye(Ke, dtype=Htt.dtype, device=Htt.device) / s.sigma_expression**2
        gt[:, 6:] += x["beta"] / s.sigma_expression**2
        if not free_identity:
            return Htt, gt, None, None, None
        Hta, Haa, ga = out[2:]
        Hp, gp, _ = self.identity_prior(x["alpha"])
        Haa, ga = Haa + Hp, ga + gp
        return Htt, gt, Hta, Haa, ga

    def band_solver(self, x: dict, w: torch.Tensor, free_identity: bool, pose_only: bool):
        """A :class:`.normal.BandSolver` of this iteration (smoothing added, fixed variables held)."""
        from .normal import BandSolver

        Htt, gt, Hta, Haa, ga = self.reduced_normal_equations(x, w, free_identity, pose_only)
        np_ = lambda a: None if a is None else a.detach().cpu().numpy()  # noqa: E731
        Htt, gt = np_(Htt), np_(gt)
        fixed = np.zeros((self.T, self.P), bool)
        if pose_only:
            fixed[:, 6:] = True
        elif self.blendshape:
            b = x["beta"].cpu().numpy()
            gb = gt[:, 6:].copy()
            if self.smooth:
                gb += (self.S.T @ (self.S @ self.theta(x))).reshape(self.T, self.P)[:, 6:]
            fixed[:, 6:] = ((b <= 1e-9) & (gb > 0)) | ((b >= 1 - 1e-9) & (gb < 0))
        if self.smooth:
            gt = gt + (self.S.T @ (self.S @ self.theta(x))).reshape(self.T, self.P)
        return BandSolver(Htt, gt, self.StS if self.smooth else None, fixed, np_(Hta), np_(Haa), np_(ga))

    def assemble(self, Htt, Hta, Haa, gt, ga, x, free_identity: bool):
        T, P, Ki = self.T, self.P, self.Ki
        Htt, Hta, Haa = (a.detach().cpu().numpy() for a in (Htt, Hta, Haa))
        g_theta = gt.detach().cpu().numpy().reshape(-1)
        H_th = sp.block_diag(list(Htt), format="csr")
        if self.smooth:
            H_th = H_th + self.StS
            g_theta = g_theta + self.S.T @ (self.S @ self.theta(x))
        if not free_identity:
            return H_th.tocsc(), g_theta
        Hta_s = sp.csr_matrix(Hta.reshape(T * P, Ki))
        H = sp.bmat([[sp.csr_matrix(Haa), Hta_s.T], [Hta_s, H_th]], format="csc")
        g = np.concatenate([ga.detach().cpu().numpy(), g_theta])
        return H, g


def fit_landmarks(basis: LandmarkBasis, cams: CameraStack, obs: np.ndarray, conf: np.ndarray, *,
                  rotvec0: np.ndarray, t0: np.ndarray, identity: np.ndarray | None = None,
                  expression0: np.ndarray | None = None, settings: FitSettings = FitSettings(),
                  blendshape: bool = True, device: str = "cpu") -> FitSolution:
    """Fit identity (shared), expression and head pose (per frame) to landmarks seen by calibrated cameras.

    Args:
        basis: the model's landmark basis (scheme of ``obs``). cams: the C cameras of ``obs``'s second axis.
        obs: (T, C, N, 2) detected landmarks in distorted pixels, NaN where missing.
        conf: (T, C, N) per-landmark confidence in [0, 1] (0 where missing).
        rotvec0, t0: (T, 3) initial head poses (model -> world), see :func:`reconstruct.fitting.init.init_poses`.
        identity: (Ki,) fixed or initial identity. expression0: (T, Ke) initial expressions.
    """
    s = settings
    dt = torch.float64
    dev = torch.device(device)
    T, C, N, _ = obs.shape
    if C != len(cams) or N != basis.n:
        raise FitError(f"landmark array has shape {obs.shape}, expected (T, {len(cams)} cameras, {basis.n} "
                       f"{basis.scheme} landmarks, 2)")
    prob = _Problem(basis, cams, torch.as_tensor(obs, dtype=dt, device=dev), torch.as_tensor(conf, dtype=dt, device=dev),
                    s, blendshape)
    Ki, Ke = prob.Ki, prob.Ke
    f = lambda a: torch.as_tensor(np.asarray(a, np.float64), dtype=dt, device=dev).clone()  # noqa: E731
    # rotations are solved relative to the first frame's initial rotation (see _Problem.world_points)
    R0, _ = rodrigues(f(rotvec0))
    prob.R_ref = R0[0].clone()
    rel = _log_so3(R0 @ prob.R_ref.T)
    x = {"alpha": f(np.zeros(Ki) if identity is None else identity[:Ki]),
         "beta": f(np.zeros((T, Ke)) if expression0 is None else expression0[:, :Ke]),
         "rot": rel, "trans": f(t0)}
    mu = DAMPING.initial
    history = []
    n_total = s.pose_iterations + s.iterations
    it = 0
    for it in range(n_total):
        pose_only = it < s.pose_iterations
        if it == s.pose_iterations:
            mu = DAMPING.initial
        free_id = s.fit_identity and not pose_only
        with torch.no_grad():
            prob.update_view(x)
            r, Xw, Rh, _ = prob.residuals(x["alpha"], x["beta"], x["rot"], x["trans"], jac=False)
            w = prob.base_w * prob.visibility(Xw, Rh) * prob.robust(r)
        if not pose_only:
            prob.set_smooth_weights(x)
        c0 = prob.cost(x, w)
        history.append(c0)
        if s.linear == "band":
            band = prob.band_solver(x, w, free_id, pose_only)

            def solve(mu, band=band):
                return band.solve(mu)

            def evaluate(delta):
                xn = _apply_band(prob, x, delta)
                return prob.cost(xn, w), xn
        else:
            solve, evaluate = _sparse_lu_step(prob, x, w, free_id, pose_only)
        step = damped_step(solve, evaluate, c0, mu, DAMPING)
        mu = step.damping
        if step.accepted:
            x = step.state
        if not step.accepted or (c0 - step.cost) < 1e-4 * c0:
            if not pose_only and it > s.pose_iterations + 1:
                break
    with torch.no_grad():
        r, Xw, Rh, _ = prob.residuals(x["alpha"], x["beta"], x["rot"], x["trans"], jac=False)
        used = (prob.base_w * prob.visibility(Xw, Rh)) > 0
        r2 = (r**2).sum(-1)
        n_used = used.sum(-1)
        rms = torch.sqrt((r2 * used).sum(-1) / n_used.clamp_min(1))
        rms = torch.where(n_used > 0, rms, torch.full_like(rms, float("nan")))
        final = prob.cost(x, w)
    Rm = rodrigues(x["rot"])[0] @ prob.R_ref
    np_ = lambda a: a.detach().cpu().numpy()  # noqa: E731
    return FitSolution(identity=np_(x["alpha"]), expression=np_(x["beta"]), rotvec=np_(_log_so3(Rm)), R=np_(Rm),
                       t=np_(x["trans"]), residual_px=np_(rms), used=np_(used), cost=final, iterations=it + 1,
                       history=tuple(history))


def _sparse_lu_step(prob: _Problem, x: dict, w: torch.Tensor, free_id: bool, pose_only: bool):
    """(solve, evaluate) of one iteration through the full Jacobian and scipy's sparse LU (``linear="sparse-lu"``)."""
    T = prob.T
    Htt, Hta, Haa, gt, ga = prob.normal_equations(x, w)
    H, g = prob.assemble(Htt, Hta, Haa, gt, ga, x, free_id)
    off = prob.Ki if free_id else 0
    th_idx = np.arange(T * prob.P).reshape(T, prob.P)
    if pose_only:  # keep only rotation/translation rows of each frame block
        keep = th_idx[:, :6].reshape(-1) + off
    else:  # active set of the [0, 1] box of blendshape weights: bounds the gradient pushes against stay put
        keep = np.ones(len(g), bool)
        if prob.blendshape:
            b = x["beta"].cpu().numpy()
            gb = g[th_idx[:, 6:] + off]
            at_bound = ((b <= 1e-9) & (gb > 0)) | ((b >= 1 - 1e-9) & (gb < 0))
            keep[(th_idx[:, 6:] + off)[at_bound]] = False
        keep = np.flatnonzero(keep)
    idx = keep
    H, g = H[idx][:, idx], g[idx]
    diag = H.diagonal()

    import scipy.sparse.linalg as spla  # only this path (the band solver's banded Cholesky is scipy.linalg's)

    def solve(mu):
        Hd = H + sp.diags(mu * np.maximum(diag, 1e-9) + 1e-12, format="csc")
        try:
            return -spla.spsolve(Hd.tocsc(), g)
        except RuntimeError as exc:  # singular
            raise FitError(f"fit normal equations are singular: {exc}") from exc

    def evaluate(delta):
        xn = _apply(prob, x, delta, idx, free_id)
        return prob.cost(xn, w), xn

    return solve, evaluate


def _apply_band(prob: _Problem, x: dict, delta) -> dict:
    """``x`` moved by a :class:`.normal.BandSolver` step (identity step or None, (T, P) frame step)."""
    da, dt = delta
    dev, dtype = x["rot"].device, x["rot"].dtype
    d = torch.as_tensor(dt, dtype=dtype, device=dev)
    beta = x["beta"] + d[:, 6:]
    if prob.blendshape:
        beta = beta.clamp(0.0, 1.0)
    alpha = x["alpha"] if da is None else x["alpha"] + torch.as_tensor(da, dtype=dtype, device=dev)
    return {"alpha": alpha, "beta": beta, "rot": x["rot"] + d[:, :3], "trans": x["trans"] + d[:, 3:6]}


def _apply(prob: _Problem, x: dict, delta: np.ndarray, idx, free_id: bool) -> dict:
    T, P, Ki = prob.T, prob.P, prob.Ki
    dev, dt = x["rot"].device, x["rot"].dtype
    full = np.zeros((Ki if free_id else 0) + T * P)
    full[idx] = delta
    d_alpha, d_theta = (full[:Ki], full[Ki:]) if free_id else (np.zeros(Ki), full)
    d = torch.as_tensor(d_theta.reshape(T, P), dtype=dt, device=dev)
    beta = x["beta"] + d[:, 6:]
    if prob.blendshape:
        beta = beta.clamp(0.0, 1.0)
    return {"alpha": x["alpha"] + torch.as_tensor(d_alpha, dtype=dt, device=dev), "beta": beta,
            "rot": x["rot"] + d[:, :3], "trans": x["trans"] + d[:, 3:6]}
