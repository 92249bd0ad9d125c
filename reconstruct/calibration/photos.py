"""Calibration photos (board pictures taken with each camera) into a session's ``calib/<camera>/``.

``capture import`` is the command line of this module. What it stores per photo (the frames.csv format of
:mod:`reconstruct.session.frames`; photos carry no clock of the rig):

* ``index``: the view. Rows with the same index in different cameras are *simultaneous* (the board did not move
  between them); that is what ties the cameras together. ``match="name"``: the last number in the file name
  (``left07.jpg`` -> 7), so the photos of one view stay paired when a camera missed one; ``"order"``: the
  position among the camera's photos sorted by name in natural order (``img2`` before ``img10``); ``"auto"``
  (default): by name when every photo of every camera has a number, unique within its camera, else by order;
  ``"none"``: the cameras' photos were not taken together (each camera calibrated on its own: ``reconstruct
  calibrate --intrinsics-only``): every camera gets its own range of indices, so no view pairs with another
  camera's, now or after shared views are added. With ``append``, indices start after the largest index already in ``calib/`` (any camera), so new views never
  pair with old ones: import all cameras of one capture in one call.
* ``t_capture_ns`` = 0, ``tick`` = -1, ``timecode`` empty, ``exposure_us`` = 0: unknown (calibration reads only
  the index and the file).
* ``file``: ``NNNNNN.png`` (the index, zero-padded): the photo decoded and stored losslessly, grey for IR cameras.
  Photos that are already in ``calib/<camera>/`` are indexed where they are, under their own names.
* ``note``: ``photo <absolute path of the source>``.

EXIF orientation is ignored: a camera is calibrated in its sensor's pixel grid, and every photo must have the
rig's resolution for its camera. Everything is checked before anything is written; images are written before
frames.csv, which is replaced atomically, so an interrupted import leaves the previous frames.csv.
"""

from __future__ import annotations

import glob
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Mapping, Sequence

import numpy as np

from ..errors import CalibrationError, SessionError
from ..rig import Rig
from ..session import FrameRecord

log = logging.getLogger(__name__)

#: file types taken from a folder or a glob (what OpenCV and Pillow both read)
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")
Match = Literal["auto", "name", "order", "none"]


@dataclass(frozen=True, slots=True)
class PlannedPhoto:
    """One photo of an import.

    Attributes:
        index: view index (frames.csv ``index``).
        source: the photo, absolute path.
        file: its name in ``calib/<camera>/``.
        in_place: the photo is already there (indexed, not copied).
    """

    index: int
    source: Path
    file: str
    in_place: bool


@dataclass(frozen=True, slots=True)
class PhotoImport:
    """An import, checked: ``match`` used (``"name"``, ``"order"`` or ``"none"``), camera -> its photos by index,
    and ``shared``: ``"a-b"`` -> number of views cameras a and b both have (views that tie them together)."""

    match: Literal["name", "order", "none"]
    photos: Mapping[str, tuple[PlannedPhoto, ...]]
    shared: Mapping[str, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "photos", MappingProxyType(dict(self.photos)))
        object.__setattr__(self, "shared", MappingProxyType(dict(self.shared)))


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def find_photos(spec: str | Path) -> list[Path]:
    """The photos ``spec`` names, in natural order: a folder (its image files), one file, or a glob pattern
    (``photos/left*.jpg``; quote it so the shell passes it unexpanded)."""
    p = Path(spec).expanduser()
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in PHOTO_SUFFIXES]
    elif p.is_file():
        files = [p]
    else:
        files = [Path(f) for f in glob.glob(str(p)) if Path(f).is_file() and Path(f).suffix.lower() in PHOTO_SUFFIXES]
    if not files:
        raise CalibrationError(f"no photos found at {spec}",
                               hint="give a folder of board photos or a quoted glob such as 'photos/left*.jpg' "
                                    f"({', '.join(PHOTO_SUFFIXES)})")
    return sorted({f.resolve() for f in files}, key=_natural_key)


def _number(p: Path) -> int | None:
    nums = re.findall(r"\d+", p.stem)
    return int(nums[-1]) if nums else None


def _by_name(photos: Sequence[Path]) -> tuple[list[int] | None, str]:
    """Indices from the file names, or None and why they cannot be used."""
    nums = [_number(p) for p in photos]
    if any(n is None for n in nums):
        return None, f"{next(p.name for p, n in zip(photos, nums) if n is None)} has no number in its name"
    seen: dict[int, Path] = {}
    for p, n in zip(photos, nums):
        if n in seen:
            return None, f"{seen[n].name} and {p.name} have the same number {n}"
        seen[n] = p
    return [int(n) for n in nums], ""


def _photo_size(path: Path) -> tuple[int, int]:
    """(width, height) of a photo from its header (no EXIF rotation: the sensor's grid)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (UnidentifiedImageError, OSError) as exc:
        raise CalibrationError(f"{path}: not an image this tool can read ({exc})",
                               hint="remove it from the import, or convert it to PNG or JPEG") from exc


def plan_photo_import(rig: Rig, sources: Mapping[str, Sequence[Path]], match: Match = "auto",
                      first_index: int = 0, calib_dirs: Mapping[str, Path] | None = None,
                      listed: Mapping[str, set[str]] | None = None) -> PhotoImport:
    """Check an import without writing anything: camera names, photo sizes against the rig, the view indices.

    Args:
        rig: the session's rig.
        sources: camera -> its photos (see :func:`find_photos`).
        match: how photos of different cameras are paired (module docstring).
        first_index: added to every index (``append``).
        calib_dirs: camera -> its ``calib/<camera>/`` folder (photos inside it are indexed in place; a file there
            that the import would overwrite is an error).
        listed: camera -> file names its frames.csv already lists (in-place photos listed there are skipped).
    """
    if not sources:
        raise CalibrationError("no photos to import", hint="give CAMERA=PHOTOS for at least one camera")
    if match not in ("auto", "name", "order", "none"):
        raise CalibrationError(f"unknown match {match!r}; expected auto, name, order or none")
    for cam in sources:
        rig.camera(cam)  # unknown names: an error listing the rig's cameras
    named: dict[str, list[int] | None] = {}
    why = ""
    for cam, photos in sources.items():
        named[cam], reason = _by_name(photos)
        why = why or (f"camera {cam!r}: {reason}" if reason else "")
    if match == "name" and why:
        raise CalibrationError(f"cannot pair the photos by the numbers in their names: {why}",
                               hint="rename them (one number per view, the same in every camera) or use --match order")
    used: Literal["name", "order", "none"] = \
        match if match in ("name", "none") else "name" if match == "auto" and not why else "order"
    calib_dirs = {c: Path(d).resolve() for c, d in (calib_dirs or {}).items()}
    listed = listed or {}
    plans: dict[str, tuple[PlannedPhoto, ...]] = {}
    start = 0  # "none": the next camera's first index
    for cam, photos in sources.items():
        want = tuple(rig.camera(cam).resolution)
        for p in photos:
            size = _photo_size(p)
            if size != want:
                raise CalibrationError(
                    f"camera {cam!r}: {p} is {size[0]}x{size[1]} pixels but the rig says the camera records at "
                    f"{want[0]}x{want[1]}",
                    hint="import photos taken at the camera's recording resolution (a calibration holds only for "
                         "the resolution it was made at), or fix the camera's resolution in the rig file")
        idx = named[cam] if used == "name" else list(range(start, start + len(photos)))
        if used == "none":
            start += len(photos)
        dest = calib_dirs.get(cam)
        out = []
        for i, p in zip(idx, photos):
            in_place = dest is not None and p.parent == dest
            if in_place and p.name in listed.get(cam, set()):
                continue
            name = p.name if in_place else f"{first_index + i:06d}.png"
            if not in_place and dest is not None and (dest / name).exists():
                raise CalibrationError(
                    f"camera {cam!r}: {dest / name} exists and frames.csv does not list it (left by an interrupted "
                    "import?)", hint="move it away or delete it, then import again; nothing was written")
            out.append(PlannedPhoto(index=first_index + i, source=p, file=name, in_place=in_place))
        if not out:
            raise CalibrationError(f"camera {cam!r}: every photo given is already listed in its frames.csv",
                                   hint="nothing to import")
        plans[cam] = tuple(sorted(out, key=lambda x: x.index))
    cams = list(plans)
    shared = {f"{a}-{b}": len({x.index for x in plans[a]} & {x.index for x in plans[b]})
              for i, a in enumerate(cams) for b in cams[i + 1:]}
    return PhotoImport(match=used, photos=plans, shared=shared)


def _read_photo(path: Path, channels: int) -> np.ndarray:
    """A photo as RGB (H, W, 3) or grey (H, W), uint8 or uint16, in the sensor's orientation."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # UNCHANGED: no EXIF rotation, 16-bit kept
    if img is None:
        raise CalibrationError(f"{path}: cannot decode the image", hint="remove it from the import or re-export it")
    if img.dtype not in (np.uint8, np.uint16):
        raise CalibrationError(f"{path}: {img.dtype} pixels; calibration photos must be 8- or 16-bit",
                               hint="export the photos as 8- or 16-bit PNG, TIFF or JPEG")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        if channels == 1:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return img


def import_calibration_photos(session, sources: Mapping[str, Sequence[Path]], match: Match = "auto",
                              append: bool = False) -> PhotoImport:
    """Store board photos as calibration views of ``session`` (``calib/<camera>/`` + frames.csv); returns what
    was imported. ``sources``: camera -> photos (:func:`find_photos`).

    A camera that already has calibration views is refused unless ``append`` (nothing recorded is replaced).
    """
    rig = session.rig
    existing = {c: session.frames(c, kind="calib") for c in rig.camera_names}
    has = {c: len(existing[c]) for c in sources if c in existing and existing[c]}
    if has and not append:
        raise SessionError(
            f"{session.root} already has calibration views for "
            + ", ".join(f"{c!r} ({n} frames)" for c, n in has.items()),
            hint="add --append to add these photos as new views (they will not pair with the old ones), or import "
                 "into a new session; nothing was changed")
    first = 1 + max((r.index for rows in existing.values() for r in rows), default=-1) if append else 0
    plan = plan_photo_import(rig, sources, match, first_index=first,
                             calib_dirs={c: session.camera_dir(c, kind="calib") for c in sources},
                             listed={c: {r.file for r in existing.get(c, [])} for c in sources})
    for cam, photos in plan.photos.items():
        ch = rig.camera(cam).channels
        rows = []
        for p in photos:
            if not p.in_place:
                session.write_image(cam, p.file, _read_photo(p.source, ch), kind="calib")
            rows.append(FrameRecord(index=p.index, t_capture_ns=0, tick=-1, file=p.file, note=f"photo {p.source}"))
        session.write_frames(cam, [*(existing[cam] if append else []), *rows], kind="calib")
        log.info("camera %s: %d photo(s) imported into calib/ as views %d-%d", cam, len(rows), rows[0].index,
                 rows[-1].index)
    return plan
