"""The digital_human method's caches kept across takes: the young stills' fits and asset, keyed by the stills'
content, the face model (:func:`model_digest`) and the settings, in :func:`shared_cache_dir`."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Mapping

from reconstruct.methods import MethodContext

__all__ = ["model_digest", "shared_cache_dir", "find_cached", "share_cached", "asset_name", "fits_name"]

log = logging.getLogger(__name__)


def model_digest(ctx: MethodContext, name: str | None = None) -> str | None:
    """The fitted face model's source digest (its stored file and converter): part of every cache key, so a model
    re-imported under the same name, or a new converter, never reuses fits made with the old one. ``name``: the
    model's registered name (default: the take's fitted one)."""
    if name is None and ctx.fits is None:
        return None
    try:
        src = ctx.components.get("face_model", name or ctx.fits.model_name)
    except Exception:  # an unregistered model fails later, with its own message
        return None
    digest = getattr(src, "digest", None)
    return digest() if callable(digest) else None


def shared_cache_dir() -> Path:
    """Where the fits of the young stills are kept for every take (``$DEAGE_METHOD_CACHE_DIR``, default
    ``$DEAGE_CACHE_DIR/digital_human`` = ``~/.cache/deage/digital_human``): they are keyed by the stills' content,
    the model and the settings, so a second take of the same actor loads them instead of fitting the stills again."""
    import os

    from reconstruct.face.store import cache_dir

    env = os.environ.get("DEAGE_METHOD_CACHE_DIR")
    return Path(env).expanduser() if env else cache_dir() / "digital_human"


def find_cached(work_dir: Path, name: str) -> Path | None:
    """``work_dir / name`` if it is there, else the same file in :func:`shared_cache_dir`, else None."""
    for folder in (Path(work_dir), shared_cache_dir()):
        if (folder / name).is_file():
            return folder / name
    return None


def share_cached(path: Path) -> None:
    """Copy a content-keyed cache file into :func:`shared_cache_dir` (atomically; a folder that cannot be written
    only costs the next take the fit, with a warning)."""
    import shutil

    from reconstruct.session import atomic_path

    dst = shared_cache_dir() / Path(path).name
    if dst.exists():
        return
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dst, suffix=Path(path).suffix) as tmp:
            shutil.copyfile(path, tmp)
    except OSError as exc:
        log.warning("digital_human: could not keep %s for other takes in %s (%s); set DEAGE_CACHE_DIR to a "
                    "writable folder", Path(path).name, dst.parent, exc)


def asset_name(st: Mapping[str, Any]) -> str:
    """The young asset's cache file name for :meth:`DigitalHumanMethod.settings` ``st``."""
    return f"young-{hashlib.sha256(json.dumps(st, sort_keys=True).encode()).hexdigest()[:16]}.npz"


def fits_name(st: Any, who: str, source: str, model: str, digest: str | None, calibrated: bool) -> str:
    """The cache file name of ``who``'s per-still identity fits (:meth:`DigitalHumanMethod._fit_plan`; ``st``: the
    method's ``DigitalHumanSettings``)."""
    from reconstruct.hashing import json_digest

    key = json_digest({"who": who, "source": source, "model": model, "model_digest": digest,
                       "modes": st.shape_modes, "detector": st.detector, "calibrated": calibrated, "version": 3})
    return f"{who}-{key}.npy"
