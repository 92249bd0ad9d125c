"""The least-squares core of the project's three Levenberg-Marquardt solvers: the bundle adjustment
(:mod:`reconstruct.calibration.lm`), the landmark fit (:mod:`reconstruct.fitting.solver`) and the digital-human
identity fit (``plugins/digital_human/identity.py``).

What they share lives here; what they do not stays with them (each assembles its own Jacobian and normal
equations, dense, sparse or block-structured, and its own damped system, whose form is part of its problem):

* :class:`Damping`: the damping schedule of Levenberg-Marquardt (Nocedal & Wright, "Numerical Optimization", 10.3;
  Marquardt 1963): the initial damping, the factors it is divided by after a step that lowers the cost and
  multiplied by after one that does not, its floor and ceiling, and how many damped systems one iteration may try;
* :func:`damped_step`: one iteration's accept/reject loop over the damping, given the caller's solve of the damped
  system and its cost of a candidate step;
* robust losses as iteratively re-weighted least squares (Zach 2014, "Robust bundle adjustment revisited"): a
  residual of norm ``r`` gets weight ``w(r) = rho'(r) / r`` in the next weighted least-squares problem
  (:func:`huber_weights`, :func:`geman_mcclure_weights`, :func:`soft_l1_weights` and its loss
  :func:`soft_l1_cost`). They take numpy arrays, and Huber and Geman-McClure also torch tensors (same formula).

Every solver keeps its own schedule (``tests/test_lsq.py`` pins them): the refactor onto this core left each solver's
arithmetic, hence its results, unchanged to the last bit.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

import numpy as np

from .errors import ConfigError

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Damping:
    """A Levenberg-Marquardt damping schedule (the damping ``lam`` scales whatever the caller adds to its normal
    matrix, e.g. ``lam * diag(J^T J)``).

    Attributes:
        initial: damping of the first iteration.
        increase: factor applied after a rejected step (cost not lower) or a singular system.
        decrease: divisor applied after an accepted step.
        floor: smallest damping after an accepted step.
        ceiling: an iteration gives up once a rejection takes the damping above this (``inf``: never).
        max_tries: damped systems one iteration solves at most (None: until ``ceiling``).
    """

    initial: float = 1e-3
    increase: float = 10.0
    decrease: float = 10.0
    floor: float = 1e-12
    ceiling: float = math.inf
    max_tries: int | None = 12

    def __post_init__(self) -> None:
        if not (self.initial > 0 and self.increase > 1 and self.decrease > 1 and self.floor >= 0):
            raise ConfigError(f"damping schedule {self} must start positive, grow on rejection and shrink on "
                              "acceptance (increase, decrease > 1)")
        if self.max_tries is None and not math.isfinite(self.ceiling):
            raise ConfigError("a damping schedule needs max_tries or a finite ceiling, else a step that never lowers "
                              "the cost loops forever")

    def accepted(self, lam: float) -> float:
        """Damping after an accepted step: ``max(lam / decrease, floor)``."""
        return max(lam / self.decrease, self.floor)

    def rejected(self, lam: float) -> float:
        """Damping after a rejected step: ``lam * increase``."""
        return lam * self.increase


@dataclass(frozen=True, slots=True, eq=False)
class StepResult(Generic[S]):
    """Outcome of :func:`damped_step`.

    Attributes:
        accepted: a step lowered the cost.
        damping: the damping for the next iteration (after the accept or the last reject).
        cost: the accepted step's cost, else the cost the iteration started from.
        state: what the caller's ``evaluate`` returned with the accepted cost (None when no step was accepted).
        step: (P,) the accepted step, else the last one tried (None when every damped system was singular).
        tries: damped systems solved (or found singular).
    """

    accepted: bool
    damping: float
    cost: float
    state: S | None
    step: np.ndarray | None
    tries: int


def damped_step(solve: Callable[[float], np.ndarray], evaluate: Callable[[np.ndarray], tuple[float, S]],
                cost: float, damping: float, policy: Damping,
                retry_on: tuple[type[BaseException], ...] = ()) -> StepResult[S]:
    """One Levenberg-Marquardt iteration's search over the damping.

    Tries ``step = solve(lam)`` for ``lam = damping, damping * increase, ...`` and accepts the first step whose
    ``evaluate(step)`` cost is finite and below ``cost``; stops after ``policy.max_tries`` systems or when a rejection
    takes ``lam`` above ``policy.ceiling``.

    Args:
        solve: ``lam -> step`` (P,): the caller's damped normal equations at damping ``lam``.
        evaluate: ``step -> (cost, state)``: the cost at ``x + step`` (the caller applies the step: a plain sum, a
            box projection, a rotation update) and whatever the caller wants back when the step is accepted.
        cost: the cost at the current estimate. damping: the current damping (``policy.initial`` at the start).
        policy: the damping schedule.
        retry_on: exceptions of ``solve`` that count as a singular system: the damping grows and the next one is
            tried (others propagate).
    """
    lam = damping
    step = None
    tries = 0
    while policy.max_tries is None or tries < policy.max_tries:
        tries += 1
        try:
            step = solve(lam)
        except retry_on:  # singular: more damping
            pass
        else:
            c, state = evaluate(step)
            if np.isfinite(c) and c < cost:
                return StepResult(True, policy.accepted(lam), c, state, step, tries)
        lam = policy.rejected(lam)
        if lam > policy.ceiling:
            break
    return StepResult(False, lam, cost, None, step, tries)


# -- robust losses (IRLS weights) -------------------------------------------------------------------------------------
def _torch(a) -> bool:
    torch = sys.modules.get("torch")  # a tensor implies torch is imported; numpy callers never import it
    return torch is not None and isinstance(a, torch.Tensor)


def huber_weights(r, scale: float):
    """Huber IRLS weights: 1 for ``r <= scale``, ``scale / r`` beyond (Huber 1964).

    Args:
        r: (...) residual norms >= 0 (numpy array or torch tensor), in the units of ``scale``.
        scale: where the loss turns from quadratic to linear.

    Returns:
        (...) weights in (0, 1], same type as ``r``.
    """
    if _torch(r):
        import torch

        return torch.where(r <= scale, torch.ones_like(r), scale / r.clamp_min(1e-12))
    return np.where(r <= scale, 1.0, scale / np.maximum(r, 1e-12))


def geman_mcclure_weights(r, scale: float):
    """Geman-McClure IRLS weights ``1 / (1 + (r / scale)^2)^2`` (redescending: far outliers get weight ~0).

    Args:
        r: (...) residual norms (numpy array or torch tensor). scale: the loss's scale, units of ``r``.

    Returns:
        (...) weights in (0, 1], same type as ``r``.
    """
    return 1.0 / (1.0 + (r / scale) ** 2) ** 2


def soft_l1_weights(r2: np.ndarray, scale: float) -> np.ndarray:
    """Soft-L1 (pseudo-Huber) IRLS weights ``1 / sqrt(1 + r^2 / scale^2)``.

    Takes the *squared* norms ``r2`` (..., like ``scipy.optimize.least_squares``' losses): the loss is a smooth
    function of them, so the square root is never taken.
    """
    z = r2 / scale**2
    return 1 / np.sqrt(1 + z)


def soft_l1_cost(r2: np.ndarray, scale: float) -> float:
    """Soft-L1 loss ``scale^2 sum(sqrt(1 + r^2 / scale^2) - 1)`` of squared residual norms ``r2`` (...): about
    ``r^2 / 2`` per residual while ``r << scale`` (the plain cost ``0.5 sum r^2``), ``scale r`` beyond; the cost
    ``scipy.optimize.least_squares`` minimises with ``loss="soft_l1", f_scale=scale``."""
    z = r2 / scale**2
    return scale**2 * np.sum(np.sqrt(1 + z) - 1)
