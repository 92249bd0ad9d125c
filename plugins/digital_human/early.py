"""The young stills' work that needs nothing of the take's fit, done early: while the fit stage solves in the driver
and leaves a core idle, the age stage's ``prestart`` has :meth:`.method.DigitalHumanMethod.early_work` start one
:class:`YoungJob` on a worker of its own (:meth:`~reconstruct.executors.local.LocalExecutor.start_early`): the
young stills read, their landmarks found, the young geometry (:func:`.young.young_geometry`) and the per-still
identity fits (:func:`.young.fit_still`) made -- the same computations the age stage's batch makes of them
otherwise (:meth:`.method.DigitalHumanMethod.prepare_for_frames`), which takes the result when its cache names
match the ones the job was made for, and makes them as before when they do not, or when the job failed."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["YoungJob", "YoungEarly", "young_early", "of_these_stills"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class YoungJob:
    """The early work item (picklable): the registered face model's name, the young-reference folder, the
    detector's name (None: the default), the identity modes of the asset's fit and of the per-still fits, the
    device, and ``names``: the cache file names (young asset, young per-still fits) it is made for."""

    model: str
    refs: str
    detector: str | None
    n_identity: int
    modes: int
    device: str
    names: tuple[str, str]


@dataclass(frozen=True, slots=True, eq=False)
class YoungEarly:
    """What :func:`young_early` made: ``names`` (the job's), the stills with their landmarks
    (:class:`.young.FoundStill`, in order), the young geometry without rasterisations and the per-still identities
    ((Ki,) float64 each, in the stills' order)."""

    names: tuple[str, str]
    found: tuple
    geometry: object
    identities: tuple


def young_early(job: YoungJob, res) -> YoungEarly:
    """``job``'s young stills read, their landmarks found and fitted, in a worker (module-level: it travels by
    name; MediaPipe runs here, in a started worker, never in a forked one)."""
    from reconstruct.lazy_imports import defer_plotting_imports

    from .stills import read_young_refs
    from .young import AssetJob, StillFit, build_asset, find_landmarks, fit_still, pick_detector

    defer_plotting_imports()
    model = res.face_model(job.model)
    det = pick_detector(res.components, model, job.detector)
    found = tuple(find_landmarks(read_young_refs(job.refs), det.detect))
    geometry = build_asset(AssetJob(model=job.model, scheme=det.scheme, found=found, texture_size=0,
                                    n_identity=job.n_identity, passes=0, identity=None, device=job.device,
                                    albedo=False), res)
    idents = tuple(np.asarray(fit_still(StillFit(job.model, det.scheme, f.camera, f.points, f.conf, job.modes), res))
                   for f in found)
    return YoungEarly(job.names, found, geometry, idents)


def of_these_stills(early, asset: str):
    """``early`` (:class:`.early.YoungEarly` or None) when it was made for the young asset named ``asset`` -- whose
    name digests the stills' files and the settings --, else None: stills edited while the fit ran must not have
    their old landmarks fitted and cached under the new stills' name."""
    if early is not None and early.names[0] != asset:
        log.info("digital_human: the young stills or settings changed while the fit ran; fitting them again")
        return None
    return early
