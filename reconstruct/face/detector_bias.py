"""A landmark detector's systematic placement on a face model, learned from renders with known truth.

The computed correspondence (:mod:`.correspondence`) says where landmark *n* of a scheme *should* lie on the
model surface. A real detector puts it elsewhere, and not at random: MediaPipe's points on rendered ICT faces sit
~4 mm along the surface from the correspondence, the same in every frame (docs/fitting.md), and how far depends on
the face (its identity and expression: MediaPipe regresses its own shape prior, so an open mouth or a long nose is
under-shot). A fit that treats the correspondence as the truth bends identity and expression to pull the wrong
surface points onto the detections.

:class:`DetectorBias` models where the detector's point *n* lies on the model surface, in the model frame, as the
correspondence point plus an offset linear in the model's coefficients::

    p_n(alpha, beta, v) = L_n(alpha, beta) + d_n + E_n [alpha_1..alpha_k, beta] + V_n phi(v)
                          + sum_k beta_k X_nk [v_x, v_y]                                                (metres)

where ``v`` is the direction from the face to the camera in the model frame and ``phi(v)`` the monomials of
``v_x, v_y`` up to a degree (:func:`view_features`; 2 in the first files: ``v_x, v_y, v_x^2, v_y^2, v_x v_y``): the
detector places a point differently on a face seen from the side (held-out scatter 3.6 -> 2.9 mm with the
quadratic view term, 2.81 -> 2.73 mm with degree 4, docs/fitting.md). The view term is the only part not linear in
the model's coefficients; the fit re-evaluates it per camera at every iteration, so its degree costs nothing there.
The optional expression x view term ``X`` (files learned with ``--expression-view``) makes the expression's slopes
depend on the view: linear in the expression for a given camera, so the fit gives each camera its own expression
basis (``B + X [v_x, v_y]``, :mod:`reconstruct.fitting.normal`).

Learning (:func:`learn_bias`): render faces of random identities, expressions and poses (known truth), run the
detector, cast each detected point's camera ray onto the true mesh (:func:`surface_hits`) and take the hit into the
model frame; ridge regression per landmark of the offsets hit - L_n on the coefficients. The fit then uses the
biased landmark basis (:meth:`reconstruct.fitting.landmark_basis.LandmarkBasis.from_model` with ``bias``) instead
of the bare correspondence. ``tools/learn_landmark_bias.py`` renders the data and writes the file; the one for the
built-in ICT model and MediaPipe ships with the package (:func:`builtin_bias`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import FaceModelError
from .model import FaceModel, read_npz

log = logging.getLogger(__name__)

FORMAT = "deage-detector-bias-1"
#: placements of MediaPipe's inner-lip / eye contours a bias can be learned against (:attr:`DetectorBias.contours`)
CONTOURS = ("computed", "lips", "lids", "lips+lids")


@dataclass(frozen=True, slots=True, eq=False)
class DetectorBias:
    """Learned offsets of a detector's landmarks from a model's correspondence (model frame, metres).

    Attributes:
        scheme: landmark scheme (``"mediapipe478"``).
        model: face model name it was learned on; n_vertices: its vertex count (a guard against another model).
        offset: (N, 3) constant offset d_n. identity: (N, 3, Ki) offset per identity coefficient (Ki may be fewer
            than the model's modes: the rest have none). expression: (N, 3, Ke) offset per expression weight.
        view: (N, 3, 14) offset per view feature (:func:`view_features`; fewer given: padded with zeros).
            view_centre: (3,) model-frame point the view direction is taken from (the mean shape's landmark centroid).
        samples: (N,) training detections per landmark (0: no offset learned, the correspondence is kept).
        spread: (N,) RMS of the training offsets left after the model (metres): the detector's own scatter.
        contours: the placement of MediaPipe's inner-lip and eye contours the offsets were learned against
            (:mod:`reconstruct.fitting.lip_anchor`): ``"computed"`` (the bare correspondence; files written before
            this field existed), ``"lips"``, ``"lids"`` or ``"lips+lids"`` (anchored on the model's lip / lid
            lines). A fit with another placement re-expresses the offsets of the points that differ
            (:func:`reconstruct.fitting.lip_anchor.anchor_inner_lips`).
        expression_view: (N, 3, Ke, 2) offset per expression weight times the view direction's ``v_x``, ``v_y``
            (the expression x view term), or None (files without it).
    """

    scheme: str
    model: str
    n_vertices: int
    offset: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    view: np.ndarray
    view_centre: np.ndarray
    samples: np.ndarray
    spread: np.ndarray
    contours: str = "computed"
    expression_view: np.ndarray | None = None

    def __post_init__(self) -> None:
        f = self.view.shape[2]
        if f not in VIEW_FEATURES.values():
            raise FaceModelError(f"detector bias: {f} view features (known: {sorted(VIEW_FEATURES.values())})",
                                 hint="write the file again with tools/learn_landmark_bias.py")
        if f < VIEW_FEATURES[4]:  # a lower degree: the higher features' offsets are zero
            pad = np.zeros(self.view.shape[:2] + (VIEW_FEATURES[4] - f,), self.view.dtype)
            object.__setattr__(self, "view", np.concatenate([self.view, pad], 2))

    @property
    def view_degree(self) -> int:
        """The highest degree of the view features with a non-zero offset (0: no view term)."""
        used = np.flatnonzero(np.abs(self.view).max(axis=(0, 1)) > 0)
        return 0 if len(used) == 0 else min(d for d, n in VIEW_FEATURES.items() if n > used[-1])

    def check(self, model: FaceModel, scheme: str) -> None:
        if scheme != self.scheme or model.n_vertices != self.n_vertices or \
                self.expression.shape[2] != model.n_expression or self.identity.shape[2] > model.n_identity:
            raise FaceModelError(
                f"detector bias for {self.model!r} / {self.scheme} ({self.n_vertices} vertices) does not fit model "
                f"{model.name!r} / {scheme} ({model.n_vertices} vertices)",
                hint="use --option fit.bias=none, or learn one for this model with tools/learn_landmark_bias.py")

    def for_views(self, n_views: int) -> "DetectorBias":
        """The bias a fit through ``n_views`` cameras uses. One view: without the identity term. Its slopes let the
        fitted identity shrink the face while the face moves toward the camera, which a single view barely sees:
        on two synthetic takes the hero-only fit landed 240-300 mm off in depth with it, 85-150 mm without it
        (the bare correspondence: 63-127 mm), and the shape (error after a similarity) was best without it
        (docs/fitting.md)."""
        if n_views > 1:
            return self
        return replace(self, identity=np.zeros_like(self.identity))

    def at(self, identity: np.ndarray, expression: np.ndarray, view: np.ndarray | None = None) -> np.ndarray:
        """(T, N, 3) offsets for an identity (Ki,), expressions (T, Ke) and view directions (T, 3) (model frame,
        face to camera; None: straight on, +z)."""
        k = self.identity.shape[2]
        a = np.zeros(k)
        a[: min(k, len(identity))] = np.asarray(identity, np.float64)[:k]
        e = np.asarray(expression, np.float64).reshape(-1, self.expression.shape[2])
        v = np.tile([0.0, 0.0, 1.0], (len(e), 1)) if view is None else np.asarray(view, np.float64).reshape(-1, 3)
        out = ((self.offset + self.identity @ a)[None] + np.einsum("ndk,tk->tnd", self.expression, e)
               + np.einsum("ndk,tk->tnd", self.view, view_features(v)))
        if self.expression_view is not None:
            out += np.einsum("ndkf,tk,tf->tnd", self.expression_view, e, v[:, :2])
        return out

    def view_direction(self, R: np.ndarray, t: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """(T, 3) unit direction from the face to a camera at world point ``centre`` (3,), in the model frame of
        head poses ``R`` (T, 3, 3), ``t`` (T, 3)."""
        v = np.einsum("tji,tj->ti", np.asarray(R, np.float64), np.asarray(centre, np.float64) - np.asarray(t))
        v = v - self.view_centre
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    def save(self, path: Path) -> None:
        from ..session import atomic_path

        # "computed" is what a file without the field means: left out, a file learned on the computed contours is
        # the same bytes as before the field existed
        extra = {} if self.contours == "computed" else {"contours": np.array(self.contours)}
        if self.expression_view is not None:  # absent in files without the term: their bytes as before
            extra["expression_view"] = self.expression_view.astype(np.float32)
        view = self.view[..., : VIEW_FEATURES[max(2, self.view_degree)]]  # the degree it has (>= 2, as before)
        with atomic_path(Path(path), suffix=".npz") as tmp:
            np.savez_compressed(tmp, format=np.array(FORMAT), scheme=np.array(self.scheme), model=np.array(self.model),
                                n_vertices=np.array(self.n_vertices), offset=self.offset.astype(np.float32),
                                identity=self.identity.astype(np.float32),
                                expression=self.expression.astype(np.float32),
                                view=view.astype(np.float32), view_centre=self.view_centre,
                                samples=self.samples.astype(np.int32), spread=self.spread.astype(np.float32),
                                **extra)


def load_bias(path: Path) -> DetectorBias:
    """Read a file written by :meth:`DetectorBias.save` (never unpickles)."""
    d = read_npz(Path(path), "a detector bias file", hint="write one with tools/learn_landmark_bias.py")
    if "format" not in d or str(d["format"]) != FORMAT:
        raise FaceModelError(f"{path} is not a detector bias file ({FORMAT})",
                             hint="write one with tools/learn_landmark_bias.py")
    contours = str(d["contours"]) if "contours" in d else "computed"
    if contours not in CONTOURS:
        raise FaceModelError(f"{path}: unknown contour placement {contours!r} (known: {', '.join(CONTOURS)})",
                             hint="write the file again with tools/learn_landmark_bias.py")
    f = lambda k: d[k].astype(np.float64)  # noqa: E731
    return DetectorBias(scheme=str(d["scheme"]), model=str(d["model"]), n_vertices=int(d["n_vertices"]),
                        offset=f("offset"), identity=f("identity"), expression=f("expression"), view=f("view"),
                        view_centre=f("view_centre"), samples=d["samples"].astype(np.int64), spread=f("spread"),
                        contours=contours,
                        expression_view=f("expression_view") if "expression_view" in d else None)


#: number of view features of degree 1..4 (:func:`view_features`)
VIEW_FEATURES = {1: 2, 2: 5, 3: 9, 4: 14}


def view_features(v):
    """View directions (..., 3) (model frame, unit) -> features (..., 14) (numpy or torch): the monomials of v_x, v_y
    of degree 1 to 4, by degree: v_x, v_y | v_x^2, v_y^2, v_x v_y | v_x^3, v_y^3, v_x^2 v_y, v_x v_y^2 | v_x^4,
    v_y^4, v_x^3 v_y, v_x v_y^3, v_x^2 v_y^2. A bias of degree d uses the first ``VIEW_FEATURES[d]`` (its view
    array is padded with zeros to all 14 when it is made, so a degree-2 file keeps its meaning)."""
    x, y = v[..., 0], v[..., 1]
    stack = np.stack if isinstance(v, np.ndarray) else __import__("torch").stack
    x2, y2, xy = x * x, y * y, x * y
    return stack([x, y, x2, y2, xy, x2 * x, y2 * y, x2 * y, x * y2, x2 * x2, y2 * y2, x2 * xy, xy * y2, x2 * y2], -1)


#: the shipped bias with the expression x view term (opt-in, ``fit.bias=xview``; docs/fitting.md "Detector bias"),
#: beside the default file of the same model and scheme
XVIEW_SUFFIX = "_xview"


def builtin_bias(model: FaceModel, scheme: str, expression_view: bool = False) -> DetectorBias | None:
    """The shipped bias of ``scheme`` on ``model`` (MediaPipe on the built-in ICT model), or None.
    ``expression_view``: the shipped variant with the expression x view term (None where none ships)."""
    from .. import assets

    path = assets.detector_bias_path(model.name, scheme)
    if path is not None and expression_view:
        name = path.stem + XVIEW_SUFFIX + path.suffix
        path = assets.asset_path(path.parent.name, name) if (path.parent / name).is_file() else None
    if path is None:
        return None
    bias = load_bias(path)
    try:
        bias.check(model, scheme)
    except FaceModelError as exc:
        log.warning("shipped detector bias not used: %s", exc)
        return None
    return bias


# -- learning -------------------------------------------------------------------------------------------------
def surface_hits(model: FaceModel, identity: np.ndarray, expression: np.ndarray, R: np.ndarray, t: np.ndarray,
                 cam, uv: np.ndarray, edge_m: float = 0.0015, near_m: float = 0.025) -> np.ndarray:
    """Model-frame points (N, 3) where the camera rays through detected pixels ``uv`` (N, 2) meet the true face
    (model coefficients ``identity``/``expression``, pose model->world ``R``, ``t``).

    A ray that misses the face or meets its back side (a point on a contour: the lip edge of an open mouth, a lid
    edge, the jaw line) takes the face vertex closest to the ray instead, among those within ``near_m`` of the
    landmark's correspondence, if it passes within ``edge_m`` of it; else NaN.
    """
    import open3d as o3d

    vm = model.vertices(identity, expression)
    vw = vm @ R.T + t
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vw.astype(np.float32)), o3d.core.Tensor(model.triangles.astype(np.uint32)))
    out = np.full((len(uv), 3), np.nan)
    ok = np.isfinite(uv).all(1)
    if not ok.any():
        return out
    o, d = cam.rays(np.asarray(uv, np.float64)[ok])
    o = np.asarray(o, np.float64).reshape(3)
    rays = np.hstack([np.repeat(o[None], len(d), 0), d]).astype(np.float32)
    hit = scene.cast_rays(o3d.core.Tensor(rays))
    th = hit["t_hit"].numpy()
    tri = hit["primitive_ids"].numpy().astype(np.int64)
    uvb = hit["primitive_uvs"].numpy()
    good = np.isfinite(th)
    f = model.triangles[np.where(good, tri, 0)]
    bary = np.stack([1 - uvb[:, 0] - uvb[:, 1], uvb[:, 0], uvb[:, 1]], 1)
    p = np.einsum("nk,nkd->nd", bary, vm[f])
    nrm = np.cross(vw[f[:, 1]] - vw[f[:, 0]], vw[f[:, 2]] - vw[f[:, 0]])
    good &= (nrm * d).sum(1) < 0  # the front side of the surface faces the camera
    corr = _correspondence_points(model, vm) if not good.all() else None
    for j in np.flatnonzero(~good):
        c = corr[np.flatnonzero(ok)[j]]
        if not np.isfinite(c).all():
            continue
        near = np.flatnonzero(np.linalg.norm(vm - c, axis=1) < near_m)
        if len(near) == 0:
            continue
        v = vw[near] - o
        dist = np.linalg.norm(v - (v @ d[j])[:, None] * d[j], axis=1)
        k = int(np.argmin(dist))
        if dist[k] <= edge_m:
            p[j] = vm[near[k]]
            good[j] = True
    p[~good] = np.nan
    out[ok] = p
    return out


def _correspondence_points(model: FaceModel, vertices: np.ndarray, scheme: str = "mediapipe478") -> np.ndarray:
    return model.landmark_map(scheme).points(vertices, model.triangles)


@dataclass(frozen=True, slots=True, eq=False)
class BiasSample:
    """One training detection: coefficients of the rendered face, the direction from the face to the camera (model
    frame, unit, from the landmark centroid of the mean shape) and the model-frame hit of every landmark."""

    identity: np.ndarray  # (Ki,)
    expression: np.ndarray  # (Ke,)
    view: np.ndarray  # (3,)
    hits: np.ndarray  # (N, 3), NaN where unusable


def learn_bias(model: FaceModel, scheme: str, samples: list[BiasSample], identity_modes: int = 40,
               ridge: float = 1e-3, min_samples: int = 30, max_offset_m: float = 0.02,
               contours: str = "computed", view_degree: int = 2, view_ridge: float | None = None,
               expression_view_ridge: float | None = None) -> DetectorBias:
    """Ridge regression per landmark of the offsets (hit - correspondence point) on ``[1, alpha[:k], beta,
    view_features(view)]`` (and ``beta v_x, beta v_y`` with ``expression_view_ridge``).

    ``ridge``: Tikhonov weight on the slopes (metres^2 per unit coefficient^2, scaled by the sample count), so
    that modes the training set barely excites keep a zero slope. Offsets larger than ``max_offset_m`` (a ray that
    met the wrong part of the face) are dropped; landmarks with fewer than ``min_samples`` usable detections get
    no offset. ``view_degree``: the view term's degree (1-4, :func:`view_features`); ``view_ridge``: the ridge
    weight on its slopes (None: ``ridge``; the higher monomials are small numbers, which one ridge for all would
    hold near zero). ``contours``: the placement of the inner-lip / eye contours in ``model``'s map (``model`` as
    :func:`reconstruct.fitting.lip_anchor.anchor_inner_lips` returns it), recorded in the result.
    ``expression_view_ridge``: learn the expression x view term with this ridge weight on its slopes (None: no
    such term).
    """
    lm = model.landmark_map(scheme)
    N = lm.triangle.shape[0]
    k = min(identity_modes, model.n_identity)
    Ke = model.n_expression
    F = VIEW_FEATURES[view_degree]
    xv = expression_view_ridge is not None
    X = np.stack([np.concatenate([[1.0], s.identity[:k], s.expression, view_features(np.asarray(s.view))[:F]]
                                 + ([np.outer(s.expression, np.asarray(s.view)[:2]).ravel()] if xv else []))
                  for s in samples])  # (S, 1 + k + Ke + F [+ 2 Ke])
    Y = np.full((len(samples), N, 3), np.nan)
    for i, s in enumerate(samples):
        corr = lm.points(model.vertices(s.identity, s.expression), model.triangles)
        Y[i] = s.hits - corr
    off = np.linalg.norm(Y, axis=-1)
    Y[~(off <= max_offset_m)] = np.nan
    W = np.zeros((N, X.shape[1], 3))
    count = np.zeros(N, np.int64)
    spread = np.zeros(N)
    reg = np.full(X.shape[1], ridge)
    reg[0] = 1e-9
    reg[1 + k + Ke:1 + k + Ke + F] = ridge if view_ridge is None else view_ridge
    if xv:
        reg[1 + k + Ke + F:] = expression_view_ridge
    for n in range(N):
        m = np.isfinite(Y[:, n]).all(1) & (lm.triangle[n] >= 0)
        count[n] = int(m.sum())
        if count[n] < min_samples:
            continue
        Xn, Yn = X[m], Y[m, n]
        H = Xn.T @ Xn + np.diag(reg * len(Xn))
        W[n] = np.linalg.solve(H, Xn.T @ Yn)
        spread[n] = float(np.sqrt(((Xn @ W[n] - Yn) ** 2).sum(1).mean()))
    return DetectorBias(scheme=scheme, model=model.name, n_vertices=model.n_vertices, offset=W[:, 0],
                        identity=np.moveaxis(W[:, 1:1 + k], 1, 2), expression=np.moveaxis(W[:, 1 + k:1 + k + Ke], 1, 2),
                        view=np.moveaxis(W[:, 1 + k + Ke:1 + k + Ke + F], 1, 2), view_centre=view_centre(model),
                        samples=count, spread=spread, contours=contours,
                        expression_view=W[:, 1 + k + Ke + F:].reshape(N, Ke, 2, 3).transpose(0, 3, 1, 2)
                        if xv else None)


def view_centre(model: FaceModel) -> np.ndarray:
    """(3,) the point view directions are measured from: the centroid of the mean shape's iBUG-68 landmarks (or of
    its vertices)."""
    m = model.mean.astype(np.float64)
    if "ibug68" in model.landmarks:
        return np.nanmean(model.landmark_map("ibug68").points(m, model.triangles), 0)
    return m.mean(0)
