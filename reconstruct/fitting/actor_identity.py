"""A known actor identity for the fit (``--option fit.identity=FILE``).

One view cannot separate a face's size from its distance: a face scaled about the camera's centre projects to the
same pixels, so a hero-only fit of an unknown identity is as far off in depth as its size prior allows (the ICT
identity prior's face size has a spread of 4.6 %, i.e. ~37 mm at a hero 0.8 m away; docs/fitting.md). What a
production has is the actor: another take of the same actor fitted through three views (or a scan fitted once).
Its identity, fixed, leaves the one-view fit only expression and pose to solve, and the size, hence the depth,
comes with it.

The file is either that take's ``out/fit/fits.npz`` (:mod:`.result`) or a small file written by
:func:`save_identity`. Both are checked against the model the fit uses: the name, and that the file was made with
the same model geometry (an identity file stores a digest of the model's mean and identity basis; for a fits.npz
the stored vertices of one frame are rebuilt from its coefficients with this model and must agree).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from ..errors import FitError
from ..face.model import FaceModel, read_npz

log = logging.getLogger(__name__)

FORMAT = "deage-actor-identity-1"
_HINT = ("pass the out/fit/fits.npz of a take of the same actor fitted with this face model (`fit.model`), or drop "
         "--option fit.identity")
#: a fits.npz whose stored vertices differ from its coefficients rebuilt with this model by more than this was
#: fitted with another model (float32 storage rounds to ~1e-7 m)
REBUILD_TOL_M = 1e-4


def model_digest(model: FaceModel) -> str:
    """Digest of what an identity means on ``model``: its vertex count, mean shape and identity basis."""
    h = hashlib.sha256()
    h.update(np.int64(model.n_vertices).tobytes())
    h.update(np.ascontiguousarray(model.mean, np.float32).tobytes())
    h.update(np.ascontiguousarray(model.identity_basis, np.float32).tobytes())
    return h.hexdigest()[:32]


def save_identity(path: Path, model: FaceModel, identity: np.ndarray, source: str = "") -> None:
    """Write an actor identity file: ``identity`` (Ki,) coefficients of ``model``, ``source`` (where it came from)."""
    from ..session import atomic_path

    with atomic_path(Path(path), suffix=".npz") as tmp:
        np.savez_compressed(tmp, format=np.array(FORMAT), model=np.array(model.name),
                            model_digest=np.array(model_digest(model)),
                            identity=np.asarray(identity, np.float64), source=np.array(source))


def load_identity(path: Path, model: FaceModel) -> np.ndarray:
    """(model.n_identity,) identity coefficients from a fits.npz or an identity file, checked against ``model``
    (a :class:`~reconstruct.errors.FitError` naming the file otherwise)."""
    path = Path(path)
    d = read_npz(path, "a fits.npz or an actor identity file", hint=_HINT)
    if "format" in d and str(d["format"]) == FORMAT:
        name, identity = str(d["model"]), np.asarray(d["identity"], np.float64)
        _check_name(path, name, model)
        if str(d["model_digest"]) != model_digest(model):
            raise FitError(f"{path} holds an identity of another version of face model {name!r} (its digest differs)",
                           hint=_HINT)
    elif {"model_name", "identity", "expression", "R", "t", "vertices"} <= d.keys():
        name, identity = str(d["model_name"]), np.asarray(d["identity"], np.float64)
        _check_name(path, name, model)
        _check_rebuild(path, d, model)
    else:
        raise FitError(f"{path} is neither a fits.npz nor an actor identity file ({FORMAT})", hint=_HINT)
    if identity.ndim != 1 or identity.size > model.n_identity or not np.isfinite(identity).all():
        raise FitError(f"{path} holds {identity.size} identity coefficients; face model {model.name!r} has "
                       f"{model.n_identity}", hint=_HINT)
    out = np.zeros(model.n_identity)
    out[: identity.size] = identity
    log.info("fit: actor identity from %s (%d coefficients, face size %.1f mm from the mean's)", path, identity.size,
             1e3 * (_size(model, out) - _size(model, np.zeros_like(out))))
    return out


def _check_name(path: Path, name: str, model: FaceModel) -> None:
    if name != model.name:
        raise FitError(f"{path} holds an identity of face model {name!r}, but this fit uses {model.name!r}",
                       hint=_HINT)


def _check_rebuild(path: Path, d: dict, model: FaceModel) -> None:
    """The first valid frame's stored vertices must be what this model makes of the file's coefficients."""
    V = d["vertices"]
    if V.ndim != 3 or V.shape[1] != model.n_vertices or d["expression"].shape[-1] != model.n_expression:
        raise FitError(f"{path} was fitted with a face model of {V.shape[1] if V.ndim == 3 else '?'} vertices and "
                       f"{d['expression'].shape[-1]} expressions; {model.name!r} has {model.n_vertices} and "
                       f"{model.n_expression}", hint=_HINT)
    valid = np.flatnonzero(d["valid"]) if "valid" in d else np.arange(len(V))
    f = int(valid[0]) if len(valid) else 0
    scale = float(d["scale"][f]) if "scale" in d else 1.0
    v = model.vertices(np.asarray(d["identity"], np.float64), np.asarray(d["expression"][f], np.float64))
    v = scale * v @ np.asarray(d["R"][f], np.float64).T + np.asarray(d["t"][f], np.float64)
    err = float(np.abs(v - V[f]).max())
    if err > REBUILD_TOL_M:
        raise FitError(f"{path} was not fitted with this version of face model {model.name!r}: its vertices differ "
                       f"from its coefficients rebuilt with it by {1e3 * err:.1f} mm", hint=_HINT)


def _size(model: FaceModel, identity: np.ndarray) -> float:
    """The neutral shape's size (:func:`.size_prior.face_size`, metres)."""
    from .size_prior import face_size

    return face_size(model.vertices(identity))
