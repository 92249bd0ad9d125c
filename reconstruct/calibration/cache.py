"""Rig calibrations kept across takes: the takes of one rig session carry the same calibration images (copied or
imported into every take's ``calib/``), and the calibrate stage of the second take loads the first one's solution
instead of detecting the board and solving the rig again.

An entry is ``calibration-<key>.json`` in :func:`cache_dir`, the calibration.json a fresh solve wrote (the same
bytes). The key (:func:`calibration_key`) is a sha256 over everything the solution is computed from: every
calibration image's content (sha256 of its bytes) with its camera and view index, the board, the rig's cameras
and resolutions, the solver settings, and the solver itself (the source of :mod:`reconstruct.calibration` and of the
lens and least-squares modules it uses, the OpenCV, NumPy and SciPy versions). File names and modification times
are not in it: a copied take hits. A damaged entry is ignored (and replaced by the next solve) with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence

log = logging.getLogger(__name__)

#: bump when the meaning of an entry changes (what the key covers, what the entry holds)
CACHE_VERSION = 1

#: the modules whose source is part of the key (beside every module of this package)
_SOLVER_MODULES = ("lens.py", "lsq.py", "camera.py", "rig.py")

_source_digest: str | None = None


def cache_dir() -> Path | None:
    """Where solved calibrations are kept for other takes: ``$DEAGE_CALIBRATION_CACHE_DIR`` (``off``: kept
    nowhere), default ``$DEAGE_CACHE_DIR/calibration`` (``~/.cache/deage/calibration``)."""
    env = os.environ.get("DEAGE_CALIBRATION_CACHE_DIR")
    if env is not None and env.strip():
        return None if env.strip().lower() == "off" else Path(env).expanduser()
    from ..face.store import cache_dir as base

    return base() / "calibration"


def solver_digest() -> str:
    """sha256 of the solver's code: the source of this package and of the modules it computes with, and the
    versions of the libraries that detect and solve (a changed solver never serves an old solution)."""
    global _source_digest
    if _source_digest is None:
        import cv2
        import numpy
        import scipy

        h = hashlib.sha256(f"{cv2.__version__}\0{numpy.__version__}\0{scipy.__version__}\0".encode())
        here = Path(__file__).resolve().parent
        files = sorted(here.glob("*.py")) + [here.parent / m for m in _SOLVER_MODULES]
        for p in files:
            h.update(f"{p.relative_to(here.parent)}\0".encode())
            h.update(p.read_bytes() if p.exists() else b"<missing>")
        _source_digest = h.hexdigest()
    return _source_digest


def calibration_key(images: Mapping[str, Sequence[tuple[int, Path]]], board, options,
                    sizes: Mapping[str, tuple[int, int]]) -> str:
    """The cache key of a rig calibration: ``images`` camera -> [(view index, image path)] (the images the
    calibration reads, in order), the board spec, the :class:`~.rig_solve.CalibrationOptions` and the rig's
    camera -> (width, height). Reads every image once (sha256 of its bytes: ~0.07 s for the bench take's 100 MB)."""
    h = hashlib.sha256()
    head = {"version": CACHE_VERSION, "solver": solver_digest(), "board": repr(board), "options": asdict(options),
            "sizes": {c: list(s) for c, s in sorted(sizes.items())}}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    from ..provenance import sha256_files  # on the usable cores' threads

    digests = iter(sha256_files(path for items in images.values() for _, path in items))
    for cam, items in images.items():
        h.update(f"\0camera {cam}\0".encode())
        for view, _ in items:
            h.update(f"{int(view)}:{next(digests)}\0".encode())
    return h.hexdigest()


def _entry(key: str) -> Path | None:
    d = cache_dir()
    return None if d is None else d / f"calibration-{key}.json"


def load(key: str) -> dict | None:
    """The calibration.json dict kept under ``key``, or None (no cache, no entry, or a damaged one: warned)."""
    from .result import RigCalibration

    path = _entry(key)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        RigCalibration.from_dict(data, str(path))  # validated like session/calibration.json
    except Exception as exc:  # a damaged entry costs a solve, never a wrong calibration
        log.warning("calibrate: ignoring the damaged cached calibration %s (%s); solving again", path, exc)
        return None
    return data


def store(key: str, data: dict) -> None:
    """Keep a freshly solved calibration.json dict under ``key`` (atomically; a folder that cannot be written only
    costs other takes the solve, with a warning)."""
    from ..session import atomic_write_json

    path = _entry(key)
    if path is None:
        return
    try:
        atomic_write_json(path, data)
    except OSError as exc:
        log.warning("calibrate: could not keep the calibration for other takes in %s (%s); set "
                    "DEAGE_CALIBRATION_CACHE_DIR to a writable folder (or to off)", path.parent, exc)


def session_key(session, options, step: int = 1) -> str | None:
    """:func:`calibration_key` of a session's ``calib/`` images (those :func:`~.rig_solve.calibrate_session` reads
    with ``step``) and its rig; None when no cache is kept or the images cannot be listed (the solve then says
    what is missing)."""
    from ..errors import CalibrationError
    from .rig_solve import calibration_records

    if cache_dir() is None:
        return None
    rig = session.rig
    try:
        records = calibration_records(session, list(rig.camera_names), step)
        images = {c: [(r.index, session.camera_dir(c, kind="calib") / r.file) for r in recs]
                  for c, recs in records.items()}
        return calibration_key(images, rig.board, options, {c.name: tuple(c.resolution) for c in rig.cameras})
    except (CalibrationError, OSError) as exc:
        log.debug("calibrate: no cache key (%s)", exc)
        return None
