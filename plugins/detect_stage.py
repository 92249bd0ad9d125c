"""Built-in plugin ``detect``: 2D face landmarks for every frame set and camera.

Output ``out/detect/``:

* ``landmarks.npz``: ``frames`` (T,) int32 output frame numbers (rows of sync.csv), ``cameras`` (C,) names,
  ``points`` (T, C, N, 2) float32 distorted pixel coordinates (NaN where nothing was detected or the camera had no
  frame), ``confidence`` (T, C, N) float32, ``found`` (T, C) bool, ``scheme`` and ``detector`` names;
* ``report.json``: per camera the number of frames with a face, and the frames where none was found or the camera
  had no frame in the set.

Options (``--option detect.KEY=VALUE``, :class:`DetectSettings`): ``detector`` (registered name; default: highest
priority), ``yunet`` (YuNet ONNX path for the face box, ``auto`` or ``none``), ``haar`` (Haar cascade XML path,
``auto`` or ``none``), ``crop_px`` (face crop side handed to the detector), ``step`` (detect every n-th frame set).
The result is a :class:`reconstruct.artifacts.Detections`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

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

    def __post_init__(self) -> None:
        if self.step < 1 or (self.crop_px is not None and self.crop_px < 16):
            raise ValueError("detect.step must be at least 1 and detect.crop_px at least 16")

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
class DetectView:
    """One view to detect on (picklable work item): session folder, camera, image file, detector class and the
    options it is built with (sorted items)."""

    root: str
    camera: str
    file: str
    detector: type
    kwargs: tuple


def detect_view(job: DetectView, res) -> tuple[np.ndarray, np.ndarray] | None:
    """One view -> the detector's result. Each worker builds the detector once (``res``, its per-run cache)."""
    det = res.get(("landmark-detector", job.detector, job.kwargs), lambda: _build_detector(job.detector,
                                                                                          dict(job.kwargs)))
    return det.detect(res.session(job.root).read_image(job.camera, job.file))


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
        jobs, where = [], []
        for i, fs in enumerate(framesets):
            for k, cam in enumerate(cams):
                rec = s.frame_record(cam, fs.indices.get(cam))
                if rec is None or rec.status != "ok":
                    missing[cam].append(fs.frame)
                    continue
                jobs.append(DetectView(str(s.root), cam, rec.file, det_cls, kwargs))
                where.append((i, k))
        # per view, through the run's executor (in process, --jobs processes, or Ray tasks over chunks)
        results = ctx.executor.map(detect_view, jobs, ctx.progress, "detect landmarks", resources=True)
        for (i, k), res in zip(where, results):
            if res is None:
                no_face[cams[k]].append(framesets[i].frame)
                continue
            pts, conf = res
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
                  "cameras": {c: {"faces": int(found[:, k].sum()), "no_face": no_face[c], "no_frame": missing[c]}
                              for k, c in enumerate(cams)},
                  "frames_without_any_face": [int(f) for f, row in zip(frames, found) if not row.any()]}
        atomic_write_json(out / "report.json", report)
        for k, c in enumerate(cams):
            if no_face[c]:
                log.warning("detect: no face in camera %s for %d frame(s): %s", c, len(no_face[c]),
                            _short(no_face[c]))
            if missing[c]:
                log.warning("detect: camera %s has no frame in %d frame set(s): %s", c, len(missing[c]),
                            _short(missing[c]))
        log.info("detect: %d frame sets x %d cameras, faces found in %d views", T, C, int(found.sum()))


def _short(frames: list[int], n: int = 12) -> str:
    return ", ".join(str(f) for f in frames[:n]) + (f" ... (+{len(frames) - n})" if len(frames) > n else "")


@hookimpl
def register_stages():
    return [DetectStage()]
