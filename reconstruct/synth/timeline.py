"""Synthetic capture timelines: per-camera timestamps with clock offset, jitter, drops and duplicates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np


@dataclass(frozen=True, slots=True)
class TimelineSpec:
    """How each camera's clock and delivery deviate from the ideal trigger.

    Attributes:
        offset_ns: camera name -> constant clock offset, ns (camera clock minus hero clock).
        jitter_frac: timestamp jitter, uniform in +-jitter_frac * frame period.
        drop_rate: probability a non-hero frame is dropped (never stored).
        duplicate_rate: probability a non-hero frame is delivered twice (same image, new index).
        drift_ppm: camera name -> clock drift in parts per million.
        t0_ns: capture time of the first tick on the hero clock.
        timecode_start: jammed SMPTE timecode ``HH:MM:SS:FF`` of tick 0 ("" = no timecodes).
        flash_tick: tick at which a flash is visible to every camera (-1 = none); see ``CameraTimeline.brightness``.
        hero_drop_rate: probability a hero frame is dropped.
    """

    offset_ns: Mapping[str, int] = field(default_factory=dict)
    jitter_frac: float = 0.0
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    drift_ppm: Mapping[str, float] = field(default_factory=dict)
    t0_ns: int = 1_700_000_000_000_000_000
    timecode_start: str = ""
    flash_tick: int = -1
    hero_drop_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class CameraTimeline:
    """Delivered frames of one camera: ``ticks[i]`` is the true tick of delivered frame i, ``t_ns[i]`` its stamp."""

    ticks: np.ndarray  # (M,) int64
    t_ns: np.ndarray  # (M,) int64
    dropped_ticks: np.ndarray  # (D,) int64
    duplicated: np.ndarray  # (M,) bool, True for the second copy
    timecodes: tuple[str, ...] = ()  # (M,) jammed timecode of each delivered frame (empty without timecode_start)
    brightness: np.ndarray | None = None  # (M,) float mean image brightness 0-255 (flash at spec.flash_tick)


def make_timeline(cameras: list[str], hero: str, n_ticks: int, fps: float, spec: TimelineSpec,
                  seed: int = 0) -> dict[str, CameraTimeline]:
    rng = np.random.default_rng(seed)
    period = 1e9 / fps
    out = {}
    for cam in cameras:
        ticks, stamps, dup, dropped = [], [], [], []
        for k in range(n_ticks):
            if (cam != hero and rng.random() < spec.drop_rate) or (
                    cam == hero and spec.hero_drop_rate > 0 and rng.random() < spec.hero_drop_rate):
                dropped.append(k)
                continue
            t = spec.t0_ns + k * period * (1 + spec.drift_ppm.get(cam, 0.0) * 1e-6)
            t += spec.offset_ns.get(cam, 0) + rng.uniform(-1, 1) * spec.jitter_frac * period
            ticks.append(k)
            stamps.append(int(round(t)))
            dup.append(False)
            if cam != hero and rng.random() < spec.duplicate_rate:
                ticks.append(k)
                stamps.append(int(round(t + 1e6)))
                dup.append(True)
        tk = np.array(ticks, np.int64)
        tcs: tuple[str, ...] = ()
        if spec.timecode_start:
            base = int(round(fps))
            hh, mm, ss, ff = (int(x) for x in spec.timecode_start.split(":"))
            tc0 = ((hh * 60 + mm) * 60 + ss) * base + ff
            tcs = tuple(_timecode(tc0 + int(k), base) for k in tk)
        # a separate generator: adding brightness does not change the timelines of existing seeds
        brng = np.random.default_rng(seed + 7919 + len(out))
        bright = 90.0 + brng.normal(0.0, 2.0, len(tk)) + 20.0 * np.sin(tk / 17.0)
        if spec.flash_tick >= 0:
            bright[tk == spec.flash_tick] = 245.0
        out[cam] = CameraTimeline(tk, np.array(stamps, np.int64), np.array(dropped, np.int64), np.array(dup, bool),
                                  tcs, bright)
    return out


def _timecode(n: int, base: int) -> str:
    """Frame count -> ``HH:MM:SS:FF`` (non-drop-frame at ``base`` frames per second)."""
    sec = n // base
    return f"{sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}:{n % base:02d}"
