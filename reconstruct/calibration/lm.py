"""Levenberg-Marquardt for calibration problems: an analytic Jacobian, or sparse finite-difference Jacobians (one
evaluation per group of structurally independent columns, Curtis-Powell-Reid colouring from scipy), normal equations with a Schur
complement over independent 6-parameter blocks (board poses), and iteratively re-weighted soft-L1 loss. The damping
schedule and its accept/reject loop, and the soft-L1 weights, are the project's least-squares core
(:mod:`reconstruct.lsq`).

Why not ``scipy.optimize.least_squares``: with a sparse Jacobian its ``lsmr`` trust-region solver needed 200+
iterations without converging on a 3-camera rig, and its ``exact`` solver takes a dense SVD of the (2M x P)
Jacobian every iteration (seconds here); the P x P normal equations take milliseconds.
"""

from __future__ import annotations

import numpy as np

from ..lsq import Damping, damped_step, soft_l1_cost, soft_l1_weights


def _jacobian(fun, x: np.ndarray, f0: np.ndarray, S, groups):
    """Forward-difference Jacobian; with a sparsity pattern, one evaluation per group of structurally
    independent columns (Curtis-Powell-Reid)."""
    from scipy.sparse import csr_matrix

    h = 1e-7 * np.maximum(1.0, np.abs(x))
    if S is None:
        J = np.empty((f0.size, x.size))
        for j in range(x.size):
            xp = x.copy()
            xp[j] += h[j]
            J[:, j] = (fun(xp) - f0) / h[j]
        return J, x.size
    S = S.tocsc()
    rows, cols, vals = [], [], []
    for g in range(groups.max() + 1):
        cj = np.flatnonzero(groups == g)
        xp = x.copy()
        xp[cj] += h[cj]
        df = fun(xp) - f0
        for j in cj:
            r = S.indices[S.indptr[j]:S.indptr[j + 1]]
            rows.append(r)
            cols.append(np.full(r.size, j))
            vals.append(df[r] / h[j])
    J = csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(f0.size, x.size))
    return J, int(groups.max() + 1)


def _solve_blocks(A: np.ndarray, g: np.ndarray, nb: int, block: int = 6) -> np.ndarray:
    """Solve ``A x = g`` where the trailing ``A.shape[0] - nb`` unknowns form independent ``block``-sized blocks
    (board poses): Schur complement onto the first ``nb`` unknowns (cameras), the bundle-adjustment classic."""
    n = A.shape[0]
    if nb >= n or (n - nb) % block:
        return np.linalg.solve(A, g)
    m = (n - nb) // block
    Acc, Acb, Abb = A[:nb, :nb], A[:nb, nb:], A[nb:, nb:]
    blocks = np.stack([Abb[i * block:(i + 1) * block, i * block:(i + 1) * block] for i in range(m)])
    inv = np.linalg.inv(blocks)  # (m, 6, 6)
    gb = g[nb:].reshape(m, block)
    Acb3 = Acb.reshape(nb, m, block)
    W = np.einsum("cmi,mij->cmj", Acb3, inv)  # Acb Abb^-1, (nb, m, 6)
    S = Acc - W.reshape(nb, -1) @ Acb.T
    rhs = g[:nb] - W.reshape(nb, -1) @ g[nb:]
    xc = np.linalg.solve(S, rhs) if nb else np.zeros(0)
    xb = np.einsum("mij,mj->mi", inv, gb - (Acb.T @ xc).reshape(m, block))
    return np.concatenate([xc, xb.ravel()])


#: the bundle adjustment's damping schedule (``M = A + lam diag(A)``, a non-positive diagonal entry counting as 1)
DAMPING = Damping(initial=1e-3, increase=10.0, decrease=10.0, floor=1e-12, max_tries=12)


def levenberg_marquardt(fun, x0: np.ndarray, sparsity=None, robust_scale: float | None = None, max_iter: int = 100,
                        tol: float = 1e-10, n_camera_params: int | None = None, jac=None):
    """Minimise ``sum rho(|r_i|^2)`` over residual pairs (one pair = one corner's x, y), Levenberg-Marquardt on
    the normal equations (``J^T W J``, p x p: cheap here since p is a few hundred), with iteratively
    re-weighted soft-L1 loss when ``robust_scale`` (pixels) is given.

    The damping search is :func:`reconstruct.lsq.damped_step` with :data:`DAMPING`; a singular damped system counts
    as a rejected step. ``jac(x, f)``: analytic Jacobian (else finite differences over the sparsity pattern).
    ``n_camera_params``: when the unknowns after the first ``n_camera_params`` are independent 6-blocks (board
    poses), steps are solved by the Schur complement. Returns ``(x, J, f, evaluations, message)``; ``J`` and ``f``
    at the solution (J unweighted). ``sparsity`` is only read without ``jac`` (the colouring of its columns, and
    with it the import of ``scipy.optimize``, is then skipped: ~0.1 s of the calibrate stage).
    """
    groups = None
    if sparsity is not None and jac is None:
        from scipy.optimize._numdiff import group_columns

        groups = group_columns(sparsity)

    def cost_weights(f):
        e2 = (f.reshape(-1, 2) ** 2).sum(1)
        if robust_scale is None:
            return 0.5 * e2.sum(), np.ones_like(e2)
        return soft_l1_cost(e2, robust_scale), soft_l1_weights(e2, robust_scale)

    x = np.asarray(x0, np.float64).copy()
    f = fun(x)
    n = 1
    cost, w = cost_weights(f)
    lam = DAMPING.initial
    msg = "maximum iterations reached"
    J = None
    for _ in range(max_iter):
        J, k = (jac(x, f), 0) if jac is not None else _jacobian(fun, x, f, sparsity, groups)
        n += k
        W = np.repeat(w, 2)
        JW = J.multiply(W[:, None]).tocsr() if hasattr(J, "multiply") else J * W[:, None]
        A = JW.T @ J
        A = A.toarray() if hasattr(A, "toarray") else np.asarray(A)
        g = np.asarray(JW.T @ f).ravel()
        d = np.diag(A).copy()
        d[d <= 0] = 1.0

        def solve(lam):
            M = A + lam * np.diag(d)
            return -(np.linalg.solve(M, g) if n_camera_params is None else _solve_blocks(M, g, n_camera_params))

        def evaluate(step):
            nonlocal n
            xn = x + step
            fn = fun(xn)
            n += 1
            cn, wn = cost_weights(fn)
            return cn, (xn, fn, wn)

        res = damped_step(solve, evaluate, cost, lam, DAMPING, retry_on=(np.linalg.LinAlgError,))
        lam = res.damping
        if not res.accepted:
            msg = "converged (no further decrease)"
            break
        rel = (cost - res.cost) / max(cost, 1e-300)
        (x, f, w), cost, step = res.state, res.cost, res.step
        if rel < tol or np.linalg.norm(step) < tol * (np.linalg.norm(x) + tol):
            msg = "converged"
            break
    J, k = (jac(x, f), 0) if jac is not None else _jacobian(fun, x, f, sparsity, groups)
    return x, J, f, n + k, msg
