"""The ``plate`` mode of ``digital_human`` (the default): the young face made from the plate itself.

Per frame (:class:`PlateRetoucher`):

1. *geometry* -- the frame's fit (the performer's identity, this frame's expression and pose) and the same head with
   the identity moved by the young-minus-today difference (both fitted to stills the same way, so that the
   difference is the change of age, not of method) are projected through the hero camera; the plate is warped from one to the other
   (:func:`reconstruct.retouch.face_warp`: occlusion-aware, faded to zero past the face, so eyes, teeth and hair
   move with the face but are never redrawn);
2. *skin* -- inside the age regions projected from the model (forehead, crow's feet, under-eye, nasolabial and
   marionette folds) the wrinkle band is reduced, blotches are evened out, and the skin's low-frequency tone moves
   part of the way toward the young stills' (:func:`reconstruct.retouch.retouch_skin`); everything is limited to
   skin-coloured pixels of the plate, so beard, brows and hair are not touched;
3. the edit is an image edit that says which landmarks it meant to move and where (``landmark_shift``), so that the
   QC report can tell an intended change of shape from a lost expression.

Every output pixel is a plate pixel, moved (Lanczos) or filtered; outside the changed region it is the plate's
exact value. All of it works on the face's region of interest, and the edit is a crop of the plate
(``FaceEdit.origin``): the changed pixels' bounding box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reconstruct.methods import FaceEdit
from reconstruct.retouch import (Roi, SkinSettings, crop_camera, face_roi, face_warp, retouch_skin, warp_points,
                                 warp_region)
from reconstruct.retouch.regions import region_weights
from reconstruct.retouch.warp import geometry_scale, sampled_window
from reconstruct.retouch.skin import adaptive_skin, tone_gain, weights_box

LANDMARK_SCHEME = "mediapipe478"  # the scheme the intended landmark motion is given in (the report's detector's)


@dataclass(frozen=True, slots=True)
class PlateSettings:
    """warp: fraction of the young-minus-performer shape applied (0: none, 1: the full young shape).
    falloff: face sizes over which the warp fades to zero past the face. skin: the age-feature strengths."""

    warp: float = 1.0
    falloff: float = 0.25
    skin: SkinSettings = SkinSettings()


class PlateRetoucher:
    """Makes plate-mode edits of one face model (built once per worker; holds no per-frame state: the young
    identity's part of the vertices is kept for the next frame of the same fitted identity)."""

    def __init__(self, model, renderer, identity_shift: np.ndarray, young_skin_rgb: np.ndarray | None,
                 settings: PlateSettings) -> None:
        self.model, self.renderer, self.settings = model, renderer, settings
        self.shift = np.asarray(identity_shift, np.float64)
        self.young_skin_rgb = None if young_skin_rgb is None else np.asarray(young_skin_rgb, np.float64)
        self.weights = region_weights(model)
        skin_v = np.asarray(model.regions.get("skin", np.ones(model.n_vertices, bool)), np.float32)
        # (V, regions + 1): the regions' vertex weights and the model's skin, the attributes the masks interpolate
        self._mask_attributes = np.stack([self.weights[n] for n in self.weights] + [skin_v], axis=1)
        self._shape_w = shape_weights(model)
        self._lm = model.landmark_map(LANDMARK_SCHEME) if LANDMARK_SCHEME in model.landmarks else None
        self._ibug = model.landmark_map("ibug68") if "ibug68" in model.landmarks else None
        self._young = (None, None)  # (identity coefficients' bytes, the mean plus their identity part (V, 3))
        self._expression_basis = None  # (Ke, V * 3) float64: the model's, cast once

    def young_vertices(self, fit) -> np.ndarray:
        """(V, 3) world vertices of the frame's fitted identity moved by the young shift, with the frame's expression
        and pose: ``model.vertices(identity + shift, expression)``, the same numbers, with the identity's part kept
        from the frame before when the fitted identity is the same (a take's is) and the expression basis cast to
        float64 once (``np.tensordot`` casts it on every call: the same product of the same float64 arrays)."""
        ident = np.zeros(self.model.n_identity)
        fitted = np.asarray(fit.identity, np.float64).ravel()[: self.model.n_identity]
        ident[: fitted.size] = fitted
        young = ident + self.shift
        key, base = self._young
        if key != young.tobytes():
            base = self.model.vertices(young)
            self._young = (young.tobytes(), base)
        expr = fit.expression
        if expr is None or not len(expr):
            v = base
        else:
            b = np.asarray(expr, np.float64)
            if self._expression_basis is None:
                eb = self.model.expression_basis
                self._expression_basis = eb.reshape(eb.shape[0], -1).astype(np.float64)
            v = base + np.dot(b.reshape(1, -1), self._expression_basis[: b.size]).reshape(base.shape)
        return float(fit.scale) * v @ np.asarray(fit.R, np.float64).T + np.asarray(fit.t, np.float64)

    def edit(self, frame: int, plate: np.ndarray, fit, camera) -> FaceEdit:
        """The frame's edit as a crop of the plate (``FaceEdit.origin``): the pixels it changed, grown by 2 px
        (``edit.on_plate(plate)`` gives the plate-sized arrays)."""
        s = self.settings
        tris = self.model.triangles
        old = np.asarray(fit.vertices, np.float64)
        new = old + s.warp * self._shape_w[:, None] * (self.young_vertices(fit) - old)
        h, w = plate.shape[:2]
        roi = face_roi(camera.project(old), (w, h), margin=s.falloff + 0.15)
        if roi.empty:
            return FaceEdit(frame=frame, kind="image", image=np.zeros((0, 0, 3), np.float32),
                            mask=np.zeros((0, 0), np.float32), keep=np.zeros((0, 0), bool), blend="exact",
                            info={"mode": "plate", "face_visible": False})
        iod = self._iod_px(new, camera)
        # the geometry (the warp's flow, the regions' masks: smooth at the scale of a face) at a resolution that
        # keeps the eyes >= 64 px apart; the pixels (resampling, skin) at the plate's
        scale = geometry_scale(iod)
        warp = face_warp(self.renderer, camera, tris, old, new, roi, falloff=s.falloff, scale=scale)
        # the plate as floats on the window the warp samples (the roi grown by the largest flow), not the frame
        flow_max = float(np.abs(warp.flow).max()) if warp.flow.size else 0.0  # the window's reach, and the info's
        win = sampled_window(warp, (w, h), grow=2, flow_max=flow_max)
        image = np.divide(plate[win.slices], np.float32(255.0), dtype=np.float32)  # one pass, the same floats
        region = warp_region(image, warp, origin=(win.x0, win.y0))  # (roi h, roi w, 3): the roi only from here
        masks, model_skin = self._masks(warp, new, camera, iod)
        plate_skin, pbox = self._plate_skin(region, model_skin, masks, iod)  # this face's skin colour: no beard
        skin = _times(model_skin, plate_skin, pbox)
        masks = {k: _times(m, plate_skin, pbox) for k, m in masks.items()}
        gain = None
        total = skin.sum() if self.young_skin_rgb is not None else 0.0
        if total > 50:
            # on the skin's box: numpy sums the (N, 3) rows in order, and the 0 past the box add nothing (the same
            # floats, ~4x fewer pixels); ``skin.sum()`` (a pairwise sum) stays whole. The product is taken channel
            # by channel (the same floats; broadcasting the weight over the 3 channels was ~3x slower)
            weighted = np.empty(region[pbox].shape, np.float32)
            for c in range(3):
                np.multiply(region[pbox][..., c], skin[pbox], out=weighted[..., c])
            cur = weighted.reshape(-1, 3).sum(0) / total
            gain = np.clip(tone_gain(self.young_skin_rgb, cur), 0.9, 1.1)
        region = retouch_skin(region, masks, iod, s.skin, skin=skin, tone_gain=gain)
        # exact alpha: 1 on every changed pixel (grown by 2 px), 0 elsewhere, used as is by the compositor; the
        # edit is the plate everywhere else, so there is no edge, and no feather ramp to double moved pixels.
        # Only the roi can change: the mask is made on the roi grown by the 2 px (what a whole-frame mask holds)
        # and the edit is cut to the mask's bounding box.
        box = _grown(roi, 2, (w, h))
        changed = np.zeros((box.h, box.w), bool)
        iy, ix = roi.y0 - box.y0, roi.x0 - box.x0
        before = image[_within(roi, win)]  # channel by channel: ``(region != before).any(-1)``, ~5x faster
        changed[iy:iy + roi.h, ix:ix + roi.w] = ((region[..., 0] != before[..., 0]) | (region[..., 1] != before[..., 1])
                                                 | (region[..., 2] != before[..., 2]))
        mask = _grow(changed, 2)
        out = image[_within(box, win)].copy()
        out[iy:iy + roi.h, ix:ix + roi.w] = region
        info = {"mode": "plate", "warp": s.warp, "warp_max_px": round(flow_max, 3),
                "iod_px": round(float(iod), 2), "tone_gain": None if gain is None else [round(float(x), 4) for x in gain],
                "landmark_scheme": LANDMARK_SCHEME if self._lm is not None else None,
                "fit_valid": bool(fit.valid)}
        shift = None
        if self._lm is not None:  # where the warp itself takes the plate's landmarks (eyes and mouth included)
            q = camera.project(self._lm.points(old, tris))
            shift = (warp_points(q, warp) - q).astype(np.float32)
        return FaceEdit(frame=frame, kind="image", image=out, mask=mask, keep=np.zeros(mask.shape, bool),
                        landmark_shift=shift, blend="exact", origin=(box.x0, box.y0), info=info).cropped()

    def _masks(self, warp, vertices: np.ndarray, camera, iod: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The age regions' masks (softened by 0.03 IOD) and the model's skin (0.02 IOD) where the young mesh is
        seen in the roi: from the warp's own rasterisation, resized to the roi when it was coarser."""
        import cv2

        from reconstruct.render.fragments import interpolate

        roi, tris = warp.roi, self.model.triangles
        frags = warp.fragments  # the young mesh through the roi's camera: what the warp rasterised
        if frags is None:
            frags = self.renderer.rasterize(vertices, tris, crop_camera(camera, roi))
        names = list(self.weights)
        img = interpolate(frags, tris, self._mask_attributes)
        k = float(np.sqrt(img.shape[0] * img.shape[1] / float(roi.w * roi.h)))  # coarse px per roi px
        # the attributes as contiguous planes, made once and blurred in place: cv2 copied each strided channel
        # ``img[..., i]`` into fresh memory and returned the blur in more (the same values)
        planes = np.moveaxis(img, -1, 0).copy()
        out = []
        for i, blur in enumerate([0.03] * len(names) + [0.02]):
            m = cv2.GaussianBlur(planes[i], (0, 0), max(1.0, blur * iod) * k, dst=planes[i])  # float32, in place
            m = np.clip(m, 0.0, 1.0, out=m)
            if m.shape != (roi.h, roi.w):
                m = cv2.resize(m, (roi.w, roi.h), interpolation=cv2.INTER_LINEAR)
            out.append(m)
        return dict(zip(names, out[:-1])), out[-1]

    @staticmethod
    def _plate_skin(region: np.ndarray, model_skin: np.ndarray, masks: dict,
                    iod: float) -> tuple[np.ndarray, tuple[slice, slice] | None]:
        """``(skin, box)``: (h, w) how much each roi pixel looks like this face's skin (:func:`adaptive_skin`,
        softened by 0.01 IOD), computed on ``box``, the box of the pixels it can weigh (the model's skin and the
        regions, grown by the softening's reach): the same values there, 0 past it (None: nowhere), where every
        weight it multiplies is 0."""
        px = max(0.5, 0.01 * iod)
        out = np.zeros(model_skin.shape, np.float32)
        weighed = weights_box([model_skin, *masks.values()])  # the weights are >= 0: their non-zero pixels
        if weighed is None:
            return out, None
        g = int(np.ceil(4 * px)) + 2  # cv2.GaussianBlur's float kernel reaches 4 sigma
        h, w = model_skin.shape
        rows, cols = weighed
        box = (slice(max(rows.start - g, 0), min(rows.stop + g, h)),
               slice(max(cols.start - g, 0), min(cols.stop + g, w)))
        out[box] = _soften(adaptive_skin(region[box], model_skin[box]), px)
        return out, box

    def _iod_px(self, vertices: np.ndarray, camera) -> float:
        if self._ibug is None:
            return 0.25 * float(np.ptp(camera.project(vertices)[:, 0]))
        p = camera.project(self._ibug.points(vertices, self.model.triangles))
        return float(np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0)))


def shape_weights(model, rings: int = 12) -> np.ndarray:
    """(V,) float in [0, 1]: how much of the young shape each vertex takes -- 1 on the model's ``face`` region,
    falling to 0 over ``rings`` edge rings of the mesh past it (ones everywhere for a model without a face region).

    The young shape is estimated from landmarks, which pin the face and nothing behind or below it: a head model's
    neck, ears and scalp move with the identity modes all the same, and moved the collar and tie of a real plate by
    3-4 px (obama_address, more than the face itself moved).

    The rings are grown along the mesh's edges with numpy (a vertex joins ring ``k`` when an edge links it to
    ring ``k - 1``): a sparse adjacency matrix did the same, but importing scipy.sparse cost each worker ~0.3 CPU-s."""
    face = model.regions.get("face")
    if face is None:
        return np.ones(model.n_vertices, np.float64)
    tris = np.asarray(model.triangles)
    i = np.concatenate([tris[:, 0], tris[:, 1], tris[:, 2], tris[:, 1], tris[:, 2], tris[:, 0]])
    j = np.concatenate([tris[:, 1], tris[:, 2], tris[:, 0], tris[:, 0], tris[:, 1], tris[:, 2]])
    ring = np.where(np.asarray(face, bool), 0, rings + 1)  # edge rings from the face region, capped
    reached = ring == 0
    for k in range(1, rings + 1):
        reached_next = reached.copy()
        reached_next[i[reached[j]]] = True  # every vertex with an edge to a reached one
        ring[reached_next & ~reached] = k
        reached = reached_next
    w = np.clip(1.0 - ring / (rings + 1.0), 0.0, 1.0)
    return w * w * (3.0 - 2.0 * w)


def _within(roi: Roi, win: Roi) -> tuple[slice, slice]:
    """The slices of ``roi`` in an array that holds the frame's window ``win`` (which contains ``roi``)."""
    return slice(roi.y0 - win.y0, roi.y0 - win.y0 + roi.h), slice(roi.x0 - win.x0, roi.x0 - win.x0 + roi.w)


def _grown(roi: Roi, px: int, size: tuple[int, int]) -> Roi:
    """``roi`` grown by ``px`` on every side, clipped to a frame of ``size = (W, H)``."""
    W, H = size
    x0, y0 = max(roi.x0 - px, 0), max(roi.y0 - px, 0)
    x1, y1 = min(roi.x0 + roi.w + px, W), min(roi.y0 + roi.h + px, H)
    return Roi(x0, y0, x1 - x0, y1 - y0)


def _times(weight: np.ndarray, skin: np.ndarray, box: tuple[slice, slice] | None) -> np.ndarray:
    """``weight * skin`` for a ``skin`` that is 0 outside ``box`` (None: everywhere) and a finite ``weight``: the
    product on the box only, 0 past it."""
    out = np.zeros(np.broadcast_shapes(weight.shape, skin.shape), np.result_type(weight, skin))
    if box is not None:
        np.multiply(weight[box], skin[box], out=out[box])  # into the box: no product to copy in
    return out


def _soften(mask: np.ndarray, px: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.5, px))


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(np.float32)
