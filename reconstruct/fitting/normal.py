"""The landmark fit's normal equations, built and solved fast (what makes the 3-view fit run at video rate).

Two observations make the Gauss-Newton system cheap:

1. **Cameras fold into a 3x3 metric per landmark.** Every residual of landmark *n* in frame *t* depends on the
   parameters only through the landmark's world point ``X_tn``; with ``G_tcn = d e_tcn / d X_tn`` (2x3, weighted)
   the data term's normal equations are those of a 3D point residual with metric ``Q_tn = sum_c G^T G`` and
   gradient ``q_tn = sum_c G^T e``. The per-frame blocks are then products of the model's landmark bases with
   ``Q`` in the model frame (``Q' = Rh^T Q Rh``), batched matrix products instead of (C N 2) x P Jacobians.
   (Triggs et al. 2000, "Bundle adjustment - a modern synthesis", sec. 6: reduced / structured normal equations.)
2. **The frame parameters form a band.** Ordered frame by frame, each frame's block (pose + expression, P wide)
   couples only to frames t +- 1, t +- 2 through the second-difference smoothing: bandwidth 2P. The identity (Ki,
   shared) is eliminated by its Schur complement; banded Cholesky (LAPACK pbtrf) solves the rest in O(T P^3).

A detector bias's expression x view term gives each camera its own expression basis ``B + Bx [phi_tc]`` (``Bx``
about a third of ``B`` at the landmarks), which would undo the folding of the cameras for the expression blocks:
built exactly (2 C N rows per frame) they made the 3-view fit 2x slower. The term enters the *gradient* exactly
(:func:`expression_view_gradient`) and the cost the steps are accepted on; the Hessian blocks are built with one
basis per frame and landmark, at the cameras' weighted mean view (:func:`mean_view`): exact through one camera,
and through several off only by how the cameras' views spread about that mean. With an exact gradient the solve
still converges to the minimum of the cost (seeds 11 / 21: face errors within 0.02 mm of the exact blocks', same
iteration count, docs/fitting.md).

Variables held fixed in an iteration (pose-only start, blendshape weights at a bound of their [0, 1] box) keep
their place in the band: their rows and columns are replaced by the identity with a zero right-hand side.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import torch

from ..errors import FitError


def expression_view_gradient(qm: torch.Tensor, Bx: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """(T, Ke) the expression x view term's part of the data gradient: ``sum_c (Bx [phi_tcn])^T qm_tcn``.

    Args:
        qm: (T, C, N, 3) per camera ``(d e / d model-frame point)^T e`` (weighted). Bx: (N, 3, Ke, 2) the term's
            slopes. phi: (T, C, 2) the view direction's model-frame x, y per frame and camera, or (T, C, N, 2) per
            landmark too.
    """
    T, C, N = qm.shape[:3]
    if phi.dim() == 3:
        phi = phi[:, :, None].expand(T, C, N, 2)
    qf = torch.einsum("tcnd,tcnf->ftnd", qm, phi).reshape(2, T, N * 3)
    Bxf = Bx.permute(3, 0, 1, 2).reshape(2, N * 3, -1)
    return qf[0] @ Bxf[0] + qf[1] @ Bxf[1]


def mean_view(G: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """(T, N, 2) each landmark's view features averaged over the cameras, weighted by how much each camera's rows
    weigh (``|G_tcn|^2``): the expression basis ``B + Bx [mean_view]`` the Hessian blocks are built with."""
    wt = (G * G).sum((-1, -2))  # (T, C, N)
    return (wt[..., None] * phi[:, :, None]).sum(1) / wt.sum(1).clamp_min(1e-300)[..., None]


def mean_view_basis(B: torch.Tensor, Bx: torch.Tensor, pm: torch.Tensor) -> torch.Tensor:
    """(T, N, 3, Ke) the expression basis at the mean views ``pm`` (T, N, 2) (:func:`mean_view`)."""
    Bx0, Bx1 = Bx[..., 0].contiguous(), Bx[..., 1].contiguous()  # strided slices made the products 4x slower
    return torch.addcmul(B[None], Bx0[None], pm[..., 0, None, None]).addcmul_(Bx1[None], pm[..., 1, None, None])


def reduced_blocks(G: torch.Tensor, e: torch.Tensor, RL: torch.Tensor, Rh: torch.Tensor, Jl: torch.Tensor,
                   A: torch.Tensor, B: torch.Tensor, with_identity: bool, pose_only: bool = False,
                   Bx: torch.Tensor | None = None, phi: torch.Tensor | None = None):
    """Per-frame normal-equation blocks of the data term.

    Args:
        G: (T, C, N, 2, 3) weighted d residual / d world point. e: (T, C, N, 2) weighted residuals.
        RL: (T, C', N, 3) rotated model-frame landmarks (``Rh L``), C' = 1 (shared by the cameras) or C (per
            camera: a view-dependent detector bias). Rh: (T, 3, 3) head rotations. Jl: (T, 3, 3)
            SO(3) left Jacobians of the rotation parameters.
        A: (N, 3, Ki) identity basis. B: (N, 3, Ke) expression basis (at the landmarks, model frame).
        with_identity: also return the identity blocks. pose_only: skip the expression blocks (zeros).
        Bx, phi: the detector bias's expression x view term (each camera's expression basis is ``B + Bx [phi]``;
            needs per-camera ``RL``): it enters the gradient exactly, the Hessian blocks are built at each
            landmark's mean view over the cameras (:func:`mean_view`, module docstring).
    Returns:
        Htt (T, P, P), gt (T, P), and when ``with_identity``: Hta (T, P, Ki), Haa (Ki, Ki), ga (Ki,); P = 6 + Ke.
    """
    T, C, N = G.shape[:3]
    Ke, Ki = B.shape[2], A.shape[2]
    P = 6 + Ke
    eye = torch.eye(3, dtype=G.dtype, device=G.device)
    if RL.shape[1] == 1:  # one landmark point for all cameras: fold the cameras first
        Gc = G.permute(0, 2, 1, 3, 4).reshape(T, N, C * 2, 3)  # the cameras' rows of each landmark stacked
        Q = Gc.transpose(-1, -2) @ Gc  # (T, N, 3, 3) world metric of each landmark
        q = (Gc.transpose(-1, -2) @ e.permute(0, 2, 1, 3).reshape(T, N, C * 2, 1))[..., 0]  # (T, N, 3)
        Qc, qc = Q[:, None], q[:, None]
    else:  # per-camera points (a view-dependent detector bias): the pose blocks per camera
        Qc = G.transpose(-1, -2) @ G  # (T, C, N, 3, 3)
        qc = (G.transpose(-1, -2) @ e[..., None])[..., 0]  # (T, C, N, 3)
        Q, q = Qc.sum(1), qc.sum(1)
    # pose Jacobian of the world point: [d X / d rot, d X / d trans] = [-[RL]x Jl, I]  (T, C', N, 3, 6);
    # column j of [RL]x Jl is RL x Jl[:, j]
    C1 = RL.shape[1]
    rot = -torch.linalg.cross(RL[..., :, None].expand(T, C1, N, 3, 3), Jl[:, None, None].expand(T, C1, N, 3, 3),
                              dim=-2)
    Kp = torch.cat([rot, eye.expand(T, C1, N, 3, 3)], -1)
    KQc = Kp.transpose(-1, -2) @ Qc  # (T, C', N, 6, 3)
    KQ = KQc.sum(1)  # (T, N, 6, 3)
    Htt = torch.zeros((T, P, P), dtype=G.dtype, device=G.device)
    gt = torch.zeros((T, P), dtype=G.dtype, device=G.device)
    # sums over cameras and landmarks as one product per frame (not C' N tiny products summed afterwards)
    Kf = Kp.reshape(T, C1 * N * 3, 6)
    Htt[:, :6, :6] = KQc.permute(0, 3, 1, 2, 4).reshape(T, 6, C1 * N * 3) @ Kf
    gt[:, :6] = (Kf.transpose(1, 2) @ qc.reshape(T, C1 * N * 3, 1))[..., 0]
    need_model = with_identity or not pose_only
    if need_model:
        RhT = Rh.transpose(1, 2)[:, None]  # (T, 1, 3, 3)
        KZ = (KQ @ Rh[:, None]).permute(0, 2, 1, 3).reshape(T, 6, N * 3)  # Kp^T Q Rh, model frame on the right
        Qm = RhT @ Q @ Rh[:, None]  # (T, N, 3, 3) model-frame metric
        qm = (RhT @ q[..., None])[..., 0].reshape(T, N * 3)  # (T, 3N)
    if not pose_only:
        Bf = B.reshape(N * 3, Ke)
        gt[:, 6:] = qm @ Bf
        Bm = B[None]  # (1 or T, N, 3, Ke) the basis of the Hessian blocks
        if Bx is not None and phi is not None:  # the expression x view term: its gradient exactly
            if C1 != C:
                raise ValueError("an expression x view term needs per-camera landmark points")
            gt[:, 6:] += expression_view_gradient((RhT[:, None] @ qc[..., None])[..., 0], Bx, phi)
            Bm = mean_view_basis(B, Bx, mean_view(G, phi))
        # Qm B per landmark as three broadcast multiply-adds (faster than N batched 3-wide products)
        QB = Qm[..., :, 0:1] * Bm[:, :, None, 0, :]  # (T, N, 3, Ke)
        QB.addcmul_(Qm[..., :, 1:2], Bm[:, :, None, 1, :]).addcmul_(Qm[..., :, 2:3], Bm[:, :, None, 2, :])
        QB = QB.reshape(T, N * 3, Ke)
        Bmf = Bf if Bm.shape[0] == 1 else Bm.reshape(T, N * 3, Ke)
        Htt[:, 6:, 6:] = Bmf.transpose(-1, -2) @ QB
        Htt[:, :6, 6:] = KZ @ Bmf
        Htt[:, 6:, :6] = Htt[:, :6, 6:].transpose(1, 2)
    if not with_identity:
        return Htt, gt
    Af = A.reshape(N * 3, Ki)
    Hta = torch.zeros((T, P, Ki), dtype=G.dtype, device=G.device)
    Hta[:, :6] = KZ @ Af
    if not pose_only:
        Hta[:, 6:] = QB.transpose(1, 2) @ Af
    Qs = Qm.sum(0)  # (N, 3, 3)
    Haa = Af.T @ torch.einsum("nab,nbk->nak", Qs, A).reshape(N * 3, Ki)
    ga = Af.T @ qm.sum(0)
    return Htt, gt, Hta, Haa, ga


class BandSolver:
    """Damped solves of the landmark fit's system ``[[Haa, Hat], [Hta, Htt + S]] d = -g`` with ``Htt`` block
    diagonal (T blocks of P) and ``S`` the smoothing's sparse T P x T P matrix (bandwidth 2P), the identity part
    optional. Build once per iteration, then :meth:`solve` for each damping the iteration tries."""

    def __init__(self, Htt: np.ndarray, gt: np.ndarray, StS: sp.spmatrix | None, fixed: np.ndarray,
                 Hta: np.ndarray | None = None, Haa: np.ndarray | None = None, ga: np.ndarray | None = None) -> None:
        T, P, _ = Htt.shape
        n = T * P
        self.T, self.P, self.n = T, P, n
        self.u = 2 * P if StS is not None else P - 1
        u = self.u
        keep = ~np.asarray(fixed, bool).reshape(n)
        self.keep = keep
        ab = np.zeros((u + 1, n))
        iu, ju = np.triu_indices(P)
        blk = np.arange(T)[:, None] * P
        rows, cols = (blk + iu[None]).ravel(), (blk + ju[None]).ravel()
        vals = np.where(keep[rows] & keep[cols], Htt[:, iu, ju].ravel(), 0.0)
        ab[u + rows - cols, cols] = vals  # upper band storage (LAPACK): ab[u + i - j, j] = H[i, j], i <= j
        if StS is not None:
            c = sp.triu(StS).tocoo()  # distinct (row, col) pairs
            m = keep[c.row] & keep[c.col]
            ab[u + c.row[m] - c.col[m], c.col[m]] += c.data[m]
        self.ab = ab
        self.diag = ab[u].copy()
        self.g = np.where(keep, gt.reshape(n), 0.0)
        self.free_identity = Hta is not None
        if self.free_identity:
            self.Hta = np.where(keep[:, None], Hta.reshape(n, -1), 0.0)
            self.Haa, self.ga = Haa, ga
            self.rhs = np.concatenate([self.Hta, self.g[:, None]], axis=1)  # the same for every damping tried

    def solve(self, mu: float) -> tuple[np.ndarray | None, np.ndarray]:
        """(identity step or None, frame-parameter step (T, P)) of the system damped by ``mu`` (LM:
        ``H + diag(mu max(diag H, 1e-9) + 1e-12)``)."""
        ab = self.ab.copy()
        d = self.diag
        ab[self.u] = np.where(self.keep, d + mu * np.maximum(d, 1e-9) + 1e-12, 1.0)
        try:
            cb = sla.cholesky_banded(ab, lower=False, check_finite=False)
        except np.linalg.LinAlgError as exc:
            raise FitError(f"fit normal equations are singular: {exc}") from exc
        if not self.free_identity:
            return None, -sla.cho_solve_banded((cb, False), self.g, check_finite=False).reshape(self.T, self.P)
        sol = sla.cho_solve_banded((cb, False), self.rhs, check_finite=False)
        X, y = sol[:, :-1], sol[:, -1]  # Htt^-1 Hta, Htt^-1 g
        Haa = self.Haa + np.diag(mu * np.maximum(np.diag(self.Haa), 1e-9) + 1e-12)
        S = Haa - self.Hta.T @ X
        try:
            da = np.linalg.solve(S, -self.ga + self.Hta.T @ y)
        except np.linalg.LinAlgError as exc:
            raise FitError(f"fit normal equations are singular: {exc}") from exc
        dt = -(y + X @ da)
        return da, dt.reshape(self.T, self.P)
