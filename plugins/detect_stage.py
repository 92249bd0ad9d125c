"""Built-in plugin ``detect``: 2D face landmarks for every frame set and camera.

Output ``out/detect/``:

* ``landmarks.npz``: ``frames`` (T,) int32 output frame numbers (rows of sync.csv), ``cameras`` (C,) names,
  ``points`` (T, C, N, 2) float32 distorted pixel coordinates (NaN where nothing was detected or the camera had no
  frame), ``confidence`` (T, C, N) float32, ``found`` (T, C) bool, ``scheme`` and ``detector`` names;
* ``report.json``: per camera the number of frames with a face, how many of them were tracked from the frame before,
  and the frames where none was found or the camera had no frame in the set.

Options (``--option detect.KEY=VALUE``, :class:`DetectSettings`): ``detector`` (registered name; default: highest
priority), ``yunet`` (YuNet ONNX path for the face box, ``auto`` or ``none``), ``haar`` (Haar cascade XML path,
``auto`` or ``none``), ``crop_px`` (face crop side handed to the detector), ``step`` (detect every n-th frame set),
``track`` (find the face from the previous frame's landmarks: ``box``, ``crop``; default ``off``) and ``track_run``
(frame sets per run of a view, each run starting with a full detection); docs/fitting.md "Tracking" has the
measurements. The result is a :class:`reconstruct.artifacts.Detections`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from reconstruct import hookimpl
from reconstruct.artifacts import Detections
from reconstruct.artifacts.detections import FILE as DETECTIONS_FILE
from reconstruct.errors import StageError
from reconstruct.options import option
from reconstruct.session import atomic_write_json
from reconstruct.stage import StageContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DetectSettings:
    """``--option detect.KEY=VALUE`` (see docs/fitting.md)."""

    detector: str | None = option(None, "landmark detector by name (default: the registered one with the highest "
                                        "priority)")
    yunet: str = option("auto", "YuNet ONNX file for the face box: a path, auto (the bundled model) or none")
    haar: str = option("auto", "Haar cascade XML used without YuNet: a path, auto (the bundled one) or none")
    crop_px: int | None = option(None, "side of the square face crop handed to the detector, pixels")
    step: int = option(1, "detect on every n-th frame set only")
    track: Literal["off", "box", "crop"] = option(
        "off", "find the face from the previous frame's landmarks instead of the face box detector: box (two "
               "MediaPipe passes, the first around the previous landmarks), crop (one pass, on the crop the second "
               "pass would use, around the previous landmarks), off; opt-in: the fit's jitter rose with both "
               "(docs/fitting.md \"Tracking\")")
    track_run: int = option(12, "frame sets per work item with tracking (each run starts with a full detection)")

    def __post_init__(self) -> None:
        if self.step < 1 or self.track_run < 1 or (self.crop_px is not None and self.crop_px < 16):
            raise ValueError("detect.step and detect.track_run must be at least 1 and detect.crop_px at least 16")

    def detector_kwargs(self) -> dict:
        """The options the detector class is built with (only those given)."""
        kw: dict = {k: getattr(self, k) for k in ("yunet", "haar") if getattr(self, k) != "auto"}
        if self.crop_px is not None:
            kw["crop_px"] = self.crop_px
        return kw


def detector_spec(components, st: DetectSettings) -> tuple[type, dict]:
    """The chosen landmark detector class and the options to build it with."""
    classes = components.all("landmark_detector")
    if not classes:
        raise StageError("no landmark detector plugin is loaded", hint="`reconstruct plugins` lists what is loaded")
    name = st.detector
    if name is None:
        name = max(classes, key=lambda n: getattr(classes[n], "priority", 0))
    return components.get("landmark_detector", name), st.detector_kwargs()


def _build_detector(cls: type, kwargs: dict):
    try:
        return cls(**kwargs)
    except TypeError:
        log.warning("detector %s takes no options; ignoring %s", getattr(cls, "name", cls), sorted(kwargs))
        return cls()


@dataclass(frozen=True, slots=True)
class DetectRun:
    """A run of consecutive frame sets of one view to detect on (picklable work item): session folder, camera,
    the image file of each frame set (None: the camera has no frame there), the detector class and the options it
    is built with (sorted items), and the tracking mode (``detect.track``, see :func:`detect_run`)."""

    root: str
    camera: str
    files: tuple
    detector: type
    kwargs: tuple
    track: str = "off"


def detect_run(job: DetectRun, res) -> list:
    """One run of a view -> the detector's result per file (None: no frame or no face). Each worker builds the
    detector once (``res``, its per-run cache). With ``job.track`` other than ``off`` (and a detector that can
    track: ``track(image, previous, score, recentre)`` and ``detect_scored(image)``), only the
    run's first frame, a frame after one without a face, and a frame where tracking is lost get the full
    detection (face box + two passes); the others are found from the previous frame's landmarks. Each result is
    ``(points, confidence, tracked)``."""
    det = res.get(("landmark-detector", job.detector, job.kwargs), lambda: _build_detector(job.detector,
                                                                                          dict(job.kwargs)))
    tracks = job.track != "off" and all(callable(getattr(det, m, None)) for m in ("track", "detect_scored"))
    session = res.session(job.root)
    out: list = []
    prev = score = None
    for file in job.files:
        if file is None:
            out.append(None)
            prev = None
            continue
        img = session.read_image(job.camera, file)
        got = det.track(img, prev, score, recentre=job.track == "box") if tracks and prev is not None else None
        if got is not None:
            out.append((*got, True))
            prev = got[0]
            continue
        if tracks:
            full = det.detect_scored(img)
            got, score = (None, None) if full is None else (full[:2], full[2])
        else:
            got = det.detect(img)
        out.append(None if got is None else (*got, False))
        prev = None if got is None else got[0]
    return out


class DetectStage:
    """Landmarks per frame set and camera (see module docstring)."""

    name = "detect"
    requires: tuple[str, ...] = ("sync",)
    version = "1"
    Settings = DetectSettings

    def fingerprint(self, ctx: StageContext):
        s = ctx.session
        return {"frames": s.frames_digest()}

    def run(self, ctx: StageContext, out: Path) -> None:
        s = ctx.session
        st = ctx.settings[self.name]
        det_cls, det_kwargs = detector_spec(ctx.components, st)
        kwargs = tuple(sorted(det_kwargs.items()))
        cams = list(s.rig.camera_names)
        framesets = s.read_sync()[:: st.step]
        if not framesets:
            raise StageError("sync.csv has no frame sets", hint="rerun the sync stage; are there frames in cams/?")
        T, C = len(framesets), len(cams)
        points = confidence = None
        found = np.zeros((T, C), bool)
        missing: dict[str, list[int]] = {c: [] for c in cams}
        no_face: dict[str, list[int]] = {c: [] for c in cams}
        files: dict[str, list] = {c: [] for c in cams}
        for fs in framesets:
            for cam in cams:
                rec = s.frame_record(cam, fs.indices.get(cam))
                ok = rec is not None and rec.status == "ok"
                files[cam].append(rec.file if ok else None)
                if not ok:
                    missing[cam].append(fs.frame)
        # per run of a view's frame sets (one frame set each without tracking), through the run's executor (in
        # process, --jobs processes, or Ray tasks over chunks)
        run = st.track_run if st.track != "off" else 1
        jobs, where = [], []
        for k, cam in enumerate(cams):
            for a in range(0, T, run):
                if any(f is not None for f in files[cam][a:a + run]):
                    jobs.append(DetectRun(str(s.root), cam, tuple(files[cam][a:a + run]), det_cls, kwargs, st.track))
                    where.append((a, k))
        results = ctx.executor.map(detect_run, jobs, ctx.progress, "detect landmarks", resources=True)
        tracked = np.zeros((T, C), bool)
        for (a, k), got in zip(where, results):
            for i, r in enumerate(got, start=a):
                if r is None:
                    if files[cams[k]][i] is not None:
                        no_face[cams[k]].append(framesets[i].frame)
                    continue
                pts, conf, tracked[i, k] = r
                if points is None:
                    n = pts.shape[0]
                    points = np.full((T, C, n, 2), np.nan, np.float32)
                    confidence = np.zeros((T, C, n), np.float32)
                points[i, k], confidence[i, k], found[i, k] = pts, conf, True
        for c in cams:
            no_face[c].sort()
        if points is None:
            raise StageError(f"no face was found in any of the {T} frame sets by any camera ({', '.join(cams)})",
                             hint="check the frames (exposure, framing); a face smaller than ~7% of the image needs "
                                  "a face box detector: --option detect.yunet=PATH")
        frames = np.array([fs.frame for fs in framesets], np.int32)
        Detections(frames, tuple(cams), points, confidence, found, det_cls.scheme, det_cls.name,
                   detector_options=det_kwargs).save(out / DETECTIONS_FILE)
        report = {"detector": det_cls.name, "scheme": det_cls.scheme, "frame_sets": T,
                  "cameras": {c: {"faces": int(found[:, k].sum()), "tracked": int(tracked[:, k].sum()),
                                  "no_face": no_face[c], "no_frame": missing[c]} for k, c in enumerate(cams)},
                  "frames_without_any_face": [int(f) for f, row in zip(frames, found) if not row.any()]}
        atomic_write_json(out / "report.json", report)
        for k, c in enumerate(cams):
            if no_face[c]:
                log.warning("detect: no face in camera %s for %d frame(s): %s", c, len(no_face[c]),
                            _short(no_face[c]))
            if missing[c]:
                log.warning("detect: camera %s has no frame in %d frame set(s): %s", c, len(missing[c]),
                            _short(missing[c]))
        log.info("detect: %d frame sets x %d cameras, faces found in %d views (%d tracked from the frame before)",
                 T, C, int(found.sum()), int(tracked.sum()))


def _short(frames: list[int], n: int = 12) -> str:
    return ", ".join(str(f) for f in frames[:n]) + (f" ... (+{len(frames) - n})" if len(frames) > n else "")


@hookimpl
def register_stages():
    return [DetectStage()]
