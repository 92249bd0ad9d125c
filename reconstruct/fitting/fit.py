"""The fitting entry point: landmarks seen by calibrated cameras -> per-frame model fit (:class:`FitSolution`)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ..camera import CameraModel
from ..errors import FitError
from ..face.model import FaceModel
from .init import init_poses
from .landmark_basis import LandmarkBasis
from .projection import CameraStack
from .solver import FitSettings, FitSolution, fit_landmarks

if TYPE_CHECKING:  # pragma: no cover
    from ..face.detector_bias import DetectorBias

log = logging.getLogger(__name__)


def fit_sequence(model: FaceModel, scheme: str, cams: Sequence[CameraModel], obs: np.ndarray, conf: np.ndarray,
                 settings: FitSettings = FitSettings(), device: str = "cpu",
                 identity: np.ndarray | None = None, bias: "DetectorBias | None" = None) -> FitSolution:
    """Fit ``model`` to landmarks ``obs`` (T, C, N, 2) pixels with confidences ``conf`` (T, C, N).

    Frames where no camera has landmarks must be removed by the caller (see the fit stage), they are not
    interpolated here. ``identity`` fixes (with ``settings.fit_identity=False``) or initialises the identity.
    ``bias``: the detector's learned placement on the model (:mod:`reconstruct.face.detector_bias`), None: the
    bare correspondence.
    """
    obs = np.asarray(obs, np.float64)
    conf = np.asarray(conf, np.float64)
    if obs.ndim != 4 or obs.shape[-1] != 2 or obs.shape[:3] != conf.shape:
        raise FitError(f"landmarks have shape {obs.shape} and confidences {conf.shape}; expected (T, C, N, 2) "
                       "and (T, C, N)")
    if obs.shape[1] != len(cams):
        raise FitError(f"landmarks are given for {obs.shape[1]} cameras but {len(cams)} cameras were passed")
    if (settings.smooth_mouth != 1.0 or settings.mouth_relief > 0) and settings.mouth_modes is None:
        from .modes import mouth_modes

        settings = replace(settings, mouth_modes=mouth_modes(model, scheme))
    basis = LandmarkBasis.from_model(model, scheme, device=device, bias=bias)
    if settings.inner_lip_weight != 1.0:
        from .mouth_motion import INNER_LIPS

        w = basis.weight.clone()
        w[[n for n in INNER_LIPS.get(scheme, ()) if n < basis.n]] *= settings.inner_lip_weight
        basis = replace(basis, weight=w)
    if obs.shape[2] != basis.n:
        raise FitError(f"{obs.shape[2]} landmarks per view, but the model's {scheme!r} map has {basis.n}",
                       hint="the detector's scheme must match a landmark map of the face model")
    with torch.no_grad():
        rv0, t0, ok = init_poses(basis.mean.cpu().numpy(), basis.weight.cpu().numpy(), cams, obs, conf)
    stack = CameraStack.from_models(cams, device=device)
    with torch.no_grad():
        sol = fit_landmarks(basis, stack, obs, conf, rotvec0=rv0, t0=t0, identity=identity, settings=settings,
                            blendshape=model.expression_kind == "blendshape", device=device)
    if settings.auto_sigma and np.isfinite(sol.residual_px).any():
        noise = float(np.nanmedian(sol.residual_px)) / np.sqrt(2.0)  # 2D RMS -> per-axis std
        if noise > 1.5 * settings.sigma_px:
            k = noise / settings.sigma_px
            log.info("fit: landmark noise %.2f px exceeds sigma_px %.2f; refitting with sigma_px %.2f", noise,
                     settings.sigma_px, noise)
            s2 = replace(settings, sigma_px=noise, robust_px=settings.robust_px * k, auto_sigma=False,
                         pose_iterations=0)
            with torch.no_grad():
                sol = fit_landmarks(basis, stack, obs, conf, rotvec0=sol.rotvec, t0=sol.t,
                                    identity=sol.identity if settings.fit_identity else identity,
                                    expression0=sol.expression, settings=s2,
                                    blendshape=model.expression_kind == "blendshape", device=device)
    log.info("fit: %d frames x %d cameras, %d iterations, cost %.1f", obs.shape[0], len(cams), sol.iterations,
             sol.cost)
    return sol


def world_vertices(model: FaceModel, sol: FitSolution) -> np.ndarray:
    """(T, V, 3) float32 world-frame vertices of a fit."""
    ki, ke = sol.identity.size, sol.expression.shape[1]
    base = model.mean.astype(np.float64) + np.tensordot(sol.identity, model.identity_basis[:ki], axes=1)
    out = np.empty((len(sol.t), model.n_vertices, 3), np.float32)
    for f in range(len(sol.t)):
        v = base + np.tensordot(sol.expression[f], model.expression_basis[:ke], axes=1)
        out[f] = v @ sol.R[f].T + sol.t[f]
    return out


def model_landmarks(model: FaceModel, scheme: str, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
    """(T, N, 3) landmark points of a fit's frames in the model frame, without a detector bias (what
    :func:`fitted_landmarks` starts from; computed once for several cameras)."""
    lm = model.landmark_map(scheme)
    expression = np.asarray(expression, np.float64).reshape(len(expression), -1)
    if not len(expression):
        return np.empty((0, lm.triangle.shape[0], 3))
    # the identity's part once, not per frame (what model.vertices(identity, e) adds first: the same floats);
    # 6.1 -> 1.5 ms a frame of the fit report. Only the vertices of the landmarks' triangles are built (the same
    # floats, vertex by vertex: 1.5 -> 0.2 ms a frame with ICT, most of it the whole float64 basis' cast)
    used, tris = np.unique(model.triangles[np.where(lm.triangle < 0, 0, lm.triangle)], return_inverse=True)
    tris = tris.reshape(-1, 3).astype(np.int32)
    base = model.vertices(identity)[used]
    eb = model.expression_basis[: expression.shape[1], used]
    # the landmark map indexes triangles: here the triangles' own rows (row n: the n-th landmark's triangle)
    rows = replace(lm, triangle=np.where(lm.triangle < 0, lm.triangle, np.arange(len(lm.triangle))))
    return np.stack([rows.points(base + np.tensordot(e, eb, axes=1) if e.size else base, tris)
                     for e in expression])


def fitted_landmarks(model: FaceModel, scheme: str, identity: np.ndarray, expression: np.ndarray, R: np.ndarray,
                     t: np.ndarray, bias: "DetectorBias | None" = None,
                     camera: CameraModel | None = None, memo: dict | None = None) -> np.ndarray:
    """(T, N, 3) world landmark points of a fit as the fit saw them (with the detector bias it used, its view term
    for ``camera``: the points that camera's detector should mark); NaN where the scheme has no correspondence
    (MediaPipe's iris points). ``memo``: a dict shared by calls for the same frames through several cameras (the
    frames' :func:`model_landmarks` are computed by the first and kept there)."""
    lm = model.landmark_map(scheme)
    expression = np.asarray(expression, np.float64).reshape(len(t), -1)
    points = None if memo is None else memo.get("model_landmarks")
    if points is None:
        points = model_landmarks(model, scheme, identity, expression)
        if memo is not None:
            memo["model_landmarks"] = points
    out = np.empty((len(t), lm.triangle.shape[0], 3))
    off = np.zeros((len(t), lm.triangle.shape[0], 3))
    if bias is not None:
        view = None if camera is None else bias.view_direction(R, t, camera.center)
        off = bias.at(identity, expression, view)
    for f in range(len(t)):
        p = points[f] + off[f]
        out[f] = p @ np.asarray(R[f]).T + np.asarray(t[f])
    return out
