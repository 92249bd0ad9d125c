"""The render stage's result per output frame: the edited face drawn in hero-plate pixels.

File ``out/render/<frame:06d>.npz`` (:meth:`RenderedFace.path`): ``image`` (H, W, 3) float32 sRGB in [0, 1],
``coverage`` (H, W) float32 in [0, 1] (where the edit defines the face), optional ``exclude`` (H, W) bool (pixels
the plate must keep: the performance's eyes) and ``skin`` (H, W) bool, and ``exact`` (bool): ``coverage`` is the
final alpha of an edit made of the plate itself (no erosion, feather or colour match).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class RenderedFace:
    """One frame's rendered (or passed-through image-space) edit; see the module docstring."""

    image: np.ndarray
    coverage: np.ndarray
    exclude: np.ndarray | None = None
    skin: np.ndarray | None = None
    exact: bool = False

    @staticmethod
    def path(stage_dir: Path, frame: int) -> Path:
        return Path(stage_dir) / f"{int(frame):06d}.npz"

    def save(self, path: Path) -> None:
        from ..executors.frames import save_npz

        arrays = {"image": np.asarray(self.image, np.float32), "coverage": np.asarray(self.coverage, np.float32)}
        if self.exclude is not None:
            arrays["exclude"] = np.asarray(self.exclude, bool)
        if self.skin is not None:
            arrays["skin"] = np.asarray(self.skin, bool)
        if self.exact:
            arrays["exact"] = np.asarray(True)
        save_npz(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> "RenderedFace":
        with np.load(path, allow_pickle=False) as d:
            get = lambda k: d[k] if k in d.files else None  # noqa: E731
            return cls(image=d["image"], coverage=d["coverage"], exclude=get("exclude"), skin=get("skin"),
                       exact=bool(d["exact"]) if "exact" in d.files else False)
