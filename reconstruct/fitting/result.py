"""The fit stage's output contract: per-frame 3DMM parameters of a session (``out/fit/fits.npz``).

Every consumer (aging methods, render, report) reads fits through :func:`load_fits`; the fit stage writes them
with :func:`save_fits`. Coordinates: world = OpenCV-convention world of ``calibration.json``, metres.
A model-frame point ``p`` maps to world as ``X = scale * R @ p + t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ..errors import FitError


@dataclass(frozen=True, slots=True, eq=False)
class FrameFit:
    """The fit of one output frame.

    Attributes:
        frame: output frame number (row of sync.csv).
        identity: (Ki,) float32 identity coefficients (shared by the whole session).
        expression: (Ke,) float32 expression weights of this frame.
        R: (3, 3) float64 rotation model frame -> world.
        t: (3,) float64 translation model frame -> world, metres.
        scale: model-to-world scale (1.0 when the model is metric).
        vertices: (V, 3) float32 world-frame vertices, metres.
        valid: False when the frame could not be fitted (no face found); the other fields are then interpolated or
            copied from the nearest valid frame and must not be trusted.
        residual_px: camera name -> RMS landmark reprojection error in pixels (NaN if the camera had no landmarks).
        eye_gaze: (2, 3) float32 unit gaze directions in world (the subject's left, right eye; NaN where that iris
            was not seen), or None if not estimated (a detector without iris centres). See :mod:`.gaze`.
    """

    frame: int
    identity: np.ndarray
    expression: np.ndarray
    R: np.ndarray
    t: np.ndarray
    scale: float
    vertices: np.ndarray
    valid: bool = True
    residual_px: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    eye_gaze: np.ndarray | None = None


@dataclass(frozen=True, slots=True, eq=False)
class FitSequence:
    """All frames of a session's fit (arrays stacked over T frames; see :class:`FrameFit` for each field).

    Attributes:
        model_name: the face model used (``register_face_models`` name).
        frames: (T,) int32 output frame numbers.
        identity: (Ki,) float32.
        expression: (T, Ke) float32.
        R: (T, 3, 3) float64. t: (T, 3) float64. scale: (T,) float64.
        vertices: (T, V, 3) float32 world metres.
        valid: (T,) bool.
        cameras: camera names of ``residual_px`` columns. residual_px: (T, C) float32.
        eye_gaze: (T, 2, 3) float32 world unit gaze (subject's left, right eye; NaN: not seen) or None.
    """

    model_name: str
    frames: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    R: np.ndarray
    t: np.ndarray
    scale: np.ndarray
    vertices: np.ndarray
    valid: np.ndarray
    cameras: tuple[str, ...] = ()
    residual_px: np.ndarray | None = None
    eye_gaze: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def frame(self, i: int) -> FrameFit:
        """The fit of the i-th row (not frame number; see ``frames``)."""
        res = {} if self.residual_px is None else {c: float(self.residual_px[i, k]) for k, c in enumerate(self.cameras)}
        return FrameFit(frame=int(self.frames[i]), identity=self.identity, expression=self.expression[i],
                        R=self.R[i], t=self.t[i], scale=float(self.scale[i]), vertices=self.vertices[i],
                        valid=bool(self.valid[i]), residual_px=MappingProxyType(res),
                        eye_gaze=None if self.eye_gaze is None else self.eye_gaze[i])


def save_fits(seq: FitSequence, path: Path, sync: bool = True) -> None:
    """Write ``seq`` to ``path`` (read it with :func:`load_fits`). The arrays are stored, not deflated: a take's
    vertices (float32 noise to zlib) shrank by 9 % for 0.23-0.30 s of zlib per 24 frames, and every reader (age,
    render, report, each worker) took 0.07 s to inflate them again (docs/fitting.md "Per-take and per-frame costs").
    ``sync=False``: no fsync, for a file in a stage's temporary folder (its commit flushes it)."""
    from ..executors.frames import save_npz

    save_npz(path, compress=False, sync=sync, model_name=np.array(seq.model_name), frames=seq.frames, identity=seq.identity,
             expression=seq.expression, R=seq.R, t=seq.t, scale=seq.scale, vertices=seq.vertices, valid=seq.valid,
             cameras=np.array(seq.cameras, dtype=str),
             residual_px=seq.residual_px if seq.residual_px is not None else np.zeros((len(seq.frames), 0)),
             **({} if seq.eye_gaze is None else {"eye_gaze": seq.eye_gaze}))


def load_fits(path: Path) -> FitSequence:
    path = Path(path)
    if not path.exists():
        raise FitError(f"{path} does not exist", hint="run the fit stage first: `reconstruct run <session>`")
    d = np.load(path, allow_pickle=False)
    cams = tuple(str(c) for c in d["cameras"])
    return FitSequence(model_name=str(d["model_name"]), frames=d["frames"], identity=d["identity"],
                       expression=d["expression"], R=d["R"], t=d["t"], scale=d["scale"], vertices=d["vertices"],
                       valid=d["valid"], cameras=cams, residual_px=d["residual_px"] if cams else None,
                       eye_gaze=d["eye_gaze"] if "eye_gaze" in d.files else None)
