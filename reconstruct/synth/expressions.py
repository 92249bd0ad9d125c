"""Extreme expressions for synthetic performances: the takes that stress a fit (a scream, a pucker, a wide smile,
a squint, a one-sided smile, a blink, a brow raise), acted one after the other over a talking performance.

Each expression is a set of ARKit-style blendshape weights (the names ICT-FaceKit uses) at its peak. A take with
``K`` extremes is cut into ``K`` equal segments; in segment ``k`` the face leaves the talking performance, reaches
expression ``k`` (a raised-cosine ramp over the first third), holds it for the middle third and returns over the
last third. The segment of every tick is part of the ground truth (``params.npz`` ``segment``, -1 = talking;
``meta.json`` ``segments`` names them), so tests can score each expression on its own frames.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: expression name -> blendshape weights at its peak (ICT-FaceKit / ARKit names; missing names are ignored)
EXTREMES: Mapping[str, Mapping[str, float]] = {
    # a wide-open scream: the jaw fully open, lips stretched and pulled apart, brows up, eyes wide
    "scream": {"jawOpen": 1.0, "mouthStretch_L": 0.6, "mouthStretch_R": 0.6, "mouthLowerDown_L": 0.8,
               "mouthLowerDown_R": 0.8, "mouthUpperUp_L": 0.6, "mouthUpperUp_R": 0.6, "browInnerUp_L": 0.8,
               "browInnerUp_R": 0.8, "eyeWide_L": 0.6, "eyeWide_R": 0.6},
    # lips pushed forward into a funnel
    "pucker": {"mouthPucker": 1.0, "mouthFunnel": 0.6, "jawOpen": 0.1},
    # a wide, open smile that lifts the cheeks
    "smile": {"mouthSmile_L": 1.0, "mouthSmile_R": 1.0, "cheekSquint_L": 0.5, "cheekSquint_R": 0.5,
              "jawOpen": 0.25, "mouthStretch_L": 0.3, "mouthStretch_R": 0.3, "mouthUpperUp_L": 0.3,
              "mouthUpperUp_R": 0.3},
    # narrowed eyes, brows down, cheeks up
    "squint": {"eyeSquint_L": 1.0, "eyeSquint_R": 1.0, "cheekSquint_L": 0.7, "cheekSquint_R": 0.7,
               "browDown_L": 0.7, "browDown_R": 0.7, "noseSneer_L": 0.3, "noseSneer_R": 0.3},
    # a one-sided smile (the subject's left mouth corner only)
    "smirk": {"mouthSmile_L": 1.0, "cheekSquint_L": 0.5, "mouthLeft": 0.3, "eyeSquint_L": 0.2},
    # both eyes fully shut
    "blink": {"eyeBlink_L": 1.0, "eyeBlink_R": 1.0},
    # brows raised high
    "brows": {"browInnerUp_L": 1.0, "browInnerUp_R": 1.0, "browOuterUp_L": 1.0, "browOuterUp_R": 1.0,
              "eyeWide_L": 0.3, "eyeWide_R": 0.3},
}


def parse_extremes(text: str) -> tuple[str, ...]:
    """``"scream,smile"`` or ``"all"`` -> expression names; raises ValueError naming the known ones."""
    names = tuple(EXTREMES) if text.strip() == "all" else tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in EXTREMES]
    if bad:
        raise ValueError(f"unknown expression(s) {', '.join(bad)}; known: {', '.join(EXTREMES)} or all")
    return names


def segment_envelopes(frames: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per tick, the segment (T,) int in [0, count) and the envelope (T,) in [0, 1] of that segment's expression
    (raised-cosine ramp up over the first third of the segment, hold, ramp down over the last third)."""
    seg = np.minimum((np.arange(frames) * count) // max(frames, 1), count - 1)
    env = np.zeros(frames)
    for k in range(count):
        idx = np.flatnonzero(seg == k)
        if len(idx) == 0:
            continue
        n = len(idx)
        x = (np.arange(n) + 0.5) / n  # position inside the segment, (0, 1)
        ramp = np.clip(np.minimum(x, 1.0 - x) * 3.0, 0.0, 1.0)  # 0 at the ends, 1 over the middle third
        env[idx] = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return seg, env


def apply_extremes(expression: np.ndarray, names: Sequence[str], extremes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Blend ``extremes`` (names of :data:`EXTREMES`) into a talking expression track (T, Ke) of a blendshape model
    whose weights are named ``names``.

    Returns the new track (T, Ke) (weights in [0, 1]) and the segment of every tick (T,) int: the index into
    ``extremes`` while an expression is on (envelope > 0), -1 where the face only talks.
    """
    T = expression.shape[0]
    out = np.array(expression, np.float64)
    segment = np.full(T, -1, np.int64)
    if not extremes:
        return out, segment
    index = {n: i for i, n in enumerate(names)}
    seg, env = segment_envelopes(T, len(extremes))
    for k, name in enumerate(extremes):
        m = seg == k
        target = np.zeros(out.shape[1])
        for bs, w in EXTREMES[name].items():
            if bs in index:
                target[index[bs]] = w
        e = env[m, None]
        out[m] = (1.0 - e) * out[m] + e * target  # the expression takes over from the talking face
        segment[np.flatnonzero(m)[env[m] > 0]] = k
    return np.clip(out, 0.0, 1.0), segment
