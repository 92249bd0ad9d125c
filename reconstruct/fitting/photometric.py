"""Optional photometric refinement of a landmark fit: per frame, cross-view photo-consistency through the cameras.

The face's albedo is unknown and every camera sees it under its own light (IR witnesses carry on-axis
illuminators), so the energy compares the *cameras with each other*, not a render with the images:

* each camera's grey image is blurred (a coarse-to-fine pyramid, ``levels``) and high-passed (minus a wide blur), so
  that slow shading differences between cameras drop out and the painted/structural detail (lips, brows, eyes,
  nostrils) remains;
* every model vertex visible in a camera (ray-cast depth test at the current fit, recomputed ``visibility_passes``
  times per frame) samples that camera's image at its distorted projection (``grid_sample``, differentiable w.r.t.
  the vertex position);
* for every camera pair, ``1 - NCC`` of the two cameras' samples over the vertices both see (per-camera gain and
  offset are thereby solved in closed form);
* plus the landmark reprojection term of the landmark fit as a weak prior (``landmark_weight``), an expression
  prior and a pull towards the landmark fit's pose.

Expression and head pose of each frame move; the identity stays fixed. Adam on the reparametrised unknowns
(rotation in centiradians, translation in millimetres, expression weights).
"""

from __future__ import annotations


import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from ..camera import CameraModel
from ..errors import FitError
from ..face.model import FaceModel
from ..progress import NullProgress, Progress
from .landmark_basis import LandmarkBasis, vertex_normals
from .result import FitSequence
from .projection import CameraStack, project_camera_frame
from .solver import rodrigues

if TYPE_CHECKING:  # pragma: no cover
    from ..artifacts import Detections

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PhotoSettings:
    """Photometric refinement settings.

    Attributes:
        levels: Gaussian blur sigma (pixels) of each pyramid level, coarse to fine.
        highpass_px: sigma (pixels) of the wide blur subtracted from each level (shading removal).
        iterations: Adam steps per level. lr: Adam step size (unknowns are O(1) after reparametrisation).
        landmark_weight: weight of the landmark prior relative to the photometric term.
        sigma_px: landmark noise (pixels) for the prior.
        sigma_expression: expression prior std. pose_mm / pose_crad: std of the pull towards the landmark fit's
            translation (millimetres) and rotation (centiradians).
        visibility_passes: ray-cast visibility recomputations per frame (at the start of the first levels).
        max_vertices: vertices sampled (deterministic subset of the visible ones) per camera pair.
        min_cos: a vertex is used in a camera when cos(normal, direction to camera) exceeds this.
        temporal_sigma: the per-frame corrections (expression change, head-pose change) are smoothed over time with
            a Gaussian of this std, in frames, before they are applied (<= 0: applied as solved). Solved frame by
            frame they are noisy (jitter up to 10x that of the landmark fit); the bias they correct is slow.
        identity_modes: also move the first identity modes, per frame, with prior std ``sigma_identity`` (0: the
            identity stays fixed; moving it did not help in the measurements of docs/fitting.md).
    """

    levels: tuple[float, ...] = (2.0, 1.0)
    highpass_px: float = 10.0
    iterations: int = 40
    lr: float = 0.05
    landmark_weight: float = 0.05
    sigma_px: float = 3.0
    sigma_expression: float = 1.0
    pose_mm: float = 50.0
    pose_crad: float = 50.0
    visibility_passes: int = 2
    max_vertices: int = 6000
    min_cos: float = 0.3
    temporal_sigma: float = 2.0
    identity_modes: int = 0
    sigma_identity: float = 0.5


def _prepare(img: np.ndarray, sigma: float, highpass: float, device) -> torch.Tensor:
    """uint8/float image (H, W[, 3]) -> (1, 1, H, W) float32 feature image with unit std: the gradient magnitude
    of the blurred grey image minus its wide blur (edges of painted and structural detail; insensitive to the sign
    of a contrast, which differs between RGB and IR, and to slow shading)."""
    import cv2

    g = img.astype(np.float32)
    if g.ndim == 3:
        g = g @ np.array([0.299, 0.587, 0.114], np.float32)
    g = g / 255.0 if img.dtype == np.uint8 else g
    b = cv2.GaussianBlur(g, (0, 0), sigma)
    gx, gy = cv2.Sobel(b, cv2.CV_32F, 1, 0), cv2.Sobel(b, cv2.CV_32F, 0, 1)
    m = np.sqrt(gx * gx + gy * gy)
    hp = m - cv2.GaussianBlur(m, (0, 0), highpass)
    hp /= max(float(hp.std()), 1e-6)
    return torch.as_tensor(hp, device=device)[None, None]


def visible_vertices(V: np.ndarray, tri: np.ndarray, cams: Sequence[CameraModel], min_cos: float,
                     depth_tol: float = 0.002) -> np.ndarray:
    """(C, V) bool: the vertex is the first surface along its pixel's ray and faces the camera."""
    from ..render.raycast import RaycastRenderer

    r = RaycastRenderer()
    nrm = vertex_normals(V, tri)
    out = np.zeros((len(cams), len(V)), bool)
    for c, cam in enumerate(cams):
        fr = r.rasterize(V, tri, cam)
        Xc = V.astype(np.float64) @ cam.R.T + cam.t
        uv = cam.project(V.astype(np.float64))
        w, h = cam.image_size
        ui, vi = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        inside = (ui >= 0) & (ui < w) & (vi >= 0) & (vi < h) & (Xc[:, 2] > 0)
        d = np.full(len(V), np.inf)
        d[inside] = fr.depth[vi[inside], ui[inside]]
        to_cam = cam.center[None] - V
        cos = (nrm * to_cam).sum(1) / np.linalg.norm(to_cam, axis=1)
        out[c] = inside & (np.abs(d - Xc[:, 2]) < depth_tol) & (cos > min_cos)
    return out


def refine_frame(model: FaceModel, cams: Sequence[CameraModel], images: Sequence[np.ndarray | None],
                 identity: np.ndarray, expression: np.ndarray, R: np.ndarray, t: np.ndarray,
                 basis: LandmarkBasis | None = None, obs: np.ndarray | None = None, conf: np.ndarray | None = None,
                 settings: PhotoSettings = PhotoSettings(), device: str = "cpu",
                 vertices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Refine one frame's ``expression`` (Ke,), ``R`` (3, 3) and ``t`` (3,) (model -> world) photometrically.

    ``images``: one stored image per camera (None: the camera has no frame). ``obs`` (C, N, 2) / ``conf`` (C, N):
    the landmarks for the prior (optional). ``vertices``: (V,) bool mask or int indices of the vertices used (None: all).
    Returns the refined (expression, R, t) and the identity change (Ki,) (zero unless ``identity_modes``).
    """
    st = settings
    dt = torch.float64
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=dt, device=device)  # noqa: E731
    have = [k for k, im in enumerate(images) if im is not None]
    if len(have) < 2:
        raise FitError("photometric refinement needs at least two cameras with a frame")
    cams = [cams[k] for k in have]
    images = [images[k] for k in have]
    if obs is not None:
        obs, conf = obs[have], conf[have]
    vid = np.arange(model.n_vertices) if vertices is None else np.asarray(vertices)
    ke = expression.size
    base = model.mean.astype(np.float64) + np.tensordot(identity, model.identity_basis[:identity.size], axes=1)
    base_t, Bt = f(base[vid]), f(model.expression_basis[:ke][:, vid])
    stack = CameraStack.from_models(cams, device=device)
    blend = model.expression_kind == "blendshape"
    e0, R0, t0 = f(expression), f(R), f(t)
    d_rot = torch.zeros(3, dtype=dt, device=device, requires_grad=True)
    d_t = torch.zeros(3, dtype=dt, device=device, requires_grad=True)
    expr = e0.clone().requires_grad_(True)
    ni = min(st.identity_modes, identity.size)
    d_id = torch.zeros(ni, dtype=dt, device=device, requires_grad=True)
    Ai = f(model.identity_basis[:ni][:, vid])
    Ai_full = f(model.identity_basis[:ni])
    alpha = f(identity)
    if obs is not None:
        o_t, w_t = f(obs), f(conf) * basis.weight[None]
        w_t = torch.where(torch.isfinite(o_t).all(-1), w_t, torch.zeros_like(w_t))
        o_t = torch.nan_to_num(o_t)
    sizes = f([[c.image_size[0], c.image_size[1]] for c in cams])
    pairs = [(a, b) for a in range(len(cams)) for b in range(a + 1, len(cams))]

    def pose():
        Rd, _ = rodrigues((d_rot * 0.01)[None])
        return Rd[0] @ R0, t0 + d_t * 0.001

    def world(full: bool):
        Rw, tw = pose()
        if full:
            Vm = model.mean.astype(np.float64) + np.tensordot(identity, model.identity_basis[:identity.size], axes=1)
            Vm = f(Vm) + torch.einsum("k,kvd->vd", expr, f(model.expression_basis[:ke]))
            Vm = Vm + torch.einsum("k,kvd->vd", d_id, Ai_full)
        else:
            Vm = base_t + torch.einsum("k,kvd->vd", expr, Bt) + torch.einsum("k,kvd->vd", d_id, Ai)
        return Vm @ Rw.T + tw

    rng = np.random.default_rng(0)
    passes = 0
    for li, sigma in enumerate(st.levels):
        imgs = [_prepare(im, sigma, st.highpass_px, device).to(dt) for im in images]
        if passes < st.visibility_passes:
            with torch.no_grad():
                Vfull = world(True).cpu().numpy()
            vis = visible_vertices(Vfull, model.triangles, cams, st.min_cos)[:, vid]
            passes += 1
            sel = []
            for a, b in pairs:
                both = np.flatnonzero(vis[a] & vis[b])
                if len(both) > st.max_vertices:
                    both = np.sort(rng.choice(both, st.max_vertices, replace=False))
                sel.append(torch.as_tensor(both, device=device))
            use = [p for p, s in zip(pairs, sel) if len(s) >= 50]
            sel = [s for s in sel if len(s) >= 50]
            if not use:
                raise FitError("no two cameras see enough of the face for photometric refinement")
        opt = torch.optim.Adam([d_rot, d_t, expr, d_id], lr=st.lr)
        for it in range(st.iterations):
            opt.zero_grad()
            X = world(False)
            Xc = torch.einsum("cij,vj->cvi", stack.R, X) + stack.t[:, None]
            uv = project_camera_frame(Xc, stack)  # (C, V, 2)
            g = (uv + 0.5) / sizes[:, None] * 2 - 1  # align_corners=False: pixel centre k at (k + 0.5) / n
            samp = [F.grid_sample(imgs[c], g[c][None, None], mode="bilinear", padding_mode="border",
                                  align_corners=False)[0, 0, 0] for c in range(len(cams))]
            e_photo = 0.0
            for (a, b), s in zip(use, sel):
                xa, xb = samp[a][s], samp[b][s]
                xa, xb = xa - xa.mean(), xb - xb.mean()
                ncc = (xa * xb).sum() / torch.sqrt((xa * xa).sum() * (xb * xb).sum() + 1e-12)
                e_photo = e_photo + (1 - ncc) * len(s)
            e_photo = e_photo / sum(len(s) for s in sel) * 100.0
            e = e_photo + ((expr / st.sigma_expression) ** 2).sum() * 1e-3
            e = e + ((d_t / st.pose_mm) ** 2).sum() + ((d_rot / st.pose_crad) ** 2).sum()
            e = e + ((d_id / st.sigma_identity) ** 2).sum() * 1e-2
            if obs is not None:
                Rw, tw = pose()
                L = (basis.points(alpha, expr[None])[0] + basis.A[:, :, :ni] @ d_id) @ Rw.T + tw
                Lc = torch.einsum("cij,nj->cni", stack.R, L) + stack.t[:, None]
                r = (project_camera_frame(Lc, stack) - o_t) / st.sigma_px
                nr = torch.sqrt((r * r).sum(-1) + 1e-12)
                hub = torch.where(nr < 1.0, 0.5 * nr**2, nr - 0.5)
                e = e + st.landmark_weight * (w_t * hub).sum() / w_t.sum().clamp_min(1e-9) * 100.0
            e.backward()
            opt.step()
            if blend:
                with torch.no_grad():
                    expr.clamp_(0.0, 1.0)
        log.debug("photometric level %d (sigma %.1f px): energy %.4f, photo %.4f", li, sigma, float(e.detach()),
                  float(e_photo.detach()))
    with torch.no_grad():
        Rw, tw = pose()
    di = np.zeros(identity.size)
    di[:ni] = d_id.detach().cpu().numpy()
    return expr.detach().cpu().numpy(), Rw.cpu().numpy(), tw.cpu().numpy(), di


def _smooth(x: np.ndarray, frames: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted average over frame numbers of per-frame rows ``x`` (F, ...)."""
    if sigma <= 0 or len(x) < 2:
        return x
    d = frames[:, None].astype(np.float64) - frames[None].astype(np.float64)
    w = np.exp(-0.5 * (d / sigma) ** 2)
    return np.tensordot(w / w.sum(1, keepdims=True), x, axes=1)


def refine_sequence(model: FaceModel, cameras: Mapping[str, CameraModel], seq: FitSequence,
                    images: Callable[[int], Sequence[np.ndarray | None]], det: "Detections | None" = None,
                    settings: PhotoSettings = PhotoSettings(), device: str = "cpu",
                    vertices: np.ndarray | None = None, progress: Progress | None = None,
                    bias=None) -> FitSequence:
    """Photometrically refine every valid frame of ``seq`` (identity kept); invalid (filled) frames are left as they
    are. ``images(i)`` returns the stored images of row ``i`` in ``seq.cameras`` order (None where a camera has no
    frame). ``det``: the detect stage's landmarks (:class:`reconstruct.artifacts.Detections`) for the landmark
    prior; its cameras may be a superset of ``seq.cameras``. The per-frame corrections are smoothed over time
    (``settings.temporal_sigma``) before they are applied. Landmark residuals are recomputed for the refined fit.
    Frames seen by fewer than two cameras keep their landmark fit (logged). ``bias``: the detector bias the landmark
    fit used (:class:`reconstruct.face.detector_bias.DetectorBias`; its view term is left out here), so that the
    landmark prior pulls towards the points the detector really marks.
    """
    progress = progress or NullProgress()
    cams = [cameras[c] for c in seq.cameras]
    basis = LandmarkBasis.from_model(model, det.scheme, device=device, bias=bias) if det is not None else None
    expr, R, t, V = seq.expression.copy(), seq.R.copy(), seq.t.copy(), seq.vertices.copy()
    res = None if seq.residual_px is None else seq.residual_px.copy()
    ident = seq.identity.astype(np.float64)
    base = model.mean.astype(np.float64) + np.tensordot(ident, model.identity_basis[:ident.size], axes=1)
    Bx = model.expression_basis[:expr.shape[1]]
    kept, done, d_expr, d_rot, d_t, landmarks = [], [], [], [], [], {}
    with progress.task("photometric", total=int(seq.valid.sum())) as task:
        for i in np.flatnonzero(seq.valid):
            obs = conf = None
            if basis is not None:
                row = np.flatnonzero(det.frames == seq.frames[i])
                if len(row):
                    k = [list(det.cameras).index(c) for c in seq.cameras]
                    obs, conf = det.points[row[0]][k], det.confidence[row[0]][k]
                    landmarks[int(i)] = (obs, conf)
            try:
                e, Ri, ti, _ = refine_frame(model, cams, images(int(i)), ident, expr[i].astype(np.float64), R[i],
                                            t[i], basis if obs is not None else None, obs, conf, settings, device,
                                            vertices)
            except FitError as exc:
                kept.append(int(seq.frames[i]))
                log.warning("photometric: frame %d keeps its landmark fit: %s", seq.frames[i], exc)
                task.advance(1)
                continue
            done.append(i)
            d_expr.append(e - expr[i])
            d_rot.append(Rotation.from_matrix(Ri @ R[i].T).as_rotvec())
            d_t.append(ti - t[i])
            task.advance(1)
    if done:
        done = np.array(done)
        d_expr, d_rot, d_t = (_smooth(np.array(a), seq.frames[done], settings.temporal_sigma)
                              for a in (d_expr, d_rot, d_t))
        lm = model.landmark_map(det.scheme) if det is not None else None
        blend = model.expression_kind == "blendshape"
        for j, i in enumerate(done):
            e = expr[i] + d_expr[j]
            expr[i] = np.clip(e, 0.0, 1.0) if blend else e
            R[i] = Rotation.from_rotvec(d_rot[j]).as_matrix() @ R[i]
            t[i] = t[i] + d_t[j]
            V[i] = ((base + np.tensordot(expr[i].astype(np.float64), Bx, axes=1)) @ R[i].T + t[i]).astype(np.float32)
            obs, conf = landmarks.get(int(i), (None, None))
            if res is not None and obs is not None:
                P = lm.points(V[i].astype(np.float64), model.triangles)
                if bias is not None:  # the points the detector marks (model frame offsets, posed)
                    P = P + bias.at(ident, expr[i][None])[0] @ R[i].T
                for c, cam in enumerate(cams):
                    ok = (conf[c] > 0.3) & np.isfinite(obs[c]).all(-1) & (lm.triangle >= 0)
                    d = np.linalg.norm(cam.project(P[ok]) - obs[c][ok], axis=1)
                    res[i, c] = np.sqrt(np.mean(d**2)) if d.size else np.nan
    if kept:
        log.warning("photometric: %d frame(s) kept their landmark fit: %s", len(kept), ", ".join(map(str, kept)))
    return replace(seq, expression=expr.astype(np.float32), R=R, t=t, vertices=V, residual_px=res)
