"""The report's one pass over a take: each frame's plate and composite read once, and what the artist flags and the
report's own method's measures need computed from them, keeping a few numbers per frame.

:class:`FrameScanner` walks frames in order (its only state: the previous frame's edit, for the flicker);
:func:`scan_frames` runs it over the whole take in the driver or, with an executor, over chunks of frames in worker
processes. A chunk that starts inside the take leaves the frame-to-frame numbers of its first frame (the flicker's
change of the edit, the measures' flicker pair) to the driver: it returns that frame's state and its last frame's,
and the driver pairs each chunk's first frame with the previous chunk's last (:func:`edit_change`,
:func:`.measures.flicker_pair`) as the items come back in order, so every number is the one the single pass gives
and no frame is read twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import flags as F

log = logging.getLogger(__name__)

MIN_FRAMES = 8  # below this many frames the pass runs in the driver (starting workers costs more)
MAX_CHUNK = 16  # frames per work item at most
POOL = "report"  # the pass's pre-started workers: the report stage's name (the engine releases them by it)
DETECTOR = ("report-detector",)  # a worker's landmark detector in its Resources (warm_worker makes it early)


def chunk_bounds(n: int, jobs: int) -> list[tuple[int, int]]:
    """(start, stop) of the pass's work items over ``n`` frames for ``jobs`` workers: as even as possible, one item
    per worker on a short take (a third item of two workers would leave one core idle for a whole item), at most
    :data:`MAX_CHUNK` frames each on a long one. Each item costs one lead-in frame, so fewer is cheaper."""
    if n <= 0:
        return []
    size = max(1, min(MAX_CHUNK, -(-n // max(1, jobs))))
    k = -(-n // size)  # items, then spread the frames evenly over them
    edges = [round(i * n / k) for i in range(k + 1)]
    return [(edges[i], edges[i + 1]) for i in range(k)]


def spreads(executor, n_frames: int) -> bool:
    """Whether :func:`scan_frames` spreads a pass over ``n_frames`` frames (with a union mask) over ``executor``'s
    workers: an executor with more than one worker (or not the local one) and more than :data:`MIN_FRAMES`
    frames; else the pass runs in the calling process."""
    if executor is None or n_frames <= MIN_FRAMES:
        return False
    return getattr(executor, "jobs", 1) > 1 or getattr(executor, "name", "") != "local"


class PlateLandmarks:
    """The hero plates' landmarks for the report: the detect stage's (:meth:`~.data.ReportData.detected_plate`) once
    the first frame that has them showed they are exactly what ``detector`` finds on the plate (same detector, same
    options), else detected here."""

    def __init__(self, data, detector) -> None:
        self.detector = detector
        self.stored = data.detected_plate(detector) if detector is not None else {}
        self.same: bool | None = None  # None: not checked yet

    def get(self, frame: int, plate: np.ndarray) -> np.ndarray | None:
        from .data import _detect

        known = self.stored.get(int(frame))
        if known is None or self.same is False:
            return _detect(self.detector, plate)
        if self.same is None:
            mine = _detect(self.detector, plate)
            self.same = mine is not None and mine.shape == known.shape and bool(np.array_equal(mine, known))
            return mine
        return known


@dataclass
class Scanned:
    """What the pass keeps of one frame.

    Attributes:
        ok: plate and composite both read and of one size.
        seam: :func:`.flags.seam_score` (NaN without a mask boundary).
        box: (x, y, w, h) of the paste-back mask on the plate, or None.
        diff: mean absolute change of the edit (composite - plate, grey levels) from the previous frame inside the
            union mask (NaN where not computed).
        shape: the analysed edit's (h, w), or None.
        plate_lm, output_lm: landmarks detected on the plate and the composite ((N, 2) pixels) or None.
        edit, mask: only when no union mask is known (old sessions): the downscaled edit and mask, for the stack.
        thumbs: name -> data URI of the pictures the :class:`~.thumbs.ThumbPlan` asks of this frame (moved into a
            :class:`~.thumbs.ThumbStore` as soon as the frame is back).
    """

    ok: bool = False
    seam: float = float("nan")
    box: tuple[int, int, int, int] | None = None
    diff: float = float("nan")
    shape: tuple[int, int] | None = None
    plate_lm: np.ndarray | None = None
    output_lm: np.ndarray | None = None
    edit: np.ndarray | None = field(default=None, repr=False)
    mask: np.ndarray | None = field(default=None, repr=False)
    thumbs: dict[str, str] | None = field(default=None, repr=False)


class FrameScanner:
    """Steps through frames in order; see the module docstring.

    Args:
        data: the report's :class:`~.data.ReportData`. detector: landmark detector (None: no landmarks).
        union: (h, w) float64 union of the downscaled paste-back masks, or None (then every frame's edit and mask
            are kept in :class:`Scanned` for the old stacked computation).
        measurer: a :class:`~.measures.MethodMeasurer` handed every frame, or None.
        plan: the :class:`~.thumbs.ThumbPlan` of the pictures to make of each frame, or None.
        others: {method: its :class:`~.measures.MethodMeasurer`} of the session's other methods: each frame's
            plate (its decode, its landmarks, its face masks) serves their results too, read here.
    """

    def __init__(self, data, detector, union: np.ndarray | None, measurer=None, plan=None,
                 pending: bool = False, others: dict | None = None) -> None:
        from .data import LANDMARK_GROUPS

        self.data, self.detector, self.union, self.measurer = data, detector, union, measurer
        self.others = dict(others or {})
        self.plan = plan
        self.groups = LANDMARK_GROUPS.get(getattr(detector, "scheme", ""), None)
        self.plate_landmarks = PlateLandmarks(data, detector if self.groups is not None else None)
        self.prev: Any = None
        self._union_sum = None if union is None else max(float(union.sum()), 1e-9)
        #: the first frame's change from the frame before is left to the caller (a chunk inside the take); its edit
        #: (float32) is kept in ``head`` (None: not computed)
        self.pending = pending
        self.head: np.ndarray | None = None

    def tail(self) -> Any:
        """What the frame after the last one stepped compares with: its edit (float32), 0.0 (a frame without an
        edit) or None."""
        return self.prev.astype(np.float32) if isinstance(self.prev, np.ndarray) else self.prev

    def step(self, index: int, frame: int) -> Scanned:
        """Scan frame ``frame`` (``index``: its position in the take's list)."""
        from ..retouch.roi import mask_box
        from .data import MAX_ANALYSIS_WIDTH, _detect, _downscale, changed_region

        d, f = self.data, frame
        first, self.pending = self.pending, False
        b, a = d.before(f), d.after(f)
        if b is None or a is None or b.shape != a.shape:
            self.prev = 0.0  # the stacked computation held zeros for a frame without an edit
            if self.measurer is not None:
                self.measurer.add(f, None, None, detected=True)
            return Scanned()
        m = d.mask(f, b.shape[:2])
        m = changed_region(b, a) if m is None else m
        bs, as_ = _downscale(b, MAX_ANALYSIS_WIDTH), _downscale(a, MAX_ANALYSIS_WIDTH)
        edit = F.channel_mean(as_, np.float32) - F.channel_mean(bs, np.float32)
        out = Scanned(ok=True, shape=edit.shape)
        if self.union is not None and self.union.shape == edit.shape:
            e64 = edit.astype(np.float64)
            if index == 0:  # temporal_difference of the stacked edits, one pair at a time
                out.diff = 0.0
            elif first:
                self.head = edit
            else:
                out.diff = edit_change(e64, self.prev, self.union, self._union_sum)
            self.prev = e64
        box = mask_box(m > 0.05)  # from its rows and columns (a full-frame nonzero: ~8 ms)
        if box is not None:
            out.box = (box[2], box[0], box[3] - box[2], box[1] - box[0])
        if self.plan is not None:
            from .thumbs import make_thumbs

            out.thumbs = make_thumbs(self.plan.for_frame(f), b, a, out.box)
        ms = _downscale(m, MAX_ANALYSIS_WIDTH)
        out.seam = F.seam_score(as_, ms, bs) if m.any() else float("nan")
        if self.union is None:
            out.edit, out.mask = edit, ms
        if self.groups is not None:
            out.plate_lm, out.output_lm = self.plate_landmarks.get(f, b), _detect(self.detector, a)
        if self.measurer is not None:
            self.measurer.add(f, b, a, out.plate_lm, out.output_lm, detected=self.groups is not None)
        for method, m in self.others.items():
            if m.failed is None and m.wants(f):
                self._measure_other(method, m, f, b, out.plate_lm)
        return out

    def _measure_other(self, method: str, m, f: int, b: np.ndarray, plate_lm: np.ndarray | None) -> None:
        """Another method's result of frame ``f`` measured against the plate ``b`` read for the flags, as
        :func:`.measures.measure_method` measures it; an error leaves the method to be measured after the pass."""
        from .data import read_output

        try:
            p = self.data.methods.get(method, {}).get(f)
            m.add_result(f, b, None if p is None else read_output(p), plate_lm)
        except Exception as exc:  # noqa: BLE001 - measured again after the pass, where the error is reported
            m.failed = f"{type(exc).__name__}: {exc}"
            log.info("report: %s's frame %d not measured in the pass: %s", method, f, m.failed)


def edit_change(edit: np.ndarray, prev: Any, union: np.ndarray, union_sum: float) -> float:
    """The flicker's number of one frame: mean absolute change of the edit (float64 (h, w)) from ``prev`` (the
    frame before's edit, 0.0 or None: no edit) under the union mask, whose sum is ``union_sum``."""
    prev = 0.0 if prev is None else (np.asarray(prev, np.float64) if isinstance(prev, np.ndarray) else prev)
    return float((np.abs(edit - prev) * union).sum() / union_sum)


@dataclass(frozen=True, slots=True)
class ScanChunk:
    """One work item of the report's pass (picklable). ``root``: session folder; ``method``: the report's method
    (None: the old layouts); ``frames``: the take's frames to report, in order; ``start``/``stop``: this chunk's
    slice of them; ``measured``: the measurer's frames (a subsample of ``frames`` on long takes); ``union``: the
    downscaled union mask; ``plan``: the pictures to make (:class:`~.thumbs.ThumbPlan`) or None; ``others``:
    (method, its measured frames) of the session's other methods, measured in the pass too."""

    root: str
    method: str | None
    frames: tuple[int, ...]
    start: int
    stop: int
    measured: tuple[int, ...]
    union: np.ndarray
    plan: Any = None
    others: tuple[tuple[str, tuple[int, ...]], ...] = ()


def scan_chunk(job: ScanChunk, res) -> tuple[list[Scanned], dict, tuple[Any, Any], dict]:
    """Scan one chunk in a worker: (its frames' :class:`Scanned`, the measurer's part, (the first frame's edit
    whose change from the frame before the driver computes, or None; :meth:`FrameScanner.tail`, None for the take's
    last chunk), {other method: its measurer's part, or the error (str) that stopped it}). The take's last chunk
    sends back no state of its last frame (no chunk follows to pair with it: its edit and the measurers' face
    boxes, ~6.5 MB a 1080p take, would only be pickled, piped and unpickled at the end of the pass).
    Module-level for ``ctx.executor.map``."""
    from ..session import Session
    from .data import ReportData, _detector
    from ..lazy_imports import defer_plotting_imports
    from .measures import FaceMasks, MethodMeasurer

    def setup():
        defer_plotting_imports()  # before the detector and the renderer import MediaPipe and open3d
        data = ReportData.load(Session.open(job.root), job.method)
        return data, FaceMasks(data, res.components)

    data, masks = res.get(("report-scan", job.root, job.method), setup)
    detector = res.get(DETECTOR, lambda: _detector(res.components))
    inside, mine = job.start > 0, job.frames[job.start:job.stop]
    measurer = MethodMeasurer(data, job.method, masks, detector, job.measured, max_frames=len(job.measured) or 1,
                              pending=inside)
    others = {m: MethodMeasurer(data, m, masks, detector, fr, max_frames=len(fr) or 1, pending=inside)
              for m, fr in job.others}
    masks.prepare([f for f in mine if measurer.wants(f) or any(o.wants(f) for o in others.values())])
    scanner = FrameScanner(data, detector, job.union, measurer, job.plan, pending=inside, others=others)
    out = [scanner.step(job.start + k, f) for k, f in enumerate(mine)]
    last = job.stop >= len(job.frames)
    return out, measurer.part(last), (scanner.head, None if last else scanner.tail()), \
        {m: (o.failed if o.failed is not None else o.part(last)) for m, o in others.items()}


def warm_worker(res) -> None:
    """A pre-started worker's warm-up (:meth:`~reconstruct.executors.local.LocalExecutor.prestart`), before the
    take's report data exist: what :func:`scan_chunk` imports, the plugin registry, the landmark detector (cached
    in ``res`` for it) and the renderer's imports its face masks need."""
    from ..lazy_imports import defer_plotting_imports

    defer_plotting_imports()
    from ..render import renderer_class
    from ..retouch.roi import mask_box  # noqa: F401 - imported for the pass
    from ..session import Session  # noqa: F401
    from . import measures, thumbs  # noqa: F401
    from .data import _detector

    res.get(DETECTOR, lambda: _detector(res.components))
    renderer_class(res.components, "auto", "cpu").preload()


def scan_frames(data, frames: list[int], detector, union: np.ndarray | None, measurer=None, executor=None,
                components=None, progress=None, plan=None, store=None, idle=None,
                others: dict | None = None) -> tuple[list[Scanned], Any]:
    """(:class:`Scanned` of every frame in order, the detector or its class). With an ``executor`` (and a union
    mask), chunks of frames (:func:`chunk_bounds`) run as its work items, each worker with its own landmark detector, and
    their measures are merged into ``measurer``; else one pass here (``detector``: the one to use, default the
    best installed one). ``plan``: the pictures to make of each frame (:class:`~.thumbs.ThumbPlan`), put into
    ``store`` (a :class:`~.thumbs.ThumbStore`) as each frame comes back. ``idle``: a callable run in a thread of
    this process while the workers scan (loading and hashing the driver needs after the pass, otherwise done after
    it while the cores wait; joined before this returns; not run when the pass runs here). ``others``: {method:
    :class:`~.measures.MethodMeasurer`} of the session's other methods, handed their frames in the pass (their
    parts merged as the own measurer's; one that failed keeps the error in ``failed``)."""

    def keep(sc: Scanned, f: int) -> Scanned:
        if store is not None and sc.thumbs:
            store.put(f, sc.thumbs)
        sc.thumbs = None
        return sc

    from .data import _detector, _detector_class

    if union is None or not spreads(executor, len(frames)):
        detector = detector if detector is not None else _detector(components)
        prepare = getattr(getattr(measurer, "masks", None), "prepare", None)
        if prepare is not None:
            prepare([f for f in frames if measurer.wants(f) or any(o.wants(f) for o in (others or {}).values())])
        scanner = FrameScanner(data, detector, union, measurer, plan, others=others)
        return [keep(scanner.step(i, f), f) for i, f in enumerate(frames)], detector
    measured = tuple(int(f) for f in measurer.frames) if measurer is not None else ()
    fr = tuple(int(f) for f in frames)
    theirs = tuple((m, tuple(int(f) for f in o.frames)) for m, o in (others or {}).items())
    items = [ScanChunk(str(data.session.root), data.method, fr, a, b, measured, union, plan, theirs)
             for a, b in chunk_bounds(len(fr), getattr(executor, "jobs", 1))]
    out: list[Scanned] = []
    usum, tail = max(float(union.sum()), 1e-9), None
    side = None if idle is None else threading.Thread(target=_logged, args=(idle,), name="report-idle", daemon=True)
    if side is not None:
        side.start()
    try:
        # fresh worker processes: a MediaPipe detector the driver ran before (the digital_human method's stills)
        # would crash a forked one
        for scans, part, (head, last), parts in executor.map(scan_chunk, items, progress,
                                                             f"report ({len(fr)} frames)", resources=True, fresh=True,
                                                             prestarted=POOL):
            done = len(out)  # the items come back in order: the previous chunk's last frame is the one before
            if done and head is not None:
                scans[0].diff = edit_change(head.astype(np.float64), tail, union, usum)
            tail = last
            out.extend(keep(sc, f) for sc, f in zip(scans, fr[done:done + len(scans)]))
            if measurer is not None:
                measurer.merge(part)
            for m, p in parts.items():
                o = others[m]
                if isinstance(p, str):
                    o.failed = o.failed or p
                elif o.failed is None:
                    o.merge(p)
    finally:
        if side is not None:
            side.join()
    return out, detector if detector is not None else _detector_class(components)


def _logged(fn) -> None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - what it prepares is made again where it is needed
        log.warning("report: work done while the workers scan failed: %s", exc)
