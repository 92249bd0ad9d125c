"""The pictures the report's sections show, made in the one pass over the take (:mod:`.scan`) from the plate and
output it reads anyway, so that no section decodes a 1080p frame again.

A :class:`ThumbPlan` says which :class:`Thumb` each frame needs (the flag thumbnails of every frame, since which
frames are flagged is known only after the pass; the plates' and the methods' strips of their three frames); the
pass encodes them exactly as the sections would (:func:`thumb_uri`: the same crop, the same JPEG data URI) and a
:class:`ThumbStore` keeps them in an anonymous temporary file (memory does not grow with the take: ~20 KB of disk
per frame). A section whose picture is not in the store reads the frame as before.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Thumb:
    """One picture of a frame: ``name`` (unique per frame), ``source`` ``"plate"`` or ``"output"``, ``crop``: the
    face box (:func:`crop_box`) or the whole frame, ``max_side``: its longer side at most, px."""

    name: str
    source: str
    crop: bool
    max_side: int


@dataclass(frozen=True, slots=True)
class ThumbPlan:
    """``every``: the pictures of every frame; ``some``: (frame, pictures) of particular frames."""

    every: tuple[Thumb, ...] = ()
    some: tuple[tuple[int, tuple[Thumb, ...]], ...] = ()

    def for_frame(self, frame: int) -> tuple[Thumb, ...]:
        extra = tuple(t for f, ts in self.some if f == int(frame) for t in ts)
        return self.every + tuple(t for t in extra if t not in self.every)


def crop_box(img: np.ndarray, box: tuple[int, int, int, int] | None, pad: float = 0.35) -> np.ndarray:
    """The square around the face box (x, y, w, h) grown by ``pad`` on each side, clipped to the image; the whole
    image without a box."""
    if box is None:
        return img
    x, y, w, h = box
    H, W = img.shape[:2]
    side = int(max(w, h) * (1 + 2 * pad))
    cx, cy = x + w // 2, y + h // 2
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    return img[y0:min(H, y0 + side), x0:min(W, x0 + side)]


def thumb_uri(thumb: Thumb, image: np.ndarray, box: tuple[int, int, int, int] | None) -> str:
    """``thumb`` of ``image`` (RGB uint8, the plate or the output as ``thumb.source`` says) as a JPEG data URI."""
    from .page import image_data_uri

    return image_data_uri(crop_box(image, box) if thumb.crop else image, thumb.max_side)


def make_thumbs(thumbs: tuple[Thumb, ...], plate: np.ndarray, output: np.ndarray,
                box: tuple[int, int, int, int] | None) -> dict[str, str]:
    """name -> data URI of each of ``thumbs`` of one frame."""
    return {t.name: thumb_uri(t, plate if t.source == "plate" else output, box) for t in thumbs}


class ThumbStore:
    """The pass's pictures, (frame, name) -> data URI, kept in an anonymous temporary file (deleted when the store
    is closed or collected); only their offsets are held in memory."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self._index: dict[tuple[int, str], tuple[int, int]] = {}

    def put(self, frame: int, uris: dict[str, str] | None) -> None:
        for name, uri in (uris or {}).items():
            data = uri.encode("ascii")
            self._file.seek(0, 2)
            self._index[(int(frame), name)] = (self._file.tell(), len(data))
            self._file.write(data)

    def get(self, frame: int, name: str) -> str | None:
        at = self._index.get((int(frame), name))
        if at is None:
            return None
        self._file.seek(at[0])
        return self._file.read(at[1]).decode("ascii")

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        self._file.close()
