"""The least-squares core (:mod:`reconstruct.lsq`): the damping schedules the three solvers use, the accept/reject
loop on problems with known answers (Rosenbrock, a linear system), and the robust weights on a fit with outliers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reconstruct.calibration.lm import DAMPING as CALIBRATION, levenberg_marquardt
from reconstruct.errors import ConfigError
from reconstruct.fitting.solver import DAMPING as LANDMARK_FIT
from reconstruct.lsq import (Damping, damped_step, geman_mcclure_weights, huber_weights, soft_l1_cost,
                             soft_l1_weights)
from plugins.digital_human.identity import DAMPING as IDENTITY_FIT

POLICIES = {"calibration": CALIBRATION, "landmark fit": LANDMARK_FIT, "identity fit": IDENTITY_FIT}


def _lm(residual, jacobian, x0, policy: Damping, iters: int = 500):
    """A plain Levenberg-Marquardt on the core (Marquardt's scaling ``A + lam diag(A)``)."""
    x = np.asarray(x0, float)
    r = residual(x)
    cost, lam = 0.5 * r @ r, policy.initial
    for _ in range(iters):
        J = jacobian(x)
        A, g = J.T @ J, J.T @ r

        def evaluate(step):
            rn = residual(x + step)
            return 0.5 * rn @ rn, (x + step, rn)

        out = damped_step(lambda lam: -np.linalg.solve(A + lam * np.diag(np.diag(A)), g), evaluate, cost, lam, policy)
        lam = out.damping
        if not out.accepted:
            break
        (x, r), cost = out.state, out.cost
    return x, cost


# -- the schedules ----------------------------------------------------------------------------------------------------
def test_the_solvers_schedules_are_pinned():
    """Each solver's schedule, as it was before the core (changing one changes that solver's results)."""
    assert CALIBRATION == Damping(1e-3, increase=10.0, decrease=10.0, floor=1e-12, ceiling=math.inf, max_tries=12)
    assert LANDMARK_FIT == Damping(1e-3, increase=8.0, decrease=10.0, floor=1e-8, ceiling=math.inf, max_tries=8)
    assert IDENTITY_FIT == Damping(1e-3, increase=4.0, decrease=3.0, floor=1e-9, ceiling=1e8, max_tries=None)


@pytest.mark.parametrize("name", list(POLICIES))
def test_damping_sequence(name):
    """The dampings tried until a step is accepted, and the damping handed to the next iteration."""
    p = POLICIES[name]
    tried = []

    def solve(lam):
        tried.append(lam)
        return np.array([lam])

    out = damped_step(solve, lambda s: (1.0 if s[0] >= 0.05 else 3.0, "ok"), 2.0, 1e-3, p)
    expect = [1e-3]
    while expect[-1] < 0.05:
        expect.append(expect[-1] * p.increase)
    assert tried == expect and out.accepted and out.state == "ok" and out.cost == 1.0 and out.tries == len(expect)
    assert out.damping == max(expect[-1] / p.decrease, p.floor)
    assert p.accepted(p.floor) == p.floor  # the floor holds


@pytest.mark.parametrize("name", list(POLICIES))
def test_an_iteration_gives_up(name):
    """No step lowers the cost: max_tries systems, or (identity fit) until the damping passes its ceiling."""
    p = POLICIES[name]
    out = damped_step(lambda lam: np.array([lam]), lambda s: (5.0, None), 2.0, p.initial, p)
    assert not out.accepted and out.state is None and out.cost == 2.0
    if p.max_tries is not None:
        assert out.tries == p.max_tries and out.damping == pytest.approx(p.initial * p.increase**p.max_tries)
    else:
        assert out.damping > p.ceiling and out.damping / p.increase <= p.ceiling and out.step[0] <= p.ceiling


def test_singular_systems_and_non_finite_costs_count_as_rejections():
    def solve(lam):
        if lam < 1e-2:
            raise np.linalg.LinAlgError("singular")
        return np.array([lam])

    out = damped_step(solve, lambda s: (np.nan if s[0] < 0.5 else 1.0, s[0]), 2.0, 1e-3, CALIBRATION,
                      retry_on=(np.linalg.LinAlgError,))
    assert out.accepted and out.state == pytest.approx(1.0) and out.tries == 4  # 1e-3, 1e-2 (NaN), 1e-1, 1
    with pytest.raises(np.linalg.LinAlgError):  # not listed in retry_on: propagates
        damped_step(solve, lambda s: (1.0, None), 2.0, 1e-3, CALIBRATION)


@pytest.mark.parametrize("bad", [dict(increase=1.0), dict(decrease=0.5), dict(initial=0.0),
                                 dict(max_tries=None)])
def test_bad_schedules_are_config_errors(bad):
    with pytest.raises(ConfigError):
        Damping(**bad)


# -- problems with known answers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(POLICIES))
def test_rosenbrock(name):
    """Rosenbrock's valley from (-1.2, 1): the minimum (1, 1) to 1e-8 with every schedule (measured: exact)."""
    res = lambda x: np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])  # noqa: E731
    jac = lambda x: np.array([[-20 * x[0], 10.0], [-1.0, 0.0]])  # noqa: E731
    x, cost = _lm(res, jac, [-1.2, 1.0], POLICIES[name])
    assert np.abs(x - 1).max() < 1e-8 and cost < 1e-16


def test_linear_problem_matches_lstsq():
    """An overdetermined linear system: the least-squares solution to 1e-10 (measured 3e-16)."""
    rng = np.random.default_rng(0)
    A, b = rng.normal(size=(40, 6)), rng.normal(size=40)
    x, _ = _lm(lambda x: A @ x - b, lambda x: A, np.zeros(6), CALIBRATION)
    assert np.abs(x - np.linalg.lstsq(A, b, rcond=None)[0]).max() < 1e-10


def test_calibration_solver_on_rosenbrock():
    """The calibration's Levenberg-Marquardt (finite-difference Jacobian) on Rosenbrock as one residual pair."""
    rosenbrock = lambda x: np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])  # noqa: E731
    x, J, f, n, msg = levenberg_marquardt(rosenbrock, np.array([-1.2, 1.0]))
    assert np.abs(x - 1).max() < 1e-6 and msg.startswith("converged")  # measured: exact, 97 evaluations


# -- robust weights ---------------------------------------------------------------------------------------------------
def test_weight_functions():
    r = np.array([0.0, 0.5, 1.0, 2.0, 8.0])
    np.testing.assert_array_equal(huber_weights(r, 1.0), [1, 1, 1, 0.5, 0.125])
    np.testing.assert_allclose(geman_mcclure_weights(r, 1.0), 1 / (1 + r**2) ** 2)
    np.testing.assert_allclose(soft_l1_weights(r**2, 2.0), 1 / np.sqrt(1 + r**2 / 4))
    # soft-L1 ~ r^2 / 2 for small residuals, ~ scale * r for large ones
    assert soft_l1_cost(np.array([1e-6]), 1.0) == pytest.approx(0.5e-6) and soft_l1_cost(np.array([1e8]), 2.0) == \
        pytest.approx(2e4, rel=1e-3)
    for fn in (huber_weights, geman_mcclure_weights):  # the torch twins give the same numbers
        t = fn(torch.as_tensor(r), 1.5)
        assert isinstance(t, torch.Tensor)
        np.testing.assert_array_equal(t.numpy(), fn(r, 1.5))


@pytest.mark.parametrize("loss", ["huber", "geman-mcclure", "soft-l1"])
def test_robust_line_fit_with_outliers(loss):
    """A line through 100 points (noise 0.01) of which 20 are gross outliers (+2..5): IRLS with each weight recovers
    slope and intercept to 0.025 (measured: Huber 0.012, Geman-McClure 0.001, soft-L1 0.013) where plain least
    squares is 0.72 off."""
    rng = np.random.default_rng(1)
    x = np.linspace(-1, 1, 100)
    y = 0.7 * x - 0.3 + rng.normal(0, 0.01, 100)
    y[rng.choice(100, 20, replace=False)] += rng.uniform(2, 5, 20)
    A = np.c_[x, np.ones_like(x)]
    plain = np.linalg.lstsq(A, y, rcond=None)[0]
    assert np.abs(plain - [0.7, -0.3]).max() > 0.5
    p = plain
    for _ in range(50):
        r = np.abs(A @ p - y)
        w = {"huber": lambda: huber_weights(r, 0.05), "geman-mcclure": lambda: geman_mcclure_weights(r, 0.05),
             "soft-l1": lambda: soft_l1_weights(r**2, 0.05)}[loss]()
        p = np.linalg.solve(A.T @ (w[:, None] * A), A.T @ (w * y))
    assert np.abs(p - [0.7, -0.3]).max() < 0.025
