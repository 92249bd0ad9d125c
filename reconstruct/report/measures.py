"""How a method's result holds up as a photograph of the same performance: measures on the plates themselves.

Per frame, over the face the fit projects into the hero view (the performer's fitted mesh; skin = the model's skin
region where the plate is skin-coloured):

* **expression kept**: landmarks detected on the result against the plate's landmarks moved by the edit's own
  intended shift (``intent.npz``: a warp that means to change the shape is not a lost expression), mouth and eyes,
  in % of the inter-ocular distance (IOD);
* **fine detail kept**: energy of the finest band (pores, grain: finer than 0.01 IOD) of the result's skin over the
  plate's (1 = all kept; blur and CG skin fall well below);
* **new dark holes**: % of the face where the result is much darker (more than 40 grey levels, and below 80) than
  the darkest plate pixel within 0.03 IOD plus the edit's own intended motion there (``intent.npz``, the shift of
  the nearest landmark): the nostril and mouth holes a render can open (a dark edge a warp moved, by a little or
  by as much as the method meant to move it, is not one);
* **age features reduced**: 1 - energy of the wrinkle bands in the age regions of the result over the plate's (the
  bands of :mod:`reconstruct.retouch.skin`: lines 0.010-0.05 IOD, folds 0.025-0.14 IOD);
* **flicker**: the result's mean frame-to-frame change over the face against the plate's own (1 = as steady).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

DARK_LEVELS, DARK_BELOW = 40.0, 80.0


@dataclass
class MethodMeasures:
    """Measures of one method's plates; per-frame arrays are aligned with ``frames`` (NaN: not measurable)."""

    method: str
    frames: np.ndarray
    expression_iod_pct: np.ndarray
    detail_ratio: np.ndarray
    dark_pct: np.ndarray
    wrinkle_ratio: np.ndarray
    flicker_ratio: float = float("nan")
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float | None]:
        def f(x):
            x = np.asarray(x, np.float64)
            return None if not np.isfinite(x).any() else float(x)

        e = self.expression_iod_pct
        return {"frames": int(len(self.frames)),
                "expression_iod_pct_mean": f(np.nanmean(e)) if np.isfinite(e).any() else None,
                "expression_iod_pct_worst": f(np.nanmax(e)) if np.isfinite(e).any() else None,
                "detail_ratio": f(np.nanmean(self.detail_ratio)) if np.isfinite(self.detail_ratio).any() else None,
                "dark_pct_worst": f(np.nanmax(self.dark_pct)) if np.isfinite(self.dark_pct).any() else None,
                "age_features_reduced": (f(1.0 - np.nanmean(self.wrinkle_ratio))
                                         if np.isfinite(self.wrinkle_ratio).any() else None),
                "flicker_ratio": f(self.flicker_ratio) if np.isfinite(self.flicker_ratio) else None}


def _y(img: np.ndarray) -> np.ndarray:
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114


def _band(y: np.ndarray, lo: float, hi: float | None, blurs: dict | None = None) -> np.ndarray:
    """The band of ``y`` between blurs of ``lo`` and ``hi`` px (``hi`` None: finer than ``lo``). ``blurs``: sigma ->
    that blur of this ``y``, made once for all of its bands (filled here): the fine detail's blur (0.01 IOD) is the
    wrinkle lines' finer one."""
    from ..retouch.blur import gaussian_blur

    def blur(sigma: float) -> np.ndarray:
        if blurs is None:
            return gaussian_blur(y, sigma)
        if sigma not in blurs:
            blurs[sigma] = gaussian_blur(y, sigma)
        return blurs[sigma]

    a = blur(max(lo, 0.3))
    return (y - a) if hi is None else (a - blur(max(hi, lo * 1.5)))


def _energy(y: np.ndarray, w: np.ndarray, lo: float, hi: float | None, band: np.ndarray | None = None,
            w_sum=None) -> float:
    """Mean of the band's energy under the weights ``w``; ``band``: :func:`_band` of ``y`` already made;
    ``w_sum``: ``w.sum()`` already made."""
    band = _band(y, lo, hi) if band is None else band
    return float((w * band * band).sum() / max(w.sum() if w_sum is None else w_sum, 1e-9))


class FaceMasks:
    """Face, skin and age-region masks of each frame from the fit (built once per report; the face model and the
    renderer are loaded at the first frame asked for: a report whose frames are measured in worker processes does
    not load them in the driver)."""

    def __init__(self, data, components) -> None:
        self.ok = False
        self._rois: dict = {}  # frame -> its face box, from prepare()
        self._last: tuple | None = None  # (frame, plate, for_frame's result) of the last frame asked for
        fits = data.fits
        cams = data.session.cameras() if data.session.calibration_path.exists() else {}
        if fits is None or data.hero not in cams:
            return
        self.components, self.cam, self.fits = components, cams[data.hero], fits
        self.rows = {int(f): i for i, f in enumerate(fits.frames)}
        self.model = None
        self.ok = True

    def _load(self) -> None:
        from ..render import get_renderer
        from ..retouch.regions import region_weights

        self.model = self.components.face_model(self.fits.model_name)
        self.renderer = get_renderer(self.components, "auto", "cpu")
        self.weights = region_weights(self.model)
        self.skin_v = np.asarray(self.model.regions.get("skin", np.ones(self.model.n_vertices, bool)), np.float32)
        self.ibug = self.model.landmark_map("ibug68") if "ibug68" in self.model.landmarks else None
        # the age regions (small: interpolated on their own triangles' pixels) apart from the skin prior (most of
        # the face): see sparse_region_masks
        tris = self.model.triangles
        self.groups = ([weight_group(self.weights, tris)] if self.weights else []) + \
            [weight_group({"_skin": self.skin_v}, tris)]

    def _roi(self, fit):
        from ..retouch import face_roi

        v = np.asarray(fit.vertices, np.float64)
        return v, face_roi(self.cam.project(v), self.cam.image_size, margin=0.05)

    def prepare(self, frames) -> None:
        """Ready what ``frames`` will need at once: the ray casting's per-pixel rays of the box that holds all their
        face boxes (:func:`reconstruct.render.fragments.pixel_rays`, cached per lens; each frame's crop is a view of
        it, the same numbers). Else the first frame builds its box's rays and a later frame whose box leaves it
        builds a larger grid again (2 builds of ~0.15 s a worker on the bench take)."""
        if not self.ok:
            return
        for f in frames:
            fit = self.fits.frame(self.rows[int(f)]) if int(f) in self.rows else None
            if fit is not None and fit.valid:
                self._rois[int(f)] = self._roi(fit)[1]  # for_frame takes it from here
        rois = [self._rois[int(f)] for f in frames if int(f) in self._rois and not self._rois[int(f)].empty]
        if not rois:
            return
        if self.model is None:
            self._load()
        if getattr(self.renderer, "name", "") != "raycast":  # the renderer whose rays these are
            return
        from ..render.fragments import pixel_rays
        from ..retouch import crop_camera
        from ..retouch.roi import Roi

        x0, y0 = min(r.x0 for r in rois), min(r.y0 for r in rois)
        x1, y1 = max(r.x0 + r.w for r in rois), max(r.y0 + r.h for r in rois)
        pixel_rays(crop_camera(self.cam, Roi(x0, y0, x1 - x0, y1 - y0)))

    def for_frame(self, frame: int, plate: np.ndarray):
        """(roi slices, face (h, w) bool, skin (h, w) float, regions {name: (h, w) float}, iod px) or None. Asked
        again for the same frame and the same plate array (the pass measures every method's result of a frame
        against one plate), the same result, not made again (the callers only read it)."""
        last = self._last
        if last is not None and last[0] == frame and last[1] is plate:
            return last[2]
        out = self._for_frame(frame, plate)
        self._last = (frame, plate, out, {})
        return out

    def plate_terms(self, frame: int, plate: np.ndarray) -> "PlateTerms | None":
        """:func:`plate_terms` of ``frame``'s plate under its :meth:`for_frame` masks (None without them), made once
        for every method's result of the frame as the masks are."""
        m = self.for_frame(frame, plate)
        if m is None:
            return None
        memo = self._last[3]
        if "terms" not in memo:
            memo["terms"] = plate_terms(plate, *m)
        return memo["terms"]

    def _for_frame(self, frame: int, plate: np.ndarray):
        if not self.ok or frame not in self.rows:
            return None
        if self.model is None:
            self._load()
        from ..retouch import crop_camera
        from ..retouch.skin import adaptive_skin

        fit = self.fits.frame(self.rows[frame])
        if not fit.valid:
            return None
        roi = self._rois.pop(frame, None)
        v, roi = (np.asarray(fit.vertices, np.float64), roi) if roi is not None else self._roi(fit)
        if roi.empty:
            return None
        frags = self.renderer.rasterize(v, self.model.triangles, crop_camera(self.cam, roi))
        face = frags.mask
        if self.ibug is not None:
            p = self.cam.project(self.ibug.points(v, self.model.triangles))
            iod = float(np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0)))
        else:
            iod = 0.25 * roi.w
        masks = sparse_region_masks(frags, self.model.triangles, self.groups)
        model_skin = masks.pop("_skin")
        skin = model_skin * adaptive_skin(plate[roi.slices].astype(np.float32) / 255.0, model_skin)
        return roi.slices, face, skin, masks, iod


@dataclass(frozen=True, slots=True, eq=False)
class PlateTerms:
    """What the measures take from a frame's plate alone (the same for every method's result of the frame).

    Attributes:
        luma: (h, w) float32 luma of the plate's face box (:func:`_y`).
        detail: energy of the plate's finest band on the skin (the fine detail's denominator).
        region_sums: age region -> the sum of its mask, for the regions with a sum of at least 10 (measured), in
            :data:`~reconstruct.retouch.regions.AGE_REGIONS` order.
        wrinkle: the plate's wrinkle-band energy over those regions, each weighted by its sum (the age features'
            denominator).
    """

    luma: np.ndarray
    detail: float
    region_sums: dict
    wrinkle: float


def plate_terms(plate: np.ndarray, sl, face, skin, regions, iod_px: float) -> PlateTerms:
    """:class:`PlateTerms` of ``plate`` (RGB uint8) under one frame's :meth:`FaceMasks.for_frame` masks."""
    from ..retouch.regions import AGE_REGIONS
    from ..retouch.skin import BANDS

    y = _y(plate[sl].astype(np.float32))
    sums, den, bands, blurs = {}, 0.0, {}, {}
    for region, kind in AGE_REGIONS.items():
        w = regions.get(region)
        ws = None if w is None else w.sum()
        if w is None or ws < 10:
            continue
        lo, hi = BANDS[kind]
        if kind not in bands:  # regions of one kind share the blurs
            bands[kind] = _band(y, lo * iod_px, hi * iod_px, blurs)
        den += _energy(y, w, lo * iod_px, hi * iod_px, bands[kind], ws) * ws
        sums[region] = ws
    fine = max(0.7, 0.01 * iod_px)
    return PlateTerms(y, _energy(y, skin, fine, None, _band(y, fine, None, blurs)), sums, den)


@dataclass(frozen=True, slots=True)
class WeightGroup:
    """Per-vertex weights masked together by :func:`sparse_region_masks`: ``weights`` name -> (V,) float32,
    ``touched`` (F,) bool: the triangles with a vertex of nonzero weight in any of them (elsewhere every
    interpolated weight is exactly 0)."""

    weights: dict
    touched: np.ndarray


def weight_group(weights: dict, triangles: np.ndarray) -> WeightGroup:
    """A :class:`WeightGroup` of ``weights`` (name -> (V,)) on the mesh's ``triangles`` (F, 3)."""
    weights = {n: np.asarray(w, np.float32) for n, w in weights.items()}
    stack = np.stack(list(weights.values()), axis=1)
    return WeightGroup(weights, (stack[np.asarray(triangles)] != 0).any(axis=(1, 2)))


def sparse_region_masks(fragments, triangles: np.ndarray, groups) -> dict[str, np.ndarray]:
    """Name -> (H, W) float32 mask in [0, 1]: :func:`reconstruct.retouch.regions.region_masks` (no blur) of every
    group's weights, the same numbers bit for bit, made only at the pixels whose triangle has a vertex of nonzero
    weight in the group (the age regions: a third of a face's pixels; those pixels' lists interpolated by
    :func:`~reconstruct.render.fragments.interpolate_at`, what ``region_masks`` interpolates them with, then
    clipped as it clips). Elsewhere the interpolation is ``b0 * 0 + b1 * 0 + b2 * 0``, which is +0.0 (a negative
    barycentric's -0.0 plus +0.0 is +0.0, and the three never are all negative), clipped to +0.0: the zeros it
    is left as. The bench take's 24 frames (5 regions + the skin prior): 47 -> 35 and 89 -> 53 ms a frame in two
    runs (one process, a loaded shared machine); obama's smaller face 14 -> 13 and 17 -> 13 ms."""
    from ..render.fragments import interpolate_at

    shape = fragments.triangle.shape
    tri = fragments.triangle.reshape(-1)
    hit = np.flatnonzero(tri >= 0)
    tri_hit, bary_hit = tri[hit], fragments.bary.reshape(-1, 3)[hit]
    triangles = np.asarray(triangles)
    out = {}
    for g in groups:
        keep = g.touched[tri_hit]
        at = hit[keep]
        names = list(g.weights)
        # region_masks' numbers (interpolate, then clip to [0, 1]; no blur) at those pixels
        vals = interpolate_at(tri_hit[keep], bary_hit[keep], triangles, np.stack([g.weights[n] for n in names], 1))
        for k, name in enumerate(names):
            full = np.zeros(tri.size, np.float32)
            full[at] = np.clip(vals[:, k], 0.0, 1.0)
            out[name] = full.reshape(shape)
    return out


class MethodMeasurer:
    """One method's measures, frame by frame, so that a caller that reads the plate and the result anyway
    (:func:`.data.compute_flags`) hands them in instead of every frame being read twice. Frames beyond
    ``max_frames`` are measured on an even subsample (:attr:`frames`); :meth:`add` ignores the others.

    Args:
        data: the report's :class:`~.data.ReportData`. method: whose plates. masks: :class:`FaceMasks`.
        detector: the landmark detector (or None). frames: the frames to measure, in order.
        pending: the frames handed in are a chunk inside the take (:mod:`.scan`): the first measured frame's
            flicker pair is left to the measurer that merges this one's :meth:`part` (its state is kept as ``head``).
    """

    def __init__(self, data, method: str, masks: FaceMasks, detector, frames, max_frames: int = 400,
                 pending: bool = False) -> None:
        from .data import LANDMARK_GROUPS

        frames = subsample(list(frames), max_frames)
        self.frames = frames
        self._index = {int(f): i for i, f in enumerate(frames)}
        n = len(frames)
        self.res = MethodMeasures(method, np.array(frames, np.int64), *(np.full(n, np.nan) for _ in range(4)))
        self.masks, self.detector = masks, detector
        self.scheme = getattr(detector, "scheme", "")
        self.groups = LANDMARK_GROUPS.get(self.scheme)
        if self.groups is None:
            self.res.notes.append("no landmark detector with a known scheme: expression not measured")
        self.intent_scheme, self.intent = data.intent(method)
        self._prev = None  # (result luma, plate luma, face) of the last measured frame, or None
        self._flick_a: list[float] = []
        self._flick_b: list[float] = []
        self._seen: set[int] = set()
        self._pending, self.head = pending, None
        self._tail = None  # merged parts' last state (:meth:`merge`)
        #: why the pass could not measure this method (an error; it is measured after the pass then), or None
        self.failed: str | None = None

    def wants(self, frame: int) -> bool:
        return int(frame) in self._index

    def missing(self) -> list[int]:
        """Frames to measure that :meth:`add` has not been given yet, in order."""
        return [f for f in self.frames if int(f) not in self._seen]

    def add_result(self, frame: int, before: np.ndarray | None, after: np.ndarray | None,
                   plate_landmarks) -> None:
        """Measure one frame of the method's result against its plate as the report does everywhere: with the
        landmark terms when both images are there at one size and the detector has a known scheme -- the plate's
        landmarks given (``plate_landmarks``: the array, or a callable that finds them, called only then), the
        result's found by this measurer's detector -- else without them."""
        if self.groups is None or before is None or after is None or after.shape != before.shape:
            self.add(frame, before, after)
            return
        from .data import _detect

        lm = plate_landmarks() if callable(plate_landmarks) else plate_landmarks
        self.add(frame, before, after, lm, _detect(self.detector, after), detected=True)

    def add(self, frame: int, before: np.ndarray | None, after: np.ndarray | None,
            plate_landmarks: np.ndarray | None = None, output_landmarks: np.ndarray | None = None,
            detected: bool = False) -> None:
        """Measure one frame: ``before`` the plate, ``after`` the method's result (RGB uint8, None when
        unreadable). ``detected``: the landmarks of both were already detected (passed, possibly None: nothing
        found), else they are detected here. The plate's are moved by the edit's intended shift here."""
        i = self._index.get(int(frame))
        if i is None:
            return
        self._seen.add(int(frame))
        first, self._pending = self._pending, False

        from ..retouch.regions import AGE_REGIONS
        from ..retouch.skin import BANDS
        from .data import _detect

        b, a, f = before, after, int(frame)
        if b is None or a is None or a.shape != b.shape:
            self._prev = None
            return
        res, groups = self.res, self.groups
        moved = None  # (plate landmarks (N, 2) px, their intended shift (N, 2) px) when the edit says how it moves
        if groups is not None:
            P, O = (plate_landmarks, output_landmarks) if detected else (_detect(self.detector, b),
                                                                          _detect(self.detector, a))
            if (P is not None and self.intent_scheme == self.scheme and f in self.intent
                    and self.intent[f].shape == P.shape):
                moved = (P, self.intent[f])
                P = P + self.intent[f]
            if P is not None and O is not None and P.shape == O.shape:
                iod = np.linalg.norm(np.nanmean(P[groups["iod_left"]], 0) - np.nanmean(P[groups["iod_right"]], 0))
                idx = groups["eyes"] + groups["mouth"]
                err = np.linalg.norm(O[idx] - P[idx], axis=1)
                if np.isfinite(err).any() and iod > 1:
                    res.expression_iod_pct[i] = 100.0 * float(np.nanmean(err)) / float(iod)
        m = self.masks.for_frame(f, b)
        if m is None:
            self._prev = None
            return
        sl, face, skin, regions, iod_px = m
        # the plate's side (its luma, detail and wrinkle energies): made once a frame for every method
        cached = getattr(self.masks, "plate_terms", None)  # (the tests' stand-in masks have no cache)
        pt = cached(f, b) if cached is not None else plate_terms(b, *m)
        yb, ya = pt.luma, _y(a[sl].astype(np.float32))
        fine = max(0.7, 0.01 * iod_px)
        blurs: dict[float, np.ndarray] = {}  # the result's blurs, shared by its bands
        if pt.detail > 0:
            res.detail_ratio[i] = _energy(ya, skin, fine, None, _band(ya, fine, None, blurs)) / pt.detail
        # darker than the darkest plate pixel nearby: a moved edge (a warp) is not a hole, a new dark blob is
        near = max(1, int(round(0.03 * iod_px)))
        reach = None if moved is None else intended_reach(yb.shape, (sl[1].start or 0, sl[0].start or 0), *moved)
        dark = (ya < DARK_BELOW) & face  # only these can be a new hole: the plate's darkest is needed there alone
        new_dark = darkest_within(yb, near, reach, where=dark) - ya[dark] > DARK_LEVELS
        res.dark_pct[i] = 100.0 * float(new_dark.sum()) / max(face.sum(), 1)
        num = 0.0
        bands: dict[str, np.ndarray] = {}  # kind -> its band of the result
        for region, ws in pt.region_sums.items():
            kind = AGE_REGIONS[region]
            lo, hi = BANDS[kind]
            if kind not in bands:  # regions of one kind share the blurs
                bands[kind] = _band(ya, lo * iod_px, hi * iod_px, blurs)
            num += _energy(ya, regions[region], lo * iod_px, hi * iod_px, bands[kind], ws) * ws
        if pt.wrinkle > 0:
            res.wrinkle_ratio[i] = num / pt.wrinkle
        if first:
            self.head = (ya, yb, face)
        else:
            self._pair(flicker_pair(self._prev, (ya, yb, face)))
        self._prev = (ya, yb, face)

    def _pair(self, pair: tuple[float, float] | None) -> None:
        if pair is not None:
            self._flick_a.append(pair[0])
            self._flick_b.append(pair[1])

    def part(self, last: bool = False) -> dict:
        """What this measurer measured (a worker's share of a take, for :meth:`merge`): per-frame values, flicker
        pairs, and, when it was given any measured frame, its first frame's state (``head``, when ``pending``) and
        its last (``tail``; None when ``last``: the take's last share, which no frame follows -- its face box's
        lumas and mask, ~4.5 MB on a 1080p face, are not sent back for nothing)."""
        r = self.res
        vals = {int(f): (r.expression_iod_pct[self._index[f]], r.detail_ratio[self._index[f]],
                         r.dark_pct[self._index[f]], r.wrinkle_ratio[self._index[f]]) for f in self._seen}
        return {"values": vals, "flick_a": list(self._flick_a), "flick_b": list(self._flick_b),
                "notes": list(r.notes), "measured": bool(self._seen), "head": self.head,
                "tail": None if last else self._prev}

    def merge(self, part: dict) -> None:
        """Take in another measurer's :meth:`part` (same method, same frames; the parts in the take's order): its
        first frame's flicker pair with the last frame merged before, then its own pairs."""
        r = self.res
        for f, (e, d, k, w) in part["values"].items():
            i = self._index.get(int(f))
            if i is None:
                continue
            r.expression_iod_pct[i], r.detail_ratio[i], r.dark_pct[i], r.wrinkle_ratio[i] = e, d, k, w
            self._seen.add(int(f))
        if part.get("measured"):
            if part.get("head") is not None:
                self._pair(flicker_pair(self._tail, part["head"]))
            self._tail = part.get("tail")
        self._flick_a.extend(part["flick_a"])
        self._flick_b.extend(part["flick_b"])

    def result(self) -> MethodMeasures:
        if self._flick_b and np.mean(self._flick_b) > 0:
            self.res.flicker_ratio = float(np.mean(self._flick_a) / np.mean(self._flick_b))
        return self.res


def flicker_pair(prev, cur) -> tuple[float, float] | None:
    """(the result's, the plate's) mean absolute change over the face of both from measured frame ``prev`` to
    ``cur`` (each (result luma, plate luma, face mask) of the face's box, or None), or None when there is no pair."""
    if prev is None or cur is None or prev[0].shape != cur[0].shape:
        return None
    both = cur[2] & prev[2]
    if not both.any():
        return None
    return float(np.abs(cur[0] - prev[0])[both].mean()), float(np.abs(cur[1] - prev[1])[both].mean())


def subsample(frames: list, max_frames: int) -> list:
    """``frames`` when there are at most ``max_frames``, else an even subsample of that many (first and last
    kept)."""
    if len(frames) <= max_frames:
        return frames
    return [frames[i] for i in np.linspace(0, len(frames) - 1, max_frames).round().astype(int)]


def _plates(data, method: str | None) -> dict:
    """frame -> ``method``'s plate file (the report's own method: the composited outputs)."""
    return data.methods.get(method) or (data.outputs if method == data.method else {})


def measured_frames(data, method: str | None, max_frames: int = 400) -> list[int]:
    """The frames :func:`measure_method` (and the report's own method's measurer) measure of ``method``."""
    return subsample([f for f in _plates(data, method) if data.hero_index(f) is not None], max_frames)


def measure_method(data, method: str, masks: FaceMasks, components, max_frames: int = 400) -> MethodMeasures:
    """The measures of ``method``'s plates (see the module docstring), reading each frame's plate and result."""
    from .data import _detector, read_output
    from .scan import PlateLandmarks

    plates = _plates(data, method)
    detector = _detector(components)
    m = MethodMeasurer(data, method, masks, detector, measured_frames(data, method, max_frames), max_frames)
    plate_lm = PlateLandmarks(data, detector if m.groups is not None else None)
    for f in m.frames:
        b = data.before(f)
        m.add_result(f, b, read_output(plates[f]), lambda: plate_lm.get(f, b))
    return m.result()


def all_measures(data, components, own: MethodMeasures | None = None, masks: FaceMasks | None = None,
                 done: dict[str, MethodMeasures] | None = None) -> dict[str, MethodMeasures]:
    """Method -> its measures, for every method with plates in the session (the report's own first). ``own``: the
    report's own method's, already measured while the flags read its plates (:func:`.data.compute_flags`);
    ``done``: other methods' measured in that pass too (the rest are measured here, reading their frames)."""
    masks = masks if masks is not None else FaceMasks(data, components)
    methods = list(data.methods) or ([data.method] if data.outputs else [])
    order = ([data.method] if data.method in methods else []) + [m for m in methods if m != data.method]
    out = {}
    for m in order:
        if m == data.method and own is not None:
            out[m] = own
            continue
        if done and m in done:
            out[m] = done[m]
            continue
        try:
            out[m] = measure_method(data, m, masks, components)
        except Exception as exc:  # one method's damaged plates must not take the report down
            log.warning("measures of %s failed: %s", m, exc)
    return out


def intended_reach(shape: tuple[int, int], origin: tuple[int, int], points: np.ndarray, shift: np.ndarray,
                   step: int = 4) -> np.ndarray:
    """(h, w) float32 pixels: at every pixel of a region of ``shape`` whose top-left corner is ``origin`` (x, y) in
    the frame, the length of the intended shift of the nearest landmark (``points`` (N, 2) frame px, ``shift``
    (N, 2) px; non-finite rows ignored): how far the edit means to move what is there. Computed on a grid of
    ``step`` px and spread to the pixels (nearest; :func:`.grid_nearest.nearest_on_grid`: SciPy's ``cKDTree``
    answer without importing SciPy in the report's workers)."""
    import cv2

    from .grid_nearest import nearest_on_grid

    h, w = shape
    ok = np.isfinite(points).all(1) & np.isfinite(shift).all(1)
    if not ok.any():
        return np.zeros((h, w), np.float32)
    mag = np.linalg.norm(shift[ok], axis=1)
    k = nearest_on_grid(np.asarray(points, np.float64)[ok], np.arange(0, w, step, dtype=np.float64) + origin[0],
                        np.arange(0, h, step, dtype=np.float64) + origin[1])
    coarse = mag[k].astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST)


def darkest_within(y: np.ndarray, near: int, reach: np.ndarray | None = None, levels: int = 6,
                   where: np.ndarray | None = None) -> np.ndarray:
    """(h, w) the darkest value of ``y`` within ``near`` px of every pixel (a square window), or within ``near +
    reach`` px where ``reach`` (h, w) px is given; the reach is rounded up to one of ``levels`` radii (spread
    between 0 and the largest reach anywhere), so a pixel may look a little further than its reach, never less far.
    ``where`` (h, w) bool: only those pixels' values, as ``out[where]`` (1-D), the same numbers.

    The radii's erosions are chained (each the last one eroded by the radius still missing: a square's minimum of
    a square's minima is the larger square's minimum, the image's outside ignored by both), so a frame's levels
    cost about one erosion of the largest radius, not one of each."""
    import cv2

    done = [0, y]  # the radius eroded so far and that erosion of ``y`` (never written into)

    def erode(r: int) -> np.ndarray:
        if r > done[0]:
            k = r - done[0]
            done[:] = [r, cv2.erode(done[1], np.ones((2 * k + 1, 2 * k + 1), np.uint8))]
        return done[1] if where is None else done[1][where]

    out = erode(near)
    out = out.copy() if where is None else out  # (a boolean index is a copy already)
    if reach is None or not np.isfinite(reach).any() or float(np.nanmax(reach)) <= 0:
        return out
    top = float(np.nanmax(reach))
    edges = np.linspace(0.0, top, levels + 1)[1:]
    reach = reach if where is None else reach[where]
    lower = 0.0
    for e in edges:
        sel = (reach > lower) & (reach <= e)
        if sel.any():
            out[sel] = erode(near + int(np.ceil(e)))[sel]
        lower = e
    return out
