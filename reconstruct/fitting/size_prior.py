"""A prior on the face's size, for fits that cannot see it (one view, unknown identity).

A scene scaled about a camera's centre projects to the same pixels, so through one camera a face's size and its
distance are one unknown. The fit's identity prior N(0, 1) does constrain the size, but only through all modes
together, and the detector's residual placement (what the learned bias does not model) pulls the trade one way:
on the synthetic takes of docs/fitting.md the hero-only face sat 11-17 % too close and too small. This prior names
the quantity that matters, the RMS radius of the neutral landmarks about their centroid, and holds it near the
model mean's with the spread the identity prior itself gives it (:func:`identity_size_spread`: 4.6 % over ICT's
face region). It cannot know the actor: the absolute depth error it leaves is about the actor's size deviation
times the distance (4.6 % of 0.8 m: ~37 mm, one standard deviation). ``fit.identity`` (a known actor) is what
removes it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..face.model import FaceModel


def size_residual(mean: torch.Tensor, A: torch.Tensor, weight: torch.Tensor, alpha: torch.Tensor,
                  rel_sd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Whitened residual (scalar) of the size prior at identity ``alpha`` (Ki,) and its gradient (Ki,).

    ``mean`` (N, 3), ``A`` (N, 3, Ki): the fit's landmark basis; landmarks of zero ``weight`` (no surface point)
    are left out. Residual ``(S(alpha) - S(0)) / (rel_sd S(0))`` with ``S`` the RMS distance of the landmarks from
    their centroid (Gauss-Newton: the solver calls this at every iteration)."""
    m = weight > 0
    Lm, Am = mean[m], A[m]
    c0 = Lm - Lm.mean(0)
    s0 = torch.sqrt((c0**2).sum(-1).mean())
    L = Lm + Am @ alpha
    D = L - L.mean(0)
    s = torch.sqrt((D**2).sum(-1).mean())
    ds = torch.einsum("nd,ndk->k", D, Am) / (len(D) * s)  # the centroid's term sums to zero
    k = 1.0 / (rel_sd * s0)
    return (s - s0) * k, ds * k


def face_size(vertices: np.ndarray) -> float:
    """A shape's size: the RMS distance (metres) of its vertices (V, 3) from their centroid."""
    v = np.asarray(vertices, np.float64)
    return float(np.sqrt(((v - v.mean(0)) ** 2).sum(1).mean()))


def identity_size_spread(model: FaceModel, region: np.ndarray | None = None, samples: int = 2000,
                         seed: int = 0) -> tuple[float, float]:
    """(mean, standard deviation) in metres of the neutral face's size (RMS distance of the ``region`` vertices, or
    all, from their centroid) over identities drawn from the model's prior N(0, 1)."""
    m = slice(None) if region is None else np.asarray(region, bool)
    mean = model.mean.astype(np.float64)[m]
    B = model.identity_basis[:, m].astype(np.float64)
    rng = np.random.default_rng(seed)
    out = np.empty(samples)
    for i in range(samples):
        v = mean + np.tensordot(rng.standard_normal(model.n_identity), B, 1)
        out[i] = face_size(v)
    return float(out.mean()), float(out.std())
