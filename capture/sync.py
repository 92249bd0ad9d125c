"""Match frames of several cameras into frame sets (hero-led).

For every good hero frame, each other camera contributes the good frame whose capture time (corrected by that
camera's estimated clock offset) is nearest, if it lies within half a frame period; otherwise it has no match.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from reconstruct.errors import SyncError
from reconstruct.session import FrameRecord, FrameSet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncReport:
    """Per camera: estimated clock offset (ns, camera minus hero), matched count, unmatched hero frames."""

    offsets_ns: Mapping[str, int]
    matched: Mapping[str, int]
    unmatched: Mapping[str, int]
    hero_frames: int


def _good(records: Sequence[FrameRecord]) -> list[FrameRecord]:
    return [r for r in records if r.status == "ok"]


def match_frames(records: Mapping[str, Sequence[FrameRecord]], hero: str, fps: float) -> tuple[list[FrameSet], SyncReport]:
    """Hero-led matching by capture timestamps with a per-camera median offset estimate."""
    if hero not in records:
        raise SyncError(f"hero camera {hero!r} has no frames", hint="check that the hero camera recorded")
    period = 1e9 / fps
    hero_recs = _good(records[hero])
    if not hero_recs:
        raise SyncError(f"hero camera {hero!r} has no good frames", hint="re-record: nothing usable was stored")
    th = np.array([r.t_capture_ns for r in hero_recs], dtype=np.int64)
    offsets, matched, unmatched = {}, {}, {}
    per_cam: dict[str, list[int | None]] = {}
    for cam, recs in records.items():
        if cam == hero:
            continue
        good = _good(recs)
        if not good:
            per_cam[cam] = [None] * len(hero_recs)
            offsets[cam], matched[cam], unmatched[cam] = 0, 0, len(hero_recs)
            log.warning("camera %s has no good frames", cam)
            continue
        tc = np.array([r.t_capture_ns for r in good], dtype=np.int64)
        # coarse offset: median of nearest differences, refined once
        off = 0.0
        for _ in range(2):
            j = np.clip(np.searchsorted(tc - off, th), 1, len(tc) - 1)
            near = np.where(np.abs(tc[j] - off - th) < np.abs(tc[j - 1] - off - th), j, j - 1)
            off = float(np.median(tc[near] - th))
        corrected = tc - off
        j = np.clip(np.searchsorted(corrected, th), 1, len(tc) - 1)
        near = np.where(np.abs(corrected[j] - th) < np.abs(corrected[j - 1] - th), j, j - 1)
        ok = np.abs(corrected[near] - th) < period / 2
        per_cam[cam] = [good[k].index if o else None for k, o in zip(near, ok)]
        offsets[cam], matched[cam], unmatched[cam] = int(round(off)), int(ok.sum()), int((~ok).sum())
    framesets = []
    for i, r in enumerate(hero_recs):
        idx = {hero: r.index}
        idx.update({c: per_cam[c][i] for c in per_cam})
        framesets.append(FrameSet(frame=i, t_ns=int(r.t_capture_ns), indices=idx))
    return framesets, SyncReport(offsets, matched, unmatched, len(hero_recs))
