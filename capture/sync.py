"""Match the frames of several cameras into frame sets (hero-led), and measure how the cameras' clocks relate.

Every good frame is given a *slot*: an integer on a timeline common to all cameras; frames of different cameras
with the same slot belong together, and there is one frame set per distinct hero slot. How the slot is found
(``method``), best first:

``tick``
    The trigger tick recorded with the frame (software clock or hardware frame counter). Exact.
``timecode``
    The frame's SMPTE timecode as a frame count (cameras jammed to one timecode source). Exact.
``flash``
    Each camera's own frame grid (below) shifted so that a visible flash/clap event is slot 0 in every camera.
    Exact when the flash is seen in one frame of every camera.
``timestamps``
    Each camera's frames are put on its own regular grid by a robust, progressively extended line fit
    ``t = a + b k`` (jitter up to a quarter period and drift are absorbed; duplicates land in the same grid cell).
    The integer shift between two grids is then chosen over every shift whose implied clock offset is within
    ``max_offset_s``: most overlapping slots, then both ends of the take aligned, then the smaller offset. A clock
    offset larger than half a frame period is only identifiable from the take's ends; when two shifts score the
    same the choice is reported as ``ambiguous`` (use ticks, timecode or a flash to remove the doubt).

Within a slot a camera's extra frames are *duplicates* (the one nearest the grid is used, the rest reported).
Clock offset (camera minus hero, ns) and drift (ppm) come from a line fit of the matched capture times; the drift
over the take is flagged when it exceeds ``drift_warn_frames`` of a frame period.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Literal, Mapping, Sequence

import numpy as np

from reconstruct.errors import SyncError
from reconstruct.session import FrameRecord, FrameSet

from .protocol import timecode_to_frames

log = logging.getLogger(__name__)

Method = Literal["auto", "tick", "timecode", "flash", "timestamps"]
METHODS = ("auto", "tick", "timecode", "flash", "timestamps")


@dataclass(frozen=True, slots=True)
class CameraSync:
    """How one camera lines up with the hero.

    Attributes:
        camera: camera name.
        method: how its slots were found (see the module docstring).
        offset_ns: clock offset at the first hero frame, ns (camera clock minus hero clock), from matched frames.
        drift_ppm: clock rate difference, parts per million (camera minus hero); 0 when too few matches.
        drift_frames: accumulated drift over the take, in frame periods.
        jitter_ns: standard deviation of matched capture-time differences around the offset+drift line, ns.
        matched: hero frame sets that got a frame of this camera.
        unmatched_hero: hero frame sets without a frame of this camera (its drops, gaps, or outside its take).
        unused: good frames of this camera that matched no hero frame (outside the hero's take, or hero drops).
        duplicates: frame indices of this camera that were duplicates of another frame in the same slot.
        not_ok: rows of frames.csv that were not ``ok`` (dropped at node/transport/disk, or gap rows).
        shift: slot shift applied to this camera's own grid (timestamps/flash methods; 0 otherwise).
        ambiguous: True when another shift explained the timestamps equally well (see the module docstring).
    """

    camera: str
    method: str
    offset_ns: int
    drift_ppm: float
    drift_frames: float
    jitter_ns: float
    matched: int
    unmatched_hero: int
    unused: int
    duplicates: tuple[int, ...] = ()
    not_ok: int = 0
    shift: int = 0
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class SyncReport:
    """The sync result of a whole session. ``cameras`` holds every camera, the hero included."""

    hero: str
    fps: float
    hero_frames: int
    method: str
    cameras: Mapping[str, CameraSync]
    warnings: tuple[str, ...] = ()

    # compatibility views used by older callers
    @property
    def offsets_ns(self) -> dict[str, int]:
        return {c: s.offset_ns for c, s in self.cameras.items() if c != self.hero}

    @property
    def matched(self) -> dict[str, int]:
        return {c: s.matched for c, s in self.cameras.items() if c != self.hero}

    @property
    def unmatched(self) -> dict[str, int]:
        return {c: s.unmatched_hero for c, s in self.cameras.items() if c != self.hero}

    def to_json(self) -> dict:
        return {"hero": self.hero, "fps": self.fps, "hero_frames": self.hero_frames, "method": self.method,
                "warnings": list(self.warnings), "offsets_ns": self.offsets_ns, "matched": self.matched,
                "unmatched": self.unmatched,
                "cameras": {c: {**asdict(s), "duplicates": list(s.duplicates)} for c, s in self.cameras.items()}}


# -- building blocks --------------------------------------------------------------------------------------------
def grid_fit(t_ns: np.ndarray, period_ns: float) -> tuple[np.ndarray, float, float]:
    """Put capture times on a regular grid: returns ``(k, a, b)`` with ``t - t[0] ~= a + b k``.

    ``k`` (int64, same length as ``t_ns``) is each frame's grid cell, 0 for the first frame. The phase starts from
    the circular mean of the first 16 frames; the fit then grows by half its length at a time (intercept only with
    the nominal period below 128 frames, then intercept and slope), so it follows drift (up to ~1000 ppm) without
    losing count; jitter up to a quarter period per frame and any number of drops are absorbed. Duplicates share
    a cell.
    """
    t = np.asarray(t_ns, dtype=np.float64)
    t = t - t[0]
    n = len(t)
    b = float(period_ns)
    m = min(n, 16)
    # grid phase from the circular mean of the first frames (not the first frame's own, jittered, time)
    a = float(np.angle(np.mean(np.exp(2j * np.pi * t[:m] / b))) / (2 * np.pi) * b)
    while True:
        k = np.round((t[:m] - a) / b)
        if m < 128 or k.max() - k.min() < 64:
            a = float(np.mean(t[:m] - b * k))  # nominal period: a slope from few frames extrapolates badly
        else:
            b, a = np.polyfit(k, t[:m], 1)
        if m == n:
            break
        m = min(n, int(m * 1.5) + 1)
    k = np.round((t - a) / b)
    k0 = k[0]
    return (k - k0).astype(np.int64), float(a + b * k0), float(b)


def detect_flash(brightness: Sequence[float], min_jump: float = 40.0) -> int | None:
    """Position of the first frame of a flash: the largest rise of mean brightness over the median of the 15
    frames before it, if that rise is at least ``min_jump`` (0-255 levels) and 6x the robust spread; else None."""
    x = np.asarray(brightness, dtype=np.float64)
    if len(x) < 3:
        return None
    best, best_i = 0.0, None
    for i in range(1, len(x)):
        prev = x[max(0, i - 15):i]
        rise = x[i] - np.median(prev)
        if rise > best:
            best, best_i = rise, i
    if best_i is None:
        return None
    diffs = np.abs(np.diff(x))
    spread = np.median(diffs) * 1.4826 + 1e-6
    if best < min_jump or best < 6 * spread:
        return None
    return best_i


def _slots_by_tick(recs: Sequence[FrameRecord]) -> np.ndarray:
    return np.array([r.tick for r in recs], dtype=np.int64)


def _slots_by_timecode(recs: Sequence[FrameRecord], fps: float) -> np.ndarray:
    return np.array([timecode_to_frames(r.timecode, fps) for r in recs], dtype=np.int64)


def _choose_shift(hero_slots: np.ndarray, t_h0: float, cam_k: np.ndarray, t_c0: float, period: float,
                  max_offset_ns: float, empty_slot: int | None = None) -> tuple[int, bool]:
    """Integer shift s (camera grid cell k -> slot k + s) for the timestamps method; returns (s, ambiguous).

    ``empty_slot``: a slot this camera cannot have a frame in (the flash slot of a camera that saw no flash:
    its flash frame was dropped), which rules out the shifts that put a frame there."""
    offset0 = t_c0 - t_h0  # implied clock offset if s = 0
    lo = int(np.floor((offset0 - max_offset_ns) / period))
    hi = int(np.ceil((offset0 + max_offset_ns) / period))
    hset = set(hero_slots.tolist())
    h_first, h_last = int(hero_slots.min()), int(hero_slots.max())
    scored = []
    for s in range(lo, hi + 1):
        off = offset0 - s * period
        if abs(off) > max_offset_ns:
            continue
        slots = cam_k + s
        if empty_slot is not None and bool(np.any(slots == empty_slot)):
            continue
        overlap = sum(1 for v in set(slots.tolist()) if v in hset)
        edges = int(int(slots.min()) == h_first) + int(int(slots.max()) == h_last)
        scored.append(((overlap, edges, -abs(off)), s))
    if not scored:
        raise SyncError(f"no frame alignment within the maximum clock offset of {max_offset_ns / 1e9:g} s",
                        hint="raise --max-offset, or sync by tick, timecode or flash")
    scored.sort(reverse=True)
    ambiguous = len(scored) > 1 and scored[0][0][:2] == scored[1][0][:2]
    return scored[0][1], ambiguous


def _fit_clock(th: np.ndarray, tc: np.ndarray, period: float) -> tuple[int, float, float, float]:
    """offset at the first hero frame (ns), drift ppm, drift over the take (frames), jitter (ns)."""
    d = tc.astype(np.float64) - th.astype(np.float64)
    x = (th - th[0]).astype(np.float64)
    if len(d) >= 3 and x[-1] > 0:
        slope, icpt = np.polyfit(x, d, 1)
    else:
        slope, icpt = 0.0, float(np.median(d)) if len(d) else 0.0
    resid = d - (icpt + slope * x)
    span = x[-1] if len(x) else 0.0
    return int(round(icpt)), float(slope * 1e6), float(slope * span / period), float(resid.std()) if len(d) else 0.0


# -- matching ---------------------------------------------------------------------------------------------------
def match_frames(records: Mapping[str, Sequence[FrameRecord]], hero: str, fps: float, method: Method = "auto",
                 brightness: Mapping[str, Sequence[float]] | None = None, max_offset_s: float = 2.0,
                 drift_warn_frames: float = 0.25) -> tuple[list[FrameSet], SyncReport]:
    """Hero-led frame sets from per-camera frame records.

    Args:
        records: camera name -> its frames.csv rows (any status; only ``ok`` rows are matched).
        hero: the hero camera's name (one frame set per distinct hero slot).
        fps: nominal frame rate (frames per second).
        method: ``auto`` picks tick > timecode > flash (when ``brightness`` shows a flash in every camera) >
            timestamps; or force one.
        brightness: camera name -> mean brightness (0-255) of each *ok* record, in order (flash method only).
        max_offset_s: largest clock offset the timestamps method considers, seconds.
        drift_warn_frames: warn when a camera's drift over the take exceeds this many frame periods.

    Returns:
        (frame sets, report). A camera without a match for a hero frame has ``None`` in that frame set.
    """
    if method not in METHODS:
        raise SyncError(f"unknown sync method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    if hero not in records:
        raise SyncError(f"hero camera {hero!r} has no frames", hint="check that the hero camera recorded")
    period = 1e9 / fps
    good = {c: [r for r in recs if r.status == "ok"] for c, recs in records.items()}
    if not good[hero]:
        raise SyncError(f"hero camera {hero!r} has no good frames", hint="re-record: nothing usable was stored")
    cams = [c for c in records if good[c]]
    for c in records:
        if not good[c]:
            log.warning("camera %s has no good frames", c)
    method = _pick_method({hero: good[hero], **good}, cams, method, brightness)

    slots: dict[str, np.ndarray] = {}
    resid: dict[str, np.ndarray] = {}
    shifts: dict[str, int] = {}
    ambiguous: dict[str, bool] = {}
    cam_method: dict[str, str] = {c: method for c in cams}
    if method == "tick":
        for c in cams:
            slots[c] = _slots_by_tick(good[c])
    elif method == "timecode":
        for c in cams:
            slots[c] = _slots_by_timecode(good[c], fps)
    else:
        grids = {}
        for c in cams:
            t = np.array([r.t_capture_ns for r in good[c]], dtype=np.int64)
            k, a, b = grid_fit(t, period)
            grids[c] = (k, float(t[0]) + a, b)
            resid[c] = np.abs((t - t[0]) - (a + b * k))
        shifts[hero] = 0
        if method == "flash":
            for c in cams:
                i = detect_flash(brightness[c]) if c in brightness else None
                if i is not None:
                    shifts[c] = -int(grids[c][0][i])
                    slots[c] = grids[c][0] + shifts[c]
                    cam_method[c] = "flash"
        slots[hero] = grids[hero][0] + shifts[hero]
        t_slot0 = grids[hero][1] - shifts[hero] * grids[hero][2]  # hero clock time of slot 0
        for c in cams:
            if c in slots:
                continue
            s, amb = _choose_shift(slots[hero], t_slot0, grids[c][0], grids[c][1], period, max_offset_s * 1e9,
                                   empty_slot=0 if method == "flash" else None)
            shifts[c], ambiguous[c] = s, amb
            slots[c] = grids[c][0] + s
            cam_method[c] = "timestamps"
            if method == "flash":
                log.warning("sync: no flash seen by camera %s; aligned by timestamps instead", c)

    # one frame per slot and camera: the first (tick/timecode) or the one nearest its grid (others)
    chosen: dict[str, dict[int, int]] = {}
    dups: dict[str, list[int]] = {}
    for c in cams:
        order = np.argsort(resid[c], kind="stable") if c in resid else np.arange(len(good[c]))
        best: dict[int, int] = {}
        dd = []
        for i in order:
            sl = int(slots[c][i])
            if sl in best:
                dd.append(good[c][i].index)
            else:
                best[sl] = int(i)
        chosen[c], dups[c] = best, sorted(dd)

    hero_slots = sorted(chosen[hero])
    framesets = []
    for n, sl in enumerate(hero_slots):
        hi = chosen[hero][sl]
        idx = {c: (good[c][chosen[c][sl]].index if c in chosen and sl in chosen[c] else None) for c in records}
        framesets.append(FrameSet(frame=n, t_ns=int(good[hero][hi].t_capture_ns), indices=idx))

    warnings = []
    per_cam = {}
    hset = set(hero_slots)
    for c in records:
        not_ok = sum(1 for r in records[c] if r.status != "ok")
        if c not in chosen:
            per_cam[c] = CameraSync(c, method, 0, 0.0, 0.0, 0.0, 0, len(hero_slots), 0, (), not_ok)
            warnings.append(f"camera {c} has no good frames")
            continue
        common = [sl for sl in hero_slots if sl in chosen[c]]
        th = np.array([good[hero][chosen[hero][sl]].t_capture_ns for sl in common], dtype=np.int64)
        tc = np.array([good[c][chosen[c][sl]].t_capture_ns for sl in common], dtype=np.int64)
        off, ppm, dframes, jit = _fit_clock(th, tc, period) if len(common) else (0, 0.0, 0.0, 0.0)
        unused = sum(1 for sl in chosen[c] if sl not in hset)
        cs = CameraSync(c, cam_method[c], off, round(ppm, 3), round(dframes, 4), round(jit, 1), len(common),
                        len(hero_slots) - len(common), unused, tuple(dups[c]), not_ok, shifts.get(c, 0),
                        ambiguous.get(c, False))
        per_cam[c] = cs
        if c != hero and abs(dframes) > drift_warn_frames:
            warnings.append(f"camera {c} drifts {ppm:+.1f} ppm: {dframes:+.2f} frames over the take")
        if cs.ambiguous:
            warnings.append(f"camera {c}: frame alignment by timestamps is ambiguous (clock offset {off / 1e6:.1f} ms "
                            "chosen as the smaller one); sync by tick, timecode or flash to be sure")
        if cam_method[c] != method:
            warnings.append(f"camera {c}: no flash seen (its flash frame dropped?); aligned by timestamps")
        if dups[c]:
            warnings.append(f"camera {c}: {len(dups[c])} duplicated frames ignored")
    for c in records:
        gaps = [r for r in records[c] if r.status == "gap"]
        if gaps:  # the camera node died: no frames after the gap row
            missing = per_cam[c].unmatched_hero if c != hero else 0
            warnings.append(f"camera {c}: recording gap ({gaps[0].note or 'camera node down'})"
                            + (f"; {missing} of {len(hero_slots)} frame sets have no frame from it" if missing else ""))
    for w in warnings:
        log.warning("sync: %s", w)
    report = SyncReport(hero, fps, len(hero_slots), method, per_cam, tuple(warnings))
    return framesets, report


def _pick_method(good: Mapping[str, list[FrameRecord]], cams: list[str], method: str,
                 brightness: Mapping[str, Sequence[float]] | None) -> str:
    has_tick = all(r.tick >= 0 for c in cams for r in good[c])
    has_tc = all(r.timecode for c in cams for r in good[c])
    def flash(c: str) -> bool:
        return brightness is not None and c in brightness and detect_flash(brightness[c]) is not None

    hero = next(iter(good))
    if method == "auto":
        return ("tick" if has_tick else "timecode" if has_tc else "flash" if all(flash(c) for c in cams)
                else "timestamps")
    if method == "tick" and not has_tick:
        raise SyncError("sync by tick: some frames have no trigger tick (-1)",
                        hint="the take was free-running; use --method timecode, flash or timestamps")
    if method == "timecode" and not has_tc:
        raise SyncError("sync by timecode: some frames have no timecode",
                        hint="jam the cameras to one timecode source, or use --method flash or timestamps")
    if method == "flash" and not flash(hero):
        raise SyncError(f"sync by flash: no flash found in the hero camera {hero!r}",
                        hint="fire a flash/clap visible to every camera during the take, or use another method")
    return method
