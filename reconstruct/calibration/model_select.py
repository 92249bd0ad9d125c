"""Choosing how much lens and board model the data support: nested-model F-tests and Wald tests.

Every parameter group that a perfect lens or board does not need (tangential distortion, the board's deviation from
its print) costs precision when the truth has none of it: p1 and p2 trade off against the principal point, so
fitting them to a lens without tangential distortion roughly doubles the principal point's uncertainty. A group is
kept only when it lowers the residuals by more than chance would (:func:`nested_f_test`), or when its estimate is
further from zero than its uncertainty explains (:func:`wald_test`), and the decision is
recorded in the calibration's quality so that it can be read back and overridden (``--tangential``,
``--board-shape``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: significance level of the tests: a group that does not help is kept by chance in 1 of 1000 calibrations
LEVEL = 1e-3


@dataclass(frozen=True, slots=True)
class ModelTest:
    """Outcome of :func:`nested_f_test`.

    Attributes:
        F: the test statistic; ``F_critical``: its threshold at ``LEVEL``; ``significant``: F > F_critical (the
        richer model is kept). ``rms_simple_px`` / ``rms_full_px``: RMS residual length of both models, pixels.
    """

    F: float
    F_critical: float
    significant: bool
    rms_simple_px: float
    rms_full_px: float

    def to_dict(self) -> dict:
        return {"F": self.F, "F_critical": self.F_critical, "significant": self.significant,
                "rms_simple_px": self.rms_simple_px, "rms_full_px": self.rms_full_px}


def nested_f_test(ss_simple: float, ss_full: float, n_extra: int, n_residuals: int, n_params_full: int,
                  level: float = LEVEL) -> ModelTest:
    """F-test of a model with ``n_extra`` more unknowns than a simpler one nested in it.

    ``ss_*``: sums of squared residuals (pixels^2) of both least-squares fits to the same ``n_residuals``
    residual components; ``n_params_full``: unknowns of the richer model (gauge freedoms excluded).
    """
    # scipy.special's F quantile is what scipy.stats.f.ppf computes (same numbers, tests/calibration/
    # test_model_select.py) without importing scipy.stats (0.3-0.5 s, used nowhere else in a run)
    from scipy.special import fdtri

    k = max(int(n_extra), 1)
    dof = max(int(n_residuals) - int(n_params_full), 1)
    F = ((ss_simple - ss_full) / k) / max(ss_full / dof, 1e-300)
    crit = float(fdtri(k, dof, 1 - level))
    pairs = max(n_residuals // 2, 1)
    return ModelTest(F=float(F), F_critical=crit, significant=bool(F > crit),
                     rms_simple_px=float(np.sqrt(max(ss_simple, 0.0) / pairs)),
                     rms_full_px=float(np.sqrt(max(ss_full, 0.0) / pairs)))


def wald_test(statistic: float, dof: int, level: float = LEVEL) -> dict:
    """Wald test of a parameter group (``statistic`` = ``p^T cov(p)^-1 p``, chi-square with ``dof`` degrees of
    freedom when the group is zero): ``wald``, ``p_value`` and ``significant`` (the group is kept)."""
    from scipy.special import chdtrc  # = scipy.stats.chi2.sf, without importing scipy.stats

    p = float(chdtrc(dof, statistic))
    return {"wald": float(statistic), "p_value": p, "significant": p < level}
