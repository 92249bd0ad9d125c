"""The detect stage's result: 2D face landmarks of every frame set and camera.

File ``out/detect/landmarks.npz`` (:data:`FILE`): ``frames`` (T,) int32 output frame numbers (rows of sync.csv),
``cameras`` (C,) names, ``points`` (T, C, N, 2) float32 distorted pixel coordinates (NaN where nothing was
detected or the camera had no frame), ``confidence`` (T, C, N) float32 in [0, 1], ``found`` (T, C) bool, the
``scheme`` (``mediapipe478``, ``ibug68``) and ``detector`` names, and ``detector_options``: the options the detector
was built with (JSON; ``{}``: its defaults), so that a later stage can tell whether a detector it builds would find
the same landmarks. Files written before it was recorded have none (``Detections.detector_options`` is None).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from ..errors import StageError

FILE = "landmarks.npz"


@dataclass(frozen=True, slots=True)
class HeroLandmarks:
    """One camera's landmarks per output frame (where a face was found).

    Attributes:
        scheme: landmark scheme name.
        points: output frame -> (N, 2) float64 distorted pixels.
    """

    scheme: str
    points: Mapping[int, np.ndarray]

    def only(self, frames) -> "HeroLandmarks":
        """The same for a subset of frames (what one work item needs)."""
        return HeroLandmarks(self.scheme, {f: self.points[f] for f in frames if f in self.points})


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """Landmarks of T frame sets seen by C cameras (see the module docstring for shapes and units)."""

    frames: np.ndarray
    cameras: tuple[str, ...]
    points: np.ndarray
    confidence: np.ndarray
    found: np.ndarray
    scheme: str
    detector: str
    detector_options: Mapping[str, Any] | None = None  # how the detector was built; None: not recorded

    def __post_init__(self) -> None:
        T, C = len(self.frames), len(self.cameras)
        if self.points.shape[:2] != (T, C) or self.points.shape[-1] != 2:
            raise ValueError(f"detections: points {self.points.shape} do not match {T} frames x {C} cameras")
        if self.confidence.shape != self.points.shape[:3] or self.found.shape != (T, C):
            raise ValueError("detections: confidence/found do not match the points")

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def n_landmarks(self) -> int:
        return int(self.points.shape[2])

    def camera_index(self, camera: str) -> int | None:
        return self.cameras.index(camera) if camera in self.cameras else None

    def row(self, frame: int) -> int | None:
        """Index of output frame ``frame`` along the first axis, or None."""
        hit = np.flatnonzero(self.frames == frame)
        return int(hit[0]) if hit.size else None

    def select(self, rows=None, cameras=None) -> "Detections":
        """A subset: ``rows`` (indices along T) and/or ``cameras`` (names, in the order wanted)."""
        r = np.arange(len(self)) if rows is None else np.asarray(rows)
        k = list(range(len(self.cameras))) if cameras is None else [self.cameras.index(c) for c in cameras]
        return Detections(self.frames[r], tuple(self.cameras[i] for i in k), self.points[r][:, k],
                          self.confidence[r][:, k], self.found[r][:, k], self.scheme, self.detector,
                          self.detector_options)

    def for_camera(self, camera: str) -> HeroLandmarks | None:
        """``camera``'s landmarks per frame where it found a face (None when the camera is not in the result)."""
        k = self.camera_index(camera)
        if k is None:
            return None
        pts = {int(f): np.asarray(self.points[i, k], np.float64) for i, f in enumerate(self.frames)
               if self.found[i, k]}
        return HeroLandmarks(self.scheme, MappingProxyType(pts))

    def save(self, path: Path) -> None:
        extra = ({} if self.detector_options is None else
                 {"detector_options": np.array(json.dumps(dict(self.detector_options), sort_keys=True))})
        from ..executors.frames import save_npz

        # stored, not deflated: zlib took 0.05 s per 96 frames to save 30 % of 1.6 MB, and each reader 7 ms back
        save_npz(Path(path), compress=False, frames=np.asarray(self.frames, np.int32),
                 cameras=np.array(self.cameras, dtype=str), points=self.points, confidence=self.confidence,
                 found=self.found, scheme=np.array(self.scheme), detector=np.array(self.detector), **extra)

    @classmethod
    def load(cls, path: Path) -> "Detections":
        path = Path(path)
        if not path.exists():
            raise StageError(f"{path} does not exist", hint="run the detect stage first")
        with np.load(path, allow_pickle=False) as d:
            options = json.loads(str(d["detector_options"])) if "detector_options" in d.files else None
            return cls(frames=d["frames"], cameras=tuple(str(c) for c in d["cameras"]), points=d["points"],
                       confidence=d["confidence"], found=d["found"], scheme=str(d["scheme"]),
                       detector=str(d["detector"]), detector_options=options)
