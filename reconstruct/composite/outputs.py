"""Every file the composite stage writes goes through :class:`PlateWriter` (the one door; provenance is embedded
here, :mod:`reconstruct.provenance`).

Per output frame ``F`` (6 digits):

* ``plates/hero/F.png``: 16-bit RGB PNG, sRGB-encoded (``round(image * 65535)``; where the mask is 0 this is
  exactly ``plate * 257``);
* ``plates/hero/F.exr``: OpenEXR, half float, **linear** RGB (sRGB decoded), ZIP compression (lossless; encoded by
  :mod:`.exr`), or PIZ with ``composite.exr_compression=piz``;
* ``patches/F_face.png``: 16-bit RGBA crop around the face: RGB = the blended face ``B``, A = the mask;
* ``patches/F_mask.png``: 16-bit grey crop of the mask alone;
* ``patches/F.json``: the 2D transform placing the patch on the plate (pixel offset, OpenCV top-left origin, and
  the same as a Nuke ``Transform``/``Position`` translate with Nuke's bottom-left origin);
* ``preview.mp4``: plate | composite side by side (MPEG-4 Part 2 through OpenCV), at most 1920 px wide.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..render.shading import srgb_to_linear
from ..session import atomic_write_json
from . import CompositeCrop, CompositeResult, check_exr_compression

log = logging.getLogger(__name__)


def to_uint16(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint16 (``round(x * 65535)``; a uint8 value v stored as v / 255 in float32 gives v * 257)."""
    a = np.clip(np.asarray(image, np.float32), 0.0, 1.0)  # a new array: the steps below work in place
    a *= np.float32(65535.0)
    return np.rint(a, out=a).astype(np.uint16)


_LINEAR_LUT: np.ndarray | None = None


def plate_linear(plate: np.ndarray, half: bool = False) -> np.ndarray:
    """``srgb_to_linear(plate / 255)`` of a uint8 plate through a 256-entry table (the same float32 values, at the
    cost of a lookup: the EXR of a frame whose face is a small region); ``half=True``: those values as float16
    (what the EXR stores), looked up directly."""
    import cv2

    global _LINEAR_LUT
    if _LINEAR_LUT is None:
        _LINEAR_LUT = srgb_to_linear(np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float32)
    plate = np.asarray(plate, np.uint8)
    if half:  # OpenCV's LUT has no float16: look up the half floats' bits
        return cv2.LUT(plate, _LINEAR_LUT.astype(np.float16).view(np.uint16)).view(np.float16)
    return cv2.LUT(plate, _LINEAR_LUT)


_U16_LUT = (np.arange(256, dtype=np.uint16) * np.uint16(257))  # v -> v * 257 (equal high and low bytes)


def to_half(values: np.ndarray) -> np.ndarray:
    """float32 (H, W[, C]) with finite values (or NaN) -> float16, the same bits as ``astype(np.float16)`` (round to
    nearest even, subnormals, -0.0 and overflow to infinity included) by OpenCV's vectorised conversion (F16C): a
    1080p face region in 0.3-0.5 ms against numpy's 2.6-2.8 ms. OpenCV has no plain conversion in Python:
    ``1 * x + 0 * x + (-0.0)`` is ``x`` exactly for every finite ``x`` (not for infinities: ``0 * inf`` is NaN).
    Compared on every float32 of [0, 1]; tests/composite/test_writers.py keeps the half-way values."""
    import cv2

    a = np.asarray(values, np.float32)
    return np.asarray(cv2.addWeighted(a, 1.0, a, 0.0, -0.0, dtype=cv2.CV_16F), np.float16)


def _support(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1): the smallest box of ``alpha`` holding every pixel > 0 (None: the mask is empty)."""
    from ..retouch.roi import mask_box

    return mask_box(np.asarray(alpha) > 0)


def frame_arrays(result: CompositeResult | CompositeCrop, half: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The whole frame of a composite as written: (16-bit sRGB (H, W, 3) unsigned 16-bit **big-endian** (``>u2``,
    PNG's byte order), linear (H, W, 3) float32, or float16 with ``half``, each value the float32's rounded). For a
    :class:`CompositeCrop` the plate's pixels are converted exactly (``plate * 257``; the linear table) and only the
    mask's box of the region is computed (where ``alpha == 0`` a composite is ``plate / 255``, which converts to
    those same values): the same files as the whole-frame composite's."""
    import cv2

    if isinstance(result, CompositeResult):
        lin = srgb_to_linear(result.image)
        return to_uint16(result.image).astype(">u2"), lin.astype(np.float16) if half else lin
    # plate * 257 has equal high and low bytes: the little-endian table values read as big-endian are the same
    png = cv2.LUT(np.asarray(result.plate, np.uint8), _U16_LUT).view(">u2")
    lin = plate_linear(result.plate, half)
    box = _support(result.alpha) if result.image.size else None
    if box is not None:
        y0, y1, x0, x1 = box
        ox, oy = result.origin
        sl = slice(oy + y0, oy + y1), slice(ox + x0, ox + x1)
        image = result.image[y0:y1, x0:x1]
        png[sl] = to_uint16(image)
        lin[sl] = to_half(srgb_to_linear(image)) if half else srgb_to_linear(image)
    return png, lin


def patch_box(alpha: np.ndarray, margin: int = 16, place: tuple[int, int, int, int] | None = None
              ) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the mask's bounding box grown by ``margin`` px and clipped to the image. ``place``
    ``(x0, y0, W, H)``: ``alpha`` is a region at (x0, y0) of a W x H frame; the box is in frame pixels, clipped
    to the frame."""
    box = _support(alpha)
    if box is None:
        return None
    r0, r1, c0, c1 = box
    ox, oy, W, H = (0, 0, alpha.shape[1], alpha.shape[0]) if place is None else place
    x0, y0 = max(ox + c0 - margin, 0), max(oy + r0 - margin, 0)
    x1, y1 = min(ox + c1 + margin, W), min(oy + r1 + margin, H)
    return x0, y0, x1 - x0, y1 - y0


class PlateWriter:
    """Writes the composite stage's files.

    Args:
        plates_dir: folder of the hero plates (``out/plates/.<method>.tmp/hero`` while the stage runs).
        stage_dir: the stage's own folder (patches, preview).
        record: a ``reconstruct.provenance.ProvenanceRecord`` embedded in every PNG/EXR and added to the session
            manifest, or None to write plain files (tests, tools).
        session: the session (manifest), needed with ``record``.
        fps: preview frame rate.
        sync: fsync each file (``False`` when both folders are temporary ones that the stage commits with
            :func:`reconstruct.session.atomic_replace_dir`, which flushes them then).
        exr_compression: ``zip`` (:func:`.exr.encode_exr_half`) or ``piz`` (the OpenEXR package's writer,
            :func:`reconstruct.provenance.exr_with_provenance`); both lossless.
    """

    def __init__(self, plates_dir: Path, stage_dir: Path, record: Any = None, session: Any = None,
                 fps: float = 24.0, preview_width: int = 1920, sync: bool = True,
                 exr_compression: str = "zip") -> None:
        self.plates_dir, self.stage_dir = Path(plates_dir), Path(stage_dir)
        self.plates_dir.mkdir(parents=True, exist_ok=True)
        (self.stage_dir / "patches").mkdir(parents=True, exist_ok=True)
        self.record, self.session = record, session
        self.fps, self.preview_width = float(fps), int(preview_width)
        self.sync = bool(sync)
        self.exr_compression = check_exr_compression(exr_compression)
        self._video = None
        self.written: list[Path] = []
        #: ``{path: (sha256, bytes)}`` of every file written with ``record`` embedded: the manifest entries a driver
        #: can make without reading the files again (:func:`reconstruct.provenance.record_stage_outputs`)
        self.digests: dict[str, tuple[str, int]] = {}

    # -- the one place files are written -----------------------------------------------------------------------
    def _note(self, path: Path, data: bytes | None = None) -> None:
        import hashlib

        from ..provenance import record_output, sha256_file

        if self.record is not None:
            digest = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
            self.digests[str(path)] = (digest, len(data) if data is not None else path.stat().st_size)
            if self.session is not None:
                record_output(self.session, path, self.record, sha256=digest)
        self.written.append(path)

    def _png(self, path: Path, image: np.ndarray) -> None:
        from ..provenance import encode_png
        from ..session import atomic_write_bytes

        data = encode_png(image, self.record, str(path))  # the record in an iTXt chunk (none without a record)
        atomic_write_bytes(path, data, sync=self.sync)
        self._note(path, data)

    def _exr(self, path: Path, image: np.ndarray) -> None:
        from ..provenance import PROVENANCE_KEY, ProvenanceRecord, exr_with_provenance
        from ..session import atomic_write_bytes
        from .exr import encode_exr_half

        if self.exr_compression == "piz":  # the OpenEXR package writes the file; hashed from the file
            rec = self.record or ProvenanceRecord(method=None, stage="", plugins=(), settings={}, inputs=(),
                                                  tool_version="", created="", session="")  # plain file
            exr_with_provenance(path, image, rec, half=True, compression="PIZ", sync=self.sync)
            self._note(path)
            return
        strings = None if self.record is None else {PROVENANCE_KEY: self.record.to_json()}
        data = encode_exr_half(image, strings, str(path))
        atomic_write_bytes(path, data, sync=self.sync)
        self._note(path, data)

    # -- what the stage calls ----------------------------------------------------------------------------------
    def write_frame(self, frame: int, plate: np.ndarray, result: CompositeResult | CompositeCrop) -> None:
        """Plate PNG + EXR, patch and preview frame of one composited frame."""
        self.write_plate(frame, result)
        self.add_preview(preview_frame(plate, result, self.preview_width))

    def write_plate(self, frame: int, result: CompositeResult | CompositeCrop) -> None:
        """Plate PNG + EXR and patch of one frame, no preview (a worker of a distributed run writes these; the
        driver adds the frames of :func:`preview_frame` to the video in order with :meth:`add_preview`)."""
        stem = f"{frame:06d}"
        png, lin = frame_arrays(result, half=True)
        self._png(self.plates_dir / f"{stem}.png", png)
        self._exr(self.plates_dir / f"{stem}.exr", lin)
        self.write_patch(frame, result)

    def write_patch(self, frame: int, result: CompositeResult | CompositeCrop, margin: int = 16) -> dict | None:
        import cv2

        stem = f"{frame:06d}"
        if isinstance(result, CompositeCrop):
            H, W = result.plate.shape[:2]
            box = patch_box(result.alpha, margin, (*result.origin, W, H))
        else:
            H, W = result.alpha.shape
            box = patch_box(result.alpha, margin)
        if box is None:
            log.info("frame %d: empty mask, no patch", frame)
            return None
        x, y, w, h = box
        if isinstance(result, CompositeCrop):  # the region, and the plate (alpha 0) where the margin passes it
            # the plate's pixels exactly as to_uint16(plate / 255) gives them: plate * 257
            rgb = cv2.LUT(result.plate[y:y + h, x:x + w], _U16_LUT)
            a16 = np.zeros((h, w), np.uint16)
            (ox, oy), (rh, rw) = result.origin, result.alpha.shape
            x0, y0, x1, y1 = max(x, ox), max(y, oy), min(x + w, ox + rw), min(y + h, oy + rh)
            rgb[y0 - y:y1 - y, x0 - x:x1 - x] = to_uint16(result.face[y0 - oy:y1 - oy, x0 - ox:x1 - ox])
            a16[y0 - y:y1 - y, x0 - x:x1 - x] = to_uint16(result.alpha[y0 - oy:y1 - oy, x0 - ox:x1 - ox])
        else:
            rgb, a16 = to_uint16(result.face[y:y + h, x:x + w]), to_uint16(result.alpha[y:y + h, x:x + w])
        self._png(self.stage_dir / "patches" / f"{stem}_face.png", cv2.merge([rgb, a16]))  # RGBA, one pass
        self._png(self.stage_dir / "patches" / f"{stem}_mask.png", a16)
        info = {
            "frame": frame, "plate_size": [W, H], "patch_size": [w, h],
            "offset_px": [x, y],
            "matrix_patch_to_plate": [[1, 0, x], [0, 1, y], [0, 0, 1]],
            "nuke_translate": [x, H - y - h],
            "merge": "plate + alpha * (face - plate) (unpremultiplied face; premultiply for a Nuke Merge over)",
            "colorspace": "sRGB (16-bit PNG)",
        }
        atomic_write_json(self.stage_dir / "patches" / f"{stem}.json", info, sync=self.sync)
        self._note(self.stage_dir / "patches" / f"{stem}.json")
        return info

    def add_preview(self, frame: np.ndarray) -> None:
        """Append one (h, w, 3) uint8 BGR frame of :func:`preview_frame` to ``preview.mp4``."""
        import cv2

        size = (frame.shape[1], frame.shape[0])
        if self._video is None:
            path = self.stage_dir / "preview.mp4"
            self._video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not self._video.isOpened():
                log.warning("OpenCV cannot write %s (no MPEG-4 encoder); no preview video", path)
                self._video = False
        if self._video:
            self._video.write(frame)

    def close(self) -> None:
        if self._video:
            self._video.release()
            self.written.append(self.stage_dir / "preview.mp4")
        self._video = None

    def __enter__(self) -> "PlateWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 ``round(clip(x) * 255)`` (half to even) in the image's float type, on one copy
    worked in place: the preview's 8 bits."""
    a = np.clip(image, 0, 1)
    a *= 255
    return np.rint(a, out=a).astype(np.uint8)


def preview_frame(plate: np.ndarray, image: np.ndarray | CompositeResult | CompositeCrop, width: int = 1920
                  ) -> np.ndarray:
    """The preview video's frame: plate (uint8 RGB) | composite (float sRGB (H, W, 3), or a composite result)
    side by side, uint8 BGR, at most ``width`` px wide, even size: ``resize(cvtColor(plate | after, RGB2BGR),
    INTER_AREA)``. For a :class:`CompositeCrop` shrunk by whole factors (1080p: 2) that is computed from the plate
    shrunk once and the region's blocks only (area averaging of whole blocks is local: the same bytes, tested)."""
    import cv2

    h, w = plate.shape[:2]
    scale = min(1.0, width / (2 * w))
    size = (int(2 * w * scale) // 2 * 2, int(h * scale) // 2 * 2)
    kx, ky = (2 * w) // size[0], h // size[1]
    if isinstance(image, CompositeCrop) and kx * size[0] == 2 * w and ky * size[1] == h:
        small = (size[0] // 2, size[1])
        before = cv2.resize(plate, small, interpolation=cv2.INTER_AREA)
        after = before.copy()
        box = _support(image.alpha) if image.image.size else None
        if box is not None:  # the mask's box of the region (the plate elsewhere), grown to whole blocks
            r0, r1, c0, c1 = box
            x0, y0 = image.origin[0] + c0, image.origin[1] + r0
            rh, rw = r1 - r0, c1 - c0
            bx0, by0 = x0 // kx * kx, y0 // ky * ky
            bx1, by1 = -(-(x0 + rw) // kx) * kx, -(-(y0 + rh) // ky) * ky
            block = plate[by0:by1, bx0:bx1].copy()
            block[y0 - by0:y0 - by0 + rh, x0 - bx0:x0 - bx0 + rw] = _to_uint8(image.image[r0:r1, c0:c1])
            after[by0 // ky:by1 // ky, bx0 // kx:bx1 // kx] = cv2.resize(
                block, ((bx1 - bx0) // kx, (by1 - by0) // ky), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(np.concatenate([before, after], axis=1), cv2.COLOR_RGB2BGR)
    if isinstance(image, CompositeCrop):
        after = plate.copy()
        if image.image.size:
            after[image.slices] = _to_uint8(image.image)
    else:
        img = image.image if isinstance(image, CompositeResult) else image
        after = _to_uint8(img)
    frame = cv2.cvtColor(np.concatenate([plate, after], axis=1), cv2.COLOR_RGB2BGR)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
