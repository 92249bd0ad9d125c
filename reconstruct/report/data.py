"""What the report reads from a session: whatever upstream stages have produced, nothing required but sync.

:class:`ReportData` finds the hero plates (``cams/<hero>``), the composited plates (``out/plates/hero/F.png``
written by the composite stage; ``out/composite/hero`` is accepted too), their masks (``out/plates/patches``), the
fits (``out/fit/fits.npz``), the detect stage's hero landmarks (``out/detect/landmarks.npz``) and the stage records
(``out/<stage>/_stage.json``). :func:`compute_flags` runs the
artist flags of :mod:`.flags` over them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..artifacts.plates import plate_paths, read_plate
from ..face.landmark_groups import MP_INNER_LIPS, MP_OUTER_LIPS
from ..session import STAGE_FILE, FrameSet, Session
from . import flags as F
from .pngread import read_gray

log = logging.getLogger(__name__)

OUTPUT_DIRS = ("plates/hero", "composite/hero", "composite/plates/hero")  # layouts of sessions made before per-method
# plates (out/plates/<method>/hero): read when no method has plates
MASK_DIRS = ("plates/patches", "composite/patches")
MAX_ANALYSIS_WIDTH = 960  # image flags run on plates downscaled to at most this width

# Landmark index groups per scheme: align (stable: eye corners, nose), eyes (lids + irises), expression (mouth,
# brows, chin). MediaPipe Face Mesh 478 (with irises) and the iBUG 68-point scheme.
_MP_LIPS = [*MP_OUTER_LIPS, *MP_INNER_LIPS]
_MP_BROWS = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
_MP_CHIN = [152, 148, 176, 149, 150, 377, 400, 378, 379]
_MP_LEFT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
_MP_RIGHT_EYE = [362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398]
LANDMARK_GROUPS: dict[str, dict[str, list[int]]] = {
    "mediapipe478": {"align": [33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 234, 454],
                     "eyes": _MP_LEFT_EYE + _MP_RIGHT_EYE + list(range(468, 478)),
                     "expression": _MP_LIPS + _MP_BROWS + _MP_CHIN, "mouth": _MP_LIPS,
                     "iod_left": _MP_LEFT_EYE, "iod_right": _MP_RIGHT_EYE,
                     "iris_left": list(range(468, 473)), "iris_right": list(range(473, 478))},
    "ibug68": {"align": [36, 39, 42, 45, 27, 28, 29, 30, 31, 35, 0, 16],
               "eyes": list(range(36, 48)), "expression": list(range(48, 68)) + list(range(17, 27)) + [7, 8, 9],
               "mouth": list(range(48, 68)),
               "iod_left": list(range(36, 42)), "iod_right": list(range(42, 48))},
}


@dataclass
class ReportData:
    """Lazy access to what the report shows. Build with :meth:`load`."""

    session: Session
    framesets: list[FrameSet] = field(default_factory=list)
    outputs: dict[int, Path] = field(default_factory=dict)
    method: str | None = None  # the method whose plates ``outputs`` are
    methods: dict[str, dict[int, Path]] = field(default_factory=dict)  # every method with plates -> its plates
    mask_dir: Path | None = None
    stages: dict[str, dict] = field(default_factory=dict)
    fits: Any = None
    notes: list[str] = field(default_factory=list)
    _by_frame: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, session: Session, method: str | None = None) -> "ReportData":
        """What the report shows; ``method``: whose plates are "the" output (default: the method the composite
        stage last ran, else the newest plates)."""
        d = cls(session)
        try:
            d.framesets = session.read_sync()
        except Exception as exc:  # a report of a broken session still shows what it can
            d.notes.append(f"no sync.csv ({exc})")
        d._by_frame = {fs.frame: fs for fs in d.framesets}
        out = session.root / "out"
        if out.is_dir():
            for sub in sorted(out.iterdir()):
                if sub.is_dir() and (sub / STAGE_FILE).exists():
                    rec = session.stage_record(sub.name)
                    if rec is None:
                        d.notes.append(f"{sub / STAGE_FILE} is damaged")
                    else:
                        d.stages[sub.name] = rec
        d.methods = {m: plate_paths(session.method_plates(m) / d.hero) for m in session.plate_methods()}
        d.methods = {m: p for m, p in d.methods.items() if p}
        if method is None or method not in d.methods:
            method = _last_composited(session)
        if method not in d.methods and d.methods:
            method = list(d.methods)[-1]
        if method in d.methods:
            d.method, d.outputs = method, d.methods[method]
        else:
            for rel in OUTPUT_DIRS:
                found = plate_paths(out / rel)
                if found:
                    d.outputs = found
                    break
        for rel in MASK_DIRS:
            if (out / rel).is_dir():
                d.mask_dir = out / rel
                break
        fits = out / "fit" / "fits.npz"
        if fits.exists():
            from ..fitting.result import load_fits

            try:
                d.fits = load_fits(fits)
            except Exception as exc:
                d.notes.append(f"cannot read {fits}: {exc}")
        return d

    @property
    def hero(self) -> str:
        return self.session.rig.hero.name

    def intent(self, method: str | None) -> tuple[str, dict[int, np.ndarray]]:
        """(landmark scheme, frame -> (N, 2) intended landmark shift) of ``method``'s edits (``intent.npz`` beside
        its plates); ("", {}) when it recorded none."""
        p = self.session.method_plates(method) / "intent.npz" if method else None
        if p is None or not p.exists():
            return "", {}
        with np.load(p, allow_pickle=False) as z:
            shift, scheme = z["shift"], str(z["scheme"])
            return scheme, {int(f): intended_shift(shift[i], scheme) for i, f in enumerate(z["frames"])
                            if shift.shape[1] and np.isfinite(shift[i]).any()}

    def detected_plate(self, detector: Any) -> dict[int, np.ndarray]:
        """Frame -> the hero plate's landmarks (N, 2) float64 px the detect stage found with a detector of the same
        name and scheme as ``detector`` (``out/detect/landmarks.npz``); {} without them. The caller checks that
        they are what ``detector`` finds (the stage may have run with other options: :class:`~.scan.FrameScanner`
        compares one frame before using them)."""
        from ..artifacts.detections import FILE, Detections

        p = self.session.stage_dir("detect") / FILE
        if detector is None or not p.exists():
            return {}
        try:
            det = Detections.load(p)
        except Exception as exc:  # the report still detects on the plates itself
            log.info("not using %s: %s", p, exc)
            return {}
        if det.scheme != getattr(detector, "scheme", None) or det.detector != getattr(detector, "name", None):
            return {}
        hero = det.for_camera(self.hero)
        return {} if hero is None else dict(hero.points)

    def hero_index(self, frame: int) -> int | None:
        fs = self._by_frame.get(frame)
        return None if fs is None else fs.indices.get(self.hero)

    def before(self, frame: int) -> np.ndarray | None:
        """The hero plate of output frame ``frame`` as RGB uint8 (16-bit: ``v // 257``), or None (the session's
        reader: plain PNGs by :func:`reconstruct.png.decode_png`)."""
        fs = self._by_frame.get(frame)
        img = None if fs is None else self.session.frame_images(fs, [self.hero])[self.hero]
        if img is None:
            return None
        if img.dtype == np.uint16:
            img = (img // 257).astype(np.uint8)
        return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img

    def after(self, frame: int) -> np.ndarray | None:
        """The composited plate of ``frame`` as RGB uint8 (:func:`~reconstruct.artifacts.plates.read_plate`'s
        values), or None."""
        p = self.outputs.get(frame)
        return None if p is None else read_output(p)

    def patch_plate_size(self, frame: int) -> tuple[int, int] | None:
        """(W, H) of the plate ``frame``'s mask patch belongs to, or None when it has no patch."""
        if self.mask_dir is None:
            return None
        jp = self.mask_dir / f"{frame:06d}.json"
        if not (jp.exists() and (self.mask_dir / f"{frame:06d}_mask.png").exists()):
            return None
        try:
            w, h = json.loads(jp.read_text())["plate_size"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return int(w), int(h)

    def empty_masks(self) -> set[int]:
        """Frames whose composite left the plate unchanged (``mask_px`` 0 in composite.json)."""
        p = self.session.stage_dir("composite") / "composite.json"
        try:
            frames = json.loads(p.read_text()).get("frames", {})
        except (OSError, ValueError, AttributeError):
            return set()
        return {int(f) for f, v in frames.items() if isinstance(v, dict) and v.get("mask_px") == 0}

    def mask(self, frame: int, shape: tuple[int, int]) -> np.ndarray | None:
        """The paste-back mask (H, W) float in [0, 1] of ``frame`` (from the composite stage's patch), or None."""
        if self.mask_dir is None:
            return None
        stem = f"{frame:06d}"
        mp, jp = self.mask_dir / f"{stem}_mask.png", self.mask_dir / f"{stem}.json"
        if not (mp.exists() and jp.exists()):
            return None
        a = read_gray(mp)
        if a is None:
            import cv2

            a = cv2.imread(str(mp), cv2.IMREAD_UNCHANGED)
        info = json.loads(jp.read_text())
        if a is None:
            return None
        a = a.astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0)
        x, y = info["offset_px"]
        full = np.zeros(shape, np.float32)
        h, w = min(a.shape[0], shape[0] - y), min(a.shape[1], shape[1] - x)
        full[y:y + h, x:x + w] = a[:h, :w]
        return full


def read_output(path: Path) -> np.ndarray | None:
    """A method's plate PNG as RGB uint8 (:func:`~reconstruct.artifacts.plates.read_plate`: plain PNGs by
    :func:`reconstruct.png.decode_png`), or None when unreadable -- the one place the report reads an output."""
    return read_plate(path)


def intended_shift(shift: np.ndarray, scheme: str) -> np.ndarray:
    """One frame's intended landmark shift (N, 2) px as the report uses it: an iris the face model has no
    correspondence for (NaN) moves with its eye (the mean shift of that eye's lid contour: a warp that moves an eye
    carries the iris in it, and the gaze measured against the fitted eyeball must not see that as a look
    elsewhere); any other landmark without one is taken as not meant to move (0)."""
    shift = np.array(shift, np.float64)
    groups = LANDMARK_GROUPS.get(scheme, {})
    for lid, iris in (("iod_left", "iris_left"), ("iod_right", "iris_right")):
        if iris not in groups or shift.shape[0] <= max(groups[iris]):
            continue
        rows = np.asarray(groups[iris])
        eye = shift[groups[lid]]
        eye = eye[np.isfinite(eye).all(1)]
        gone = ~np.isfinite(shift[rows]).all(1)
        if gone.any() and len(eye):
            shift[rows[gone]] = eye.mean(0)
    return np.nan_to_num(shift)


def _last_composited(session: Session) -> str | None:
    p = session.stage_dir("composite") / "composite.json"
    try:
        return json.loads(p.read_text()).get("method")
    except (OSError, ValueError, AttributeError):
        return None


def changed_region(before: np.ndarray, after: np.ndarray, levels: float = 3.0) -> np.ndarray:
    """(H, W) float mask of pixels the composite changed by more than ``levels`` grey levels (closed, opened)."""
    import cv2

    diff = np.abs(after.astype(np.int16) - before.astype(np.int16)).max(axis=-1) > levels
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    m = cv2.morphologyEx(diff.astype(np.uint8), cv2.MORPH_CLOSE, k)
    return cv2.morphologyEx(m, cv2.MORPH_OPEN, k).astype(np.float32)


def _downscale(img: np.ndarray, width: int) -> np.ndarray:
    import cv2

    if img.shape[1] <= width:
        return img
    s = width / img.shape[1]
    return cv2.resize(img, (width, max(1, round(img.shape[0] * s))), interpolation=cv2.INTER_AREA)


@dataclass
class FlagResults:
    """Flags computed for a report: name -> FlagSeries, or name -> reason when the flag could not run."""

    series: dict[str, F.FlagSeries] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    boxes: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)  # frame -> face box (x, y, w, h)
    #: (T, 2) degrees between the plate's and the output's gaze (subject's left, right eye) per flagged-series frame,
    #: when a fit with iris landmarks was available; else None
    gaze_deg: np.ndarray | None = None
    #: (frames (T,), plate landmarks moved by the edit's intended shift (T, N, 2), output landmarks (T, N, 2)), or
    #: None when no landmark detector ran
    landmarks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    #: the pictures the pass made for the sections (:class:`~.thumbs.ThumbStore`), or None
    thumbs: Any = None

    def flagged_frames(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for name, s in self.series.items():
            for f in s.flagged:
                out.setdefault(int(f), []).append(name)
        return dict(sorted(out.items()))


def _detector_class(components) -> Any:
    """The highest-priority landmark detector whose scheme the report knows (its class: nothing is started), or
    None."""
    try:
        dets = components.all("landmark_detector")
    except Exception as exc:
        log.info("no landmark detectors: %s", exc)
        return None
    usable = [d for d in dets.values() if getattr(d, "scheme", None) in LANDMARK_GROUPS]
    return max(usable, key=lambda d: getattr(d, "priority", 0)) if usable else None


def _detector(components) -> Any:
    best = _detector_class(components)
    if best is None:
        return None
    try:
        return best() if isinstance(best, type) else best
    except Exception as exc:
        log.warning("landmark detector %s cannot start: %s", getattr(best, "name", best), exc)
        return None


def compute_flags(data: ReportData, components: Any, thresholds: Mapping[str, float] | None = None,
                  max_frames: int = 2000, measurer: Any = None, detector: Any = None, executor: Any = None,
                  progress: Any = None, thumbs: Any = None, idle: Any = None, others: Any = None) -> FlagResults:
    """Run the four artist flags over every frame that has both a plate and a composite.

    Frame by frame (:mod:`.scan`): each plate and composite is read once, and what is kept per frame is a few
    numbers (memory does not grow with the take; the flicker's mask, the union of every frame's paste-back mask, is
    read first from the composite stage's mask patches). ``measurer``: a :class:`~.measures.MethodMeasurer` of the
    report's own method, handed every frame's plate, composite and landmarks as they are read (so they are not read
    and detected twice). ``detector``: the landmark detector to use (default: the best installed one).
    ``executor``: the run's executor, over whose workers the frames are spread in chunks (None: this process);
    each worker starts its own detector (a detector started here before the workers fork would not survive the
    fork: MediaPipe's threads). ``thumbs``: a :class:`~.thumbs.ThumbPlan` of the pictures the sections will show,
    made from the frames as they are read (kept in ``FlagResults.thumbs``). ``idle``: work of the caller's for this
    process while the workers scan (see :func:`.scan.scan_frames`); the gaze term's camera and face model are loaded
    then too. ``others``: {method: :class:`~.measures.MethodMeasurer`} of the session's other methods, handed
    their results of the frames the pass reads (:func:`.scan.scan_frames`)."""
    from .scan import scan_frames
    from .thumbs import ThumbStore

    th = dict(thresholds or {})
    res = FlagResults()
    frames = [f for f in data.outputs if data.hero_index(f) is not None][:max_frames]
    if not frames:
        why = "no composited plates yet (the composite stage has not run)" if not data.outputs else \
            "composited plates do not match any frame of sync.csv"
        for n in ("stiff_expression", "unnatural_eyes", "flicker", "seams"):
            res.skipped[n] = why
        return res
    union = _mask_union(data, frames)  # None: a frame's mask must come from its plates (old layouts)
    res.thumbs = ThumbStore() if thumbs is not None else None
    early: dict[str, Any] = {}

    def meanwhile() -> None:
        if data.fits is not None:
            try:
                early["gaze"] = _gaze_inputs(data)
            except Exception as exc:  # reported as before, when the gaze is compared
                early["gaze"] = exc
        if idle is not None:
            idle()

    scans, detector = scan_frames(data, frames, detector, union, measurer, executor, components, progress,
                                  thumbs, res.thumbs, idle=meanwhile, others=others)
    groups = LANDMARK_GROUPS.get(getattr(detector, "scheme", ""), None)
    for f, sc in zip(frames, scans):
        if sc.box is not None:
            res.boxes[f] = sc.box
    fr = np.array(frames)
    res.series["seams"] = F._series("seams", fr, np.array([sc.seam for sc in scans]), th.get("seams", 5.0),
                                    "grey levels")
    shapes = {sc.shape for sc in scans if sc.ok}
    if sum(sc.ok for sc in scans) >= 3 and len(shapes) == 1 and (union is None or union.shape in shapes):
        if union is None:  # the stacked computation (memory grows with the take; old sessions only)
            ok = [sc.ok for sc in scans]
            first = next(sc.edit for sc in scans if sc.ok)
            stack = np.stack([sc.edit if sc.ok else np.full_like(first, np.nan) for sc in scans])
            u = np.clip(np.max(np.stack([sc.mask for sc in scans if sc.ok]), axis=0), 0, 1)
            diff = F.temporal_difference(np.nan_to_num(stack), u)
            diff[[i for i, o in enumerate(ok) if not o]] = np.nan
        else:
            diff = np.array([sc.diff for sc in scans])
        res.series["flicker"] = F.flicker(diff, frames=fr, k=th.get("flicker_k", 5.0),
                                          min_levels=th.get("flicker_levels", 2.0))
    else:
        res.skipped["flicker"] = "fewer than 3 consecutive composited frames of one size"
    lm_before = [sc.plate_lm for sc in scans]
    lm_after = [sc.output_lm for sc in scans]
    if groups is None:
        why = ("no landmark detector with a known scheme is installed" if detector is None else
               f"landmark scheme {detector.scheme!r} has no index groups")
        res.skipped["stiff_expression"] = res.skipped["unnatural_eyes"] = why
        return res
    n = max((x.shape[0] for x in lm_before + lm_after if x is not None), default=0)
    if n == 0:
        res.skipped["stiff_expression"] = res.skipped["unnatural_eyes"] = "no face found by the landmark detector"
        return res
    nan = np.full((n, 2), np.nan)
    P = np.stack([x if x is not None and x.shape[0] == n else nan for x in lm_before])
    O = np.stack([x if x is not None and x.shape[0] == n else nan for x in lm_after])
    scheme, intent = data.intent(data.method)
    if scheme == detector.scheme:  # an intended change of shape (a warp) is not a lost expression
        for i, f in enumerate(frames):
            if f in intent and intent[f].shape == P[i].shape:
                P[i] = P[i] + intent[f]
    res.landmarks = (fr, P, O)
    iod = np.linalg.norm(P[:, groups["iod_left"]].mean(1) - P[:, groups["iod_right"]].mean(1), axis=-1)
    iod = np.where(np.isfinite(iod) & (iod > 1), iod, np.nanmedian(iod) if np.isfinite(iod).any() else 1.0)
    res.series["stiff_expression"] = F.stiff_expression(P, O, groups["align"], groups["expression"], iod, fr,
                                                        threshold=th.get("stiff_expression", 0.04))
    gp, go = _gazes(data, fr, P, O, getattr(detector, "scheme", ""), early.get("gaze"))
    res.series["unnatural_eyes"] = F.unnatural_eyes(P, O, groups["align"], groups["eyes"], iod, fr,
                                                    threshold=th.get("unnatural_eyes", 0.03), gaze_plate=gp,
                                                    gaze_output=go, gaze_threshold_deg=th.get("gaze_deg", 5.0))
    if gp is not None:
        res.gaze_deg = F.gaze_angle_deg(gp, go)
    return res


def _mask_union(data: ReportData, frames: list[int]) -> np.ndarray | None:
    """The union (max) of every frame's paste-back mask, downscaled as the flags see it, from the composite
    stage's mask patches (small files; read before the plates so that the flicker needs no stack of frames).
    A frame without a patch counts as no mask when composite.json says its mask was empty (the plate unchanged);
    None when a frame's mask can only come from its plates (sessions from before the patches)."""
    if data.mask_dir is None:
        return None
    empty = data.empty_masks()
    union = None
    for f in frames:
        size = data.patch_plate_size(f)
        if size is None:
            if f in empty:
                continue
            return None
        m = data.mask(f, (size[1], size[0]))
        if m is None:
            return None
        ms = np.clip(_downscale(m, MAX_ANALYSIS_WIDTH).astype(np.float64), 0, 1)
        if union is None:
            union = ms
        elif union.shape == ms.shape:
            np.maximum(union, ms, out=union)
        else:
            return None
    return union


def _gaze_inputs(data: ReportData) -> tuple[Any, Any]:
    """(the hero camera, the fit's face model) the gaze term needs."""
    from ..calibration.result import load_calibration
    from ..face.store import load_model_by_name

    return load_calibration(data.session)[data.hero], load_model_by_name(data.fits.model_name)


def _gazes(data: ReportData, frames: np.ndarray, P: np.ndarray, O: np.ndarray, scheme: str, inputs: Any = None):
    """Gaze (T, 2, 3) in the plate and in the output of every frame, from the hero view against the fitted head
    (:func:`reconstruct.fitting.gaze.gaze_in_view`); (None, None) without a fit, a calibration or iris landmarks.
    ``inputs``: :func:`_gaze_inputs` already loaded (or the exception it raised), else loaded here."""
    from ..fitting.gaze import gaze_in_view, supports_gaze

    fits = data.fits
    if fits is None or not supports_gaze(scheme):
        return None, None
    try:
        if isinstance(inputs, Exception):
            raise inputs
        cam, model = inputs if inputs is not None else _gaze_inputs(data)
    except Exception as exc:  # the landmark comparison still runs without the gaze term
        data.notes.append(f"gaze not compared: {exc}")
        return None, None
    row = {int(f): i for i, f in enumerate(fits.frames)}
    gp = np.full((len(frames), 2, 3), np.nan)
    go = np.full((len(frames), 2, 3), np.nan)
    for k, f in enumerate(frames):
        i = row.get(int(f))
        if i is None or not fits.valid[i] or not (np.isfinite(P[k]).all() and np.isfinite(O[k]).all()):
            continue
        gp[k] = gaze_in_view(model, fits.vertices[i], fits.R[i], cam, P[k], scheme)
        go[k] = gaze_in_view(model, fits.vertices[i], fits.R[i], cam, O[k], scheme)
    return gp, go


def _detect(detector: Any, image: np.ndarray) -> np.ndarray | None:
    try:
        r = detector.detect(image)
    except Exception as exc:
        log.warning("landmark detection failed on a report frame: %s", exc)
        return None
    return None if r is None else np.asarray(r[0], np.float64)
