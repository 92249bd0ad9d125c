"""Where the image-space methods get face landmarks: the session's fit (preferred) or a landmark detector.

* From the fit: the face model's iBUG-68 correspondence (``LandmarkMap``) evaluated on the frame's fitted world
  vertices and projected through the calibrated hero camera (OpenCV convention) -> (68, 2) plate pixels.
* From a detector: the highest-priority registered ``landmark_detector`` (MediaPipe 478 points when built in).
* From a sidecar ``points.json`` in an image folder: ``{"file.png": [[x, y], ...], ...}`` (5, 68 or 478 points).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import MethodError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v")


def fit_landmarks(components, fit, camera, model_name: str) -> np.ndarray:
    """(68, 2) iBUG landmarks of a frame's fit in the camera's pixels."""
    if fit is None or camera is None:
        raise MethodError("this frame has no fit or no calibrated hero camera, so the face cannot be located",
                          hint="run the calibrate, detect and fit stages first (`reconstruct run SESSION`)")
    model = components.face_model(model_name)  # loaded once per registry
    pts3 = model.landmark_map("ibug68").points(np.asarray(fit.vertices, np.float64), model.triangles)
    uv = camera.project(pts3)
    if not np.isfinite(uv).all():
        raise MethodError(f"frame {fit.frame}: fitted landmarks project behind the hero camera",
                          hint="check the calibration and the fit (reconstruct report)")
    return uv


def detector(components):
    """The highest-priority available landmark detector (instantiated), or a clear error."""
    dets = components.all("landmark_detector")
    if not dets:
        raise MethodError("no landmark detector is registered to find faces in the reference images",
                          hint="enable the built-in `landmarks` plugin, or put a points.json beside the images")
    cls = max(dets.values(), key=lambda c: getattr(c, "priority", 0))
    return cls() if isinstance(cls, type) else cls


def detect_points(det, image: np.ndarray, where: str) -> np.ndarray | None:
    res = det.detect(image)
    if res is None:
        log.info("no face found in %s; skipped", where)
        return None
    return np.asarray(res[0], np.float64)[:, :2]


def iter_folder_faces(folder: Path, components=None, every: int = 1) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (name, RGB uint8 image, landmarks) for the stills and videos in ``folder``.

    Landmarks come from ``folder/points.json`` when present (keys: file names, or ``"video.mp4:FRAME"``), else from
    the registered detector; images without a face are skipped. Videos are read every ``every``-th frame.
    """
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise MethodError(f"reference folder {folder} does not exist", hint="give a folder of stills or videos")
    sidecar = folder / "points.json"
    known = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    det = None
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    if not files:
        raise MethodError(f"{folder} holds no images or videos", hint=f"use {', '.join(IMAGE_SUFFIXES)} or videos")

    def points(key: str, img: np.ndarray) -> np.ndarray | None:
        nonlocal det
        if key in known:
            return np.asarray(known[key], np.float64)
        if det is None:
            if components is None:
                raise MethodError(f"{key} has no entry in {sidecar} and no landmark detector is available")
            det = detector(components)
        return detect_points(det, img, str(folder / key))

    for f in files:
        if f.suffix.lower() in IMAGE_SUFFIXES:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise MethodError(f"cannot read {f}", hint="remove it or convert it to PNG/JPEG")
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            p = points(f.name, img)
            if p is not None:
                yield f.name, img, p
            continue
        cap = cv2.VideoCapture(str(f))
        if not cap.isOpened():
            raise MethodError(f"cannot open video {f}", hint="convert it to MP4 (H.264) or extract PNG frames")
        try:
            k = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                if k % max(1, every) == 0:
                    img = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    p = points(f"{f.name}:{k}", img)
                    if p is not None:
                        yield f"{f.name}:{k}", img, p
                k += 1
        finally:
            cap.release()


def iter_session_faces(session, components, fits, cameras, every: int = 1):
    """Yield (frame number, hero plate RGB uint8, (68, 2) landmarks) for every ``every``-th fitted output frame."""
    if fits is None:
        raise MethodError(f"{session.root} has no fit (out/fit/fits.npz)",
                          hint="run the pipeline up to the fit stage first: `reconstruct run SESSION`")
    hero = session.rig.hero.name
    cam = cameras.get(hero)
    rows = {int(f): i for i, f in enumerate(fits.frames)}
    for n, fs in enumerate(session.read_sync()):
        if n % max(1, every) or fs.frame not in rows:
            continue
        fit = fits.frame(rows[fs.frame])
        if not fit.valid:
            continue
        plate = session.frame_images(fs, [hero], ok_only=False)[hero]
        if plate is None:
            continue
        if plate.ndim == 2:
            plate = np.repeat(plate[..., None], 3, axis=2)
        yield fs.frame, plate, fit_landmarks(components, fit, cam, fits.model_name)
