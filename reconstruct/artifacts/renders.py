"""The render stage's result per output frame: the edited face drawn in hero-plate pixels.

File ``out/render/<frame:06d>.npz`` (:meth:`RenderedFace.path`): ``image`` (h, w, 3) sRGB in [0, 1] and
``coverage`` (h, w) in [0, 1] (where the edit defines the face), both 16-bit fixed point (:mod:`.codec`), optional
``exclude`` (h, w) bool (pixels the plate must keep: the performance's eyes) and ``skin`` (h, w) bool, ``exact``
(bool): ``coverage`` is the final alpha of an edit made of the plate itself (no erosion, feather or colour match),
and ``origin`` (2,) int: where the crop's top-left pixel lies on the hero plate (absent: (0, 0), plate-sized).
Stored uncompressed (the composite stage reads it once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .codec import decode_unit, encode_unit


@dataclass(frozen=True, slots=True, eq=False)
class RenderedFace:
    """One frame's rendered (or passed-through image-space) edit; see the module docstring. ``image`` (h, w, 3)
    float32, ``coverage`` (h, w) float32, ``exclude``/``skin`` (h, w) bool or None: a crop of the hero plate whose
    top-left pixel is ``origin`` ``(x0, y0)`` (plate-sized with (0, 0))."""

    image: np.ndarray
    coverage: np.ndarray
    exclude: np.ndarray | None = None
    skin: np.ndarray | None = None
    exact: bool = False
    origin: tuple[int, int] = (0, 0)

    @staticmethod
    def path(stage_dir: Path, frame: int) -> Path:
        return Path(stage_dir) / f"{int(frame):06d}.npz"

    def save(self, path: Path, sync: bool = True) -> tuple[str, int]:
        """Write the render (``sync=False`` inside a stage's temporary folder: see
        :func:`reconstruct.session.atomic_path`); returns the file's ``(sha256 hex, bytes)``
        (:func:`reconstruct.executors.frames.save_npz`)."""
        from ..executors.frames import save_npz

        arrays = {"image": encode_unit(self.image), "coverage": encode_unit(self.coverage)}
        if self.exclude is not None:
            arrays["exclude"] = np.asarray(self.exclude, bool)
        if self.skin is not None:
            arrays["skin"] = np.asarray(self.skin, bool)
        if self.exact:
            arrays["exact"] = np.asarray(True)
        if tuple(self.origin) != (0, 0):
            arrays["origin"] = np.asarray(self.origin, np.int64)
        return save_npz(path, compress=False, sync=sync, **arrays)

    @classmethod
    def load(cls, path: Path) -> "RenderedFace":
        with np.load(path, allow_pickle=False) as d:
            get = lambda k: d[k] if k in d.files else None  # noqa: E731
            return cls(image=decode_unit(d["image"]), coverage=decode_unit(d["coverage"]), exclude=get("exclude"),
                       skin=get("skin"), exact=bool(d["exact"]) if "exact" in d.files else False,
                       origin=tuple(int(v) for v in d["origin"]) if "origin" in d.files else (0, 0))
