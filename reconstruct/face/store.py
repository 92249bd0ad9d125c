"""The user's face-model folder and model import (``reconstruct models import|list``).

Imported models are stored in the project's npz format (:func:`reconstruct.face.model.save_face_model`) as
``<models dir>/<name>.npz``; the models dir is ``$DEAGE_MODELS_DIR`` or ``~/.local/share/deage/models``. Models are
never downloaded: FLAME and BFM need a registration with their authors; import the file you were given.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from ..assets import ict_light_path, mediapipe_canonical_path
from ..errors import FaceModelError
from .model import FaceModel, load_face_model, save_face_model

log = logging.getLogger(__name__)
MODELS_DIR_ENV = "DEAGE_MODELS_DIR"
KINDS = ("ict", "flame", "bfm")


def models_dir() -> Path:
    """Where imported models live (``$DEAGE_MODELS_DIR``, default ``~/.local/share/deage/models``)."""
    env = os.environ.get(MODELS_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "deage" / "models"


def cache_dir() -> Path:
    """Where converted built-in models are cached (``$DEAGE_CACHE_DIR``, default ``~/.cache/deage``)."""
    env = os.environ.get("DEAGE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "deage"


#: converted models kept per kind (``ict-light-*``, ``demo-*``): the newest used ones, so that checkouts of other
#: versions on one machine (a benchmark's baseline, a second worktree) do not evict each other on every run
CACHE_KEEP = 4


@lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file's bytes (memoised per process by path, size and time)."""
    from ..hashing import sha256_file

    return sha256_file(path)


def _code_key(*paths: Path | None) -> str:
    """Cache key: the source files' contents plus the code that converts them (not where they are: two checkouts
    of the same version share one entry)."""
    import hashlib

    h = hashlib.sha256()
    for path in paths:
        if path is None:
            continue
        st = path.stat()
        h.update(_file_digest(str(path.resolve()), st.st_size, st.st_mtime_ns).encode())
    here = Path(__file__).parent
    for mod in ("ict.py", "albedo.py", "features.py", "correspondence.py", "model.py", "demo.py"):
        f = here / mod
        if f.exists():
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def load_builtin_ict() -> FaceModel:
    """The ICT-FaceKit light model shipped with the package (:func:`reconstruct.assets.ict_light_path`), converted
    (albedo, regions, ibug68 and MediaPipe correspondences) and cached on disk (:func:`cache_dir`) and per process."""
    from .ict import load_ict_light

    p = ict_light_path()
    return _cached(f"ict-light-{_code_key(p, mediapipe_canonical_path())}",
                   lambda: _with_correspondences(load_ict_light(p)))


@lru_cache(maxsize=1)
def load_demo() -> FaceModel:
    """The built-in demo model (:func:`reconstruct.face.demo.build_demo_model`) with its MediaPipe correspondence
    from the shipped canonical mesh, cached like :func:`load_builtin_ict`."""
    from .demo import build_demo_model

    return _cached(f"demo-{_code_key(mediapipe_canonical_path())}",
                   lambda: _with_correspondences(build_demo_model()))


def _cached(key: str, build: Callable[[], FaceModel]) -> FaceModel:
    cached = cache_dir() / f"{key}.npz"
    if cached.exists():
        try:
            model = load_face_model(cached)
            mark_used(cached)
            return model
        except FaceModelError as exc:
            log.warning("ignoring a damaged cached model %s: %s", cached, exc)
    model = build()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        save_face_model(model, cached, compress=False)  # stored: read on every process's start (model.py)
        evict(cached.parent, key.rsplit("-", 1)[0])
    except OSError as exc:  # a read-only home is fine: convert again next time
        log.info("could not cache the converted model in %s: %s", cached, exc)
    return model


def mark_used(path: Path) -> None:
    """Record a cache entry as just used (its mtime: :func:`evict` keeps the most recent)."""
    try:
        os.utime(path)
    except OSError:  # a read-only cache: the entry just ages
        pass


def evict(folder: Path, prefix: str, keep: int = CACHE_KEEP) -> None:
    """Remove all but the ``keep`` most recently used cache entries ``<prefix>-<key>.npz`` (other code or asset
    versions) in ``folder``."""
    entries = [p for p in folder.glob(f"{prefix}-*.npz") if p.name[len(prefix) + 1:-4].isalnum()]
    entries.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[keep:]:
        old.unlink(missing_ok=True)


def convert(kind: str, path: Path) -> FaceModel:
    """Read a model file/folder of ``kind`` (``ict``: light npz or FaceXModel folder; ``flame``; ``bfm``)."""
    path = Path(path)
    if not path.exists():
        raise FaceModelError(f"{path} does not exist", hint="pass the model file or folder you downloaded")
    if kind == "ict":
        from .ict import load_ict_folder, load_ict_light

        if path.is_dir():  # the upstream folder has no landmark list: take the light model's (same vertex order)
            with np.load(ict_light_path(), allow_pickle=False) as d:
                lm = d["landmarks_68_multipie"]
            return load_ict_folder(path, lm68_vertices=lm)
        return load_ict_light(path)
    if kind == "flame":
        from .flame import load_flame

        return load_flame(path)
    if kind == "bfm":
        from .bfm import load_bfm2017

        return load_bfm2017(path)
    raise FaceModelError(f"unknown face model kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}")


def _with_correspondences(model: FaceModel) -> FaceModel:
    """Add the MediaPipe 478 map (registered to the shipped canonical mesh) unless the model has one."""
    if "mediapipe478" in model.landmarks:
        return model
    try:
        from .correspondence import mediapipe_correspondence, with_landmarks

        return with_landmarks(model, mediapipe_correspondence(model, mediapipe_canonical_path()))
    except Exception as exc:  # correspondence is optional at import; the fit can compute it later
        log.warning("could not compute MediaPipe landmark correspondences for %s: %s", model.name, exc)
        return model


def import_model(kind: str, path: Path, name: str | None = None, force: bool = False,
                 correspondences: bool = True) -> Path:
    """Convert and store a model; returns the stored file. Refuses to overwrite unless ``force``."""
    model = convert(kind, path)
    if name:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise FaceModelError(f"model name {name!r} may only hold letters, digits, '.', '_' and '-'")
        model = replace(model, name=name)
    if correspondences:
        model = _with_correspondences(model)
    out = models_dir() / f"{model.name}.npz"
    if out.exists() and not force:
        raise FaceModelError(f"a model named {model.name!r} is already imported ({out})",
                             hint="pass --name to store it under another name, or --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_face_model(model, out)
    log.info("imported %s model %r into %s", kind, model.name, out)
    return out


@dataclass(frozen=True, slots=True)
class ModelSource:
    """A face model source (what ``register_face_models`` returns; see :class:`reconstruct.components.FaceModelSource`).

    Attributes:
        name: name used by ``--face-model`` / ``--model``.
        description: one line for ``reconstruct models list``.
        loader: builds the :class:`FaceModel` (called by :meth:`load`).
        path: the stored file, when there is one.
    """

    name: str
    description: str
    loader: Callable[[], FaceModel]
    path: Path | None = None

    def load(self) -> FaceModel:
        return self.loader()

    def digest(self) -> str:
        """Cheap identity of what :meth:`load` returns (the stored file's size and time, the converting code):
        part of the fit stage's cache key, so a model re-imported under the same name refits."""
        return _code_key(self.path)


def imported_sources() -> list[ModelSource]:
    """One source per ``*.npz`` in the models dir."""
    d = models_dir()
    out = []
    for p in sorted(d.glob("*.npz")) if d.is_dir() else []:
        out.append(ModelSource(p.stem, f"imported model ({p})", lambda p=p: load_face_model(p), p))
    return out


def builtin_sources() -> list[ModelSource]:
    """``demo`` and ``ict`` (the ICT-FaceKit light model shipped with the package), unless a model imported under
    the name ``ict`` replaces the built-in one."""
    out = [ModelSource("demo", "built-in demo model generated by code (for demos and tests, not a real face model)",
                       load_demo)]
    if not (models_dir() / "ict.npz").exists():
        out.append(ModelSource("ict", "ICT-FaceKit light (MIT), built in (reconstruct/assets/ict_facekit_light)",
                               load_builtin_ict, ict_light_path()))
    return out


def load_model_by_name(name: str) -> FaceModel:
    """Load a face model by source name without a plugin host (``demo``, ``ict``, or an imported model);
    ``auto`` is ``ict`` (built in, or the one imported under that name)."""
    if name == "auto":
        name = "ict"
    sources = {s.name: s for s in builtin_sources() + imported_sources()}
    if name not in sources:
        raise FaceModelError(f"no face model named {name!r}; available: {', '.join(sorted(sources))}",
                             hint="import one with `reconstruct models import <kind> <path>`")
    return sources[name].load()
