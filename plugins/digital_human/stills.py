"""The digital_human method's stills: the young reference stills (folder, cameras) and the few plates of the take
whose per-still fits the plate mode compares with them (their landmarks taken from the detect stage when it found
them the same way)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from reconstruct.camera import CameraModel
from reconstruct.errors import MethodError
from reconstruct.methods import MethodContext

__all__ = ["IMAGE_SUFFIXES", "read_young_refs", "still_camera", "plate_stills", "plate_frames",
           "detected_plate_landmarks", "files_digest"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def files_digest(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def read_young_refs(folder: Path) -> list[tuple[str, np.ndarray, CameraModel]]:
    """(file name, RGB uint8 image, camera) per still of a young-reference folder."""
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise MethodError(f"young reference folder {folder} does not exist",
                          hint="pass --young-refs DIR with stills of the actor when young")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MethodError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})",
                          hint="put a few sharp stills of the young actor there (frontal and 3/4 views)")
    cams_json = {}
    if (folder / "cameras.json").exists():
        try:
            cams_json = json.loads((folder / "cameras.json").read_text())
        except ValueError as exc:
            raise MethodError(f"{folder / 'cameras.json'} is not valid JSON: {exc}") from exc
    out = []
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise MethodError(f"cannot read young reference still {p}", hint="is it a valid image file?")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        spec = cams_json.get(p.name, cams_json.get("default"))
        if spec is not None:
            cam = CameraModel(name=p.name, K=np.asarray(spec["K"], float),
                              dist=np.asarray(spec.get("dist", np.zeros(5)), float), image_size=(w, h))
        else:
            cam = still_camera(p.name, w, h)
        out.append((p.name, img, cam))
    return out


def still_camera(name: str, w: int, h: int) -> CameraModel:
    """The camera assumed for a still without ``cameras.json``: focal length 1.2 x the longer side, principal point
    at the centre, no distortion."""
    f = 1.2 * max(w, h)
    return CameraModel(name=name, K=np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]]),
                       dist=np.zeros(5), image_size=(w, h))


def plate_stills(ctx: MethodContext, n: int = 6, calibrated: bool = False,
                 images: bool = True) -> list[tuple[str, np.ndarray | None, CameraModel]]:
    """``n`` hero plates spread over the take's validly fitted frames, as stills: the performer today, seen the way
    the young stills are seen -- through the calibrated hero camera when the young stills' cameras are known
    (``calibrated``), else through the same assumed camera as young stills without ``cameras.json``.
    ``images=False``: a still seen through the calibrated camera comes without its image (None; for a caller that
    has its landmarks already), the others are read (their camera needs the image's size)."""
    hero = ctx.session.rig.hero.name
    sync = {fs.frame: fs for fs in ctx.session.read_sync()}
    out = []
    for f in plate_frames(ctx, n):
        cam = ctx.cameras.get(hero) if calibrated else None
        if not images and cam is not None:
            rec = ctx.session.frame_record(hero, sync[f].indices.get(hero)) if f in sync else None
            if rec is not None and rec.status == "ok":  # the frames frame_images() reads
                out.append((f"plate-{f:06d}", None, cam))
            continue
        img = ctx.session.frame_images(sync[f], [hero])[hero] if f in sync else None
        if img is None:
            continue
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append((f"plate-{f:06d}", img, cam if cam is not None else
                    still_camera(f"plate-{f:06d}", img.shape[1], img.shape[0])))
    return out


def plate_frames(ctx: MethodContext, n: int = 6) -> list[int]:
    """The output frames of :func:`plate_stills`: ``n`` spread over the take's validly fitted frames."""
    fits = ctx.fits
    valid = [int(f) for f, ok in zip(fits.frames, fits.valid) if ok]
    return [valid[i] for i in np.unique(np.linspace(0, len(valid) - 1, min(n, len(valid))).round().astype(int))]


def detected_plate_landmarks(ctx: MethodContext, stills, detector: type) -> list | None:
    """What ``detector`` finds on the plate stills (:func:`plate_stills`), taken from the detect stage's result
    instead of running it again: per still ``(points, confidence)`` or None (no face). The detect stage ran the
    same detector on the same hero images, in static-image mode, and its result records how that detector was
    built (``Detections.detector_options``): built as this method builds it (no options: :func:`.young.
    pick_detector`), it found the same numbers (tests/methods/test_plate_landmarks.py). None when that is not so
    (another detector, other options, a result from before the options were recorded, a plate the stage did not
    look at): the caller detects."""
    from reconstruct.artifacts import Detections
    from reconstruct.artifacts.detections import FILE

    path = ctx.session.stage_dir("detect") / FILE
    if not path.is_file():
        return None
    det = Detections.load(path)
    k = det.camera_index(ctx.session.rig.hero.name)
    if k is None or det.detector != detector.name or det.scheme != detector.scheme or det.detector_options != {}:
        return None
    out = []
    for name, _, _ in stills:
        row = det.row(int(name.split("-")[-1]))
        if row is None:  # detect.step skipped it
            return None
        out.append((det.points[row, k], det.confidence[row, k]) if det.found[row, k] else None)
    return out
