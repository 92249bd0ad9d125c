"""Built-in plugin ``detect``: 2D face landmarks for every frame set and camera.

Output ``out/detect/``:

* ``landmarks.npz``: ``frames`` (T,) int32 output frame numbers (rows of sync.csv), ``cameras`` (C,) names,
  ``points`` (T, C, N, 2) float32 distorted pixel coordinates (NaN where nothing was detected or the camera had no
  frame), ``confidence`` (T, C, N) float32, ``found`` (T, C) bool, ``scheme`` and ``detector`` names;
* ``report.json``: per camera the number of frames with a face, and the frames where none was found or the camera
  had no frame in the set.

Options (``--option detect.KEY=VALUE``): ``detector`` (registered name; default: highest priority),
``yunet`` (YuNet ONNX path for the face box, or ``none``), ``haar`` (Haar cascade XML path, or ``none``),
``crop_px`` (face crop side handed to the detector), ``step`` (detect every n-th frame set only).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from reconstruct import hookimpl
from reconstruct.engine import StageContext, file_digest, stage_options
from reconstruct.errors import StageError
from reconstruct.session import atomic_path, atomic_write_json

log = logging.getLogger(__name__)

OPTIONS = {"detector": str, "yunet": str, "haar": str, "crop_px": int, "step": int}


def detect_options(raw) -> dict:
    """``--option detect.KEY=VALUE`` entries, cast (see docs/fitting.md for each key)."""
    return stage_options(raw, "detect", OPTIONS)


def detector_spec(ctx: StageContext, opts: dict) -> tuple[type, dict]:
    """The chosen landmark detector class and the options to build it with."""
    classes = ctx.components.all("landmark_detector")
    if not classes:
        raise StageError("no landmark detector plugin is loaded", hint="`reconstruct plugins` lists what is loaded")
    name = opts.get("detector")
    if name is None:
        name = max(classes, key=lambda n: getattr(classes[n], "priority", 0))
    return ctx.components.get("landmark_detector", name), {k: opts[k] for k in ("yunet", "haar", "crop_px") if k in opts}


def _build_detector(cls: type, kwargs: dict):
    try:
        return cls(**kwargs)
    except TypeError:
        log.warning("detector %s takes no options; ignoring %s", getattr(cls, "name", cls), sorted(kwargs))
        return cls()


def make_detector(ctx: StageContext, opts: dict):
    """Instantiate the chosen landmark detector class with the options it accepts."""
    return _build_detector(*detector_spec(ctx, opts))


_DETECTORS: dict = {}  # per process (this one, a --jobs worker or a Ray worker): detectors built once
_SESSIONS: dict = {}


def detect_view(job: tuple) -> tuple[np.ndarray, np.ndarray] | None:
    """One view: ``(session root, camera, image file, detector class, options)`` -> the detector's result.
    Module-level so that ``ctx.executor.map`` can ship it to process-pool or Ray workers."""
    from reconstruct.session import Session

    root, cam, file, cls, kwargs = job
    key = (cls, tuple(sorted(kwargs.items())))
    if key not in _DETECTORS:
        _DETECTORS[key] = _build_detector(cls, kwargs)
    if root not in _SESSIONS:
        _SESSIONS[root] = Session.open(root)
    return _DETECTORS[key].detect(_SESSIONS[root].read_image(cam, file))


def _close_detectors() -> None:
    for det in _DETECTORS.values():
        if hasattr(det, "close"):
            det.close()
    _DETECTORS.clear()
    _SESSIONS.clear()


class DetectStage:
    """Landmarks per frame set and camera (see module docstring)."""

    name = "detect"
    requires: tuple[str, ...] = ("sync",)
    version = "1"

    def fingerprint(self, ctx: StageContext):
        s = ctx.session
        return {"options": detect_options(ctx.config.options),
                "frames": file_digest(s.camera_dir(c) / "frames.csv" for c in s.rig.camera_names)}

    def run(self, ctx: StageContext, out: Path) -> None:
        s = ctx.session
        opts = detect_options(ctx.config.options)
        det_cls, det_kwargs = detector_spec(ctx, opts)
        cams = list(s.rig.camera_names)
        framesets = s.read_sync()[:: max(1, opts.get("step", 1))]
        if not framesets:
            raise StageError("sync.csv has no frame sets", hint="rerun the sync stage; are there frames in cams/?")
        records = {c: {r.index: r for r in s.frames(c)} for c in cams}
        T, C = len(framesets), len(cams)
        points = confidence = None
        found = np.zeros((T, C), bool)
        missing: dict[str, list[int]] = {c: [] for c in cams}
        no_face: dict[str, list[int]] = {c: [] for c in cams}
        jobs, where = [], []
        for i, fs in enumerate(framesets):
            for k, cam in enumerate(cams):
                idx = fs.indices.get(cam)
                rec = records[cam].get(idx) if idx is not None else None
                if rec is None or rec.status != "ok":
                    missing[cam].append(fs.frame)
                    continue
                jobs.append((str(s.root), cam, rec.file, det_cls, det_kwargs))
                where.append((i, k))
        # per view, through the run's executor (in process, --jobs processes, or Ray tasks over chunks)
        try:
            results = ctx.executor.map(detect_view, jobs, ctx.progress, "detect landmarks")
        finally:
            _close_detectors()
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
        with atomic_path(out / "landmarks.npz", suffix=".npz") as tmp:
            np.savez_compressed(tmp, frames=frames, cameras=np.array(cams, dtype=str), points=points,
                                confidence=confidence, found=found, scheme=np.array(det_cls.scheme),
                                detector=np.array(det_cls.name))
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


def load_detections(path: Path) -> dict:
    """Read ``out/detect/landmarks.npz`` into a dict of arrays (see module docstring)."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path} does not exist", hint="run the detect stage first")
    with np.load(path, allow_pickle=False) as d:
        return {"frames": d["frames"], "cameras": tuple(str(c) for c in d["cameras"]), "points": d["points"],
                "confidence": d["confidence"], "found": d["found"], "scheme": str(d["scheme"]),
                "detector": str(d["detector"])}


@hookimpl
def register_stages():
    return [DetectStage()]
