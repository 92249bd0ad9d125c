"""Compositing an edited face back onto the hero plate.

The :class:`reconstruct.components.Compositor` contract (what ``register_compositors`` returns): a class with a
``name`` and

    blend(plate, face, alpha) -> blended           # all (H, W[, 3]) float32, sRGB in [0, 1]

returning the blended face ``B``. The host (:func:`composite_face`) builds ``alpha`` (erode, feather, optional skin
limit; :mod:`.mask`; the feather is at least ``feather_frac`` of the face's size), applies colour transfer
(:mod:`.color`; the default ``gain`` is measured on the ring along the mask boundary) to the face, calls the
compositor, and returns ``plate + alpha * (B - plate)`` where ``alpha > 0``; every pixel with ``alpha == 0`` keeps
the plate's exact value (bit-exact in the 16-bit PNG: ``plate_uint8 * 257``). Built-in compositors: ``alpha`` (feathered alpha),
``laplacian`` (multi-band, default) and ``poisson`` (seamless cloning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from ..errors import ConfigError, RenderError
from ..options import option
from .blend import alpha_blend, laplacian_blend, poisson_blend
from .color import METHODS as COLOR_METHODS
from .color import transfer_color
from .mask import face_mask, skin_from_color

EXR_COMPRESSIONS = ("zip", "piz")  # the plates' EXR: ours (ISA-L ZIP, .exr) or the OpenEXR package's PIZ

__all__ = ["CompositeSettings", "EXR_COMPRESSIONS", "CompositeResult", "CompositeCrop", "composite_face", "composite_region",
           "copy_where", "check_exr_compression",
           "context_px", "face_mask", "transfer_color",
           "feather_width", "boundary_ring", "AlphaCompositor", "LaplacianCompositor", "PoissonCompositor",
           "BUILTIN_COMPOSITORS"]


def check_exr_compression(name: str) -> str:
    """``name`` when it is one of :data:`EXR_COMPRESSIONS`, else ConfigError listing them: the one check of the
    name, for the settings (``composite.exr_compression``) and for :class:`.outputs.PlateWriter`."""
    if name not in EXR_COMPRESSIONS:
        raise ConfigError(f"composite.exr_compression={name}: unknown; use one of {', '.join(EXR_COMPRESSIONS)}",
                          hint="zip: ours, the faster; piz: the OpenEXR package's, smaller files on smooth footage")
    return name


@dataclass(frozen=True, slots=True)
class CompositeSettings:
    """How to composite (parsed once from ``--option composite.KEY=VALUE``).

    Attributes:
        compositor: compositor name (``alpha``, ``laplacian``, ``poisson`` or a plugin's).
        erode_px: pixels the rendered face region shrinks before feathering.
        feather_px: minimum width in pixels of the soft edge (inside the eroded region).
        feather_frac: width of the soft edge as a fraction of the face's size ``sqrt(covered pixels)``; the
            feather used is ``max(feather_px, feather_frac * size)`` so it scales with the shot (0: fixed pixels).
        color: colour transfer: ``gain`` (per-channel gain matched on the boundary ring), ``none``, ``lab``,
            ``mean`` or ``histogram`` (see :mod:`.color`).
        gain_falloff: with ``color=gain``, the gain is fully applied at the mask boundary and fades to 1 (the face
            as rendered) over this many feather widths inwards, so an age edit that really changes the skin tone
            keeps it in the face's interior; <= 0 applies the gain to the whole face.
        skin_only: limit the mask to skin (the model's ``skin`` region where rendered, else a colour classifier).
        levels: Laplacian pyramid levels.
        keep_eyes: where the edit does not say which pixels the plate keeps (image-space methods: FRAN,
            deepfake), keep the plate inside the lid apertures the landmark detector found on it
            (:mod:`.eyes`), so that gaze, blinks and catch-lights stay the actor's own.
        exr_compression: the plates' EXR compression, both lossless: ``zip`` (encoded here with ISA-L,
            :mod:`.exr`; about half PIZ's time) or ``piz`` (the OpenEXR package's wavelet coder: smaller files on
            smooth footage, 1.2-1.9x smaller measured, at about twice the time).
    """

    compositor: str = option("laplacian", "compositor: alpha, laplacian, poisson or a plugin's")
    erode_px: int = option(3, "pixels the rendered face region shrinks before feathering")
    feather_px: int = option(8, "minimum width of the soft edge, pixels")
    feather_frac: float = option(0.15, "width of the soft edge as a fraction of the face's size, in [0, 1]")
    color: str = option("gain", f"colour transfer: {', '.join(COLOR_METHODS)}")
    gain_falloff: float = option(2.0, "with color=gain: feather widths over which the gain fades to 1 inwards "
                                      "(<= 0: the whole face)")
    skin_only: bool = option(False, "limit the mask to skin")
    levels: int = option(5, "Laplacian pyramid levels")
    keep_eyes: bool = option(True, "keep the plate inside the lid apertures found on it (image-space methods)")
    exr_compression: str = option("zip", "the plates' EXR compression (lossless): zip (fast) or piz (smaller files "
                                         "on smooth footage, about twice the encoding time)")

    def __post_init__(self) -> None:
        if self.color not in COLOR_METHODS:
            raise ValueError(f"composite.color={self.color}: unknown; use one of {', '.join(COLOR_METHODS)}")
        if self.erode_px < 0 or self.feather_px < 0 or not 0.0 <= self.feather_frac <= 1.0 or self.levels < 1:
            raise ValueError("composite.erode_px and composite.feather_px must be >= 0, composite.feather_frac in "
                             "[0, 1], composite.levels >= 1")
        check_exr_compression(self.exr_compression)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], prefix: str = "composite.") -> "CompositeSettings":
        """From ``{"composite.KEY": text}`` (the strict option parser, :mod:`reconstruct.options`)."""
        from ..options import parse_settings

        ns = prefix.rstrip(".")
        return parse_settings(cls, {k[len(prefix):]: v for k, v in options.items() if k.startswith(prefix)}, ns)


@dataclass(frozen=True, slots=True, eq=False)
class CompositeResult:
    """One composited frame.

    Attributes:
        image: (H, W, 3) float32 sRGB in [0, 1]; equals ``plate / 255`` (float32) exactly where ``alpha == 0``.
        alpha: (H, W) float32 in [0, 1], the mask actually used.
        face: (H, W, 3) float32 sRGB, the compositor's blended face ``B`` (colour transfer applied): the
            foreground of a Nuke-style ``plate + alpha * (B - plate)`` merge (patch export).
    """

    image: np.ndarray
    alpha: np.ndarray
    face: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class CompositeCrop:
    """One composited frame as the plate plus the region the edit changed (what the composite stage computes:
    the face's region, not the frame).

    Attributes:
        plate: (H, W, 3) uint8 RGB hero plate (the frame everywhere outside the region).
        origin: ``(x0, y0)`` pixels of the region's top-left corner on the plate.
        image: (h, w, 3) float32 sRGB in [0, 1], the composite in the region (0 x 0: the frame is the plate); equals
            ``plate / 255`` (float32) exactly where ``alpha == 0`` (the writers convert only the mask's box).
        alpha: (h, w) float32 in [0, 1], the mask used (0 outside the region).
        face: (h, w, 3) float32 sRGB, the blended face ``B`` in the region.
    """

    plate: np.ndarray
    origin: tuple[int, int]
    image: np.ndarray
    alpha: np.ndarray
    face: np.ndarray

    @property
    def slices(self) -> tuple[slice, slice]:
        """``frame[crop.slices]`` is the region."""
        x0, y0 = self.origin
        h, w = self.alpha.shape[:2]
        return slice(y0, y0 + h), slice(x0, x0 + w)

    def on_plate(self) -> CompositeResult:
        """The whole frame as a :class:`CompositeResult` (``plate / 255`` outside the region)."""
        pf = self.plate.astype(np.float32) / np.float32(255.0)
        image, face = pf.copy(), pf.copy()
        alpha = np.zeros(self.plate.shape[:2], np.float32)
        sl = self.slices
        image[sl], face[sl], alpha[sl] = self.image, self.face, self.alpha
        return CompositeResult(image=image, alpha=alpha, face=face)


class AlphaCompositor:
    """Feathered alpha blend."""

    name: ClassVar[str] = "alpha"

    def blend(self, plate: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        return alpha_blend(plate, face, alpha)


class LaplacianCompositor:
    """Laplacian-pyramid (multi-band) blend."""

    name: ClassVar[str] = "laplacian"
    levels: int = 5

    def blend(self, plate: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        return laplacian_blend(plate, face, alpha, levels=self.levels)


class PoissonCompositor:
    """Poisson blend (seamless cloning, float precision)."""

    name: ClassVar[str] = "poisson"

    def blend(self, plate: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        return poisson_blend(plate, face, alpha)


BUILTIN_COMPOSITORS = (AlphaCompositor, LaplacianCompositor, PoissonCompositor)


def feather_width(coverage: np.ndarray, settings: CompositeSettings) -> int:
    """Feather width in pixels for a face covering ``coverage`` (H, W): ``max(feather_px, feather_frac * size)``
    with ``size = sqrt(pixels with coverage > 0.5)``, so a close-up gets a proportionally soft edge."""
    size = float(np.sqrt(np.count_nonzero(np.asarray(coverage) > 0.5)))
    return int(max(settings.feather_px, round(settings.feather_frac * size)))


def boundary_ring(alpha: np.ndarray, min_px: int = 3) -> np.ndarray:
    """(H, W) bool ring just inside the mask boundary where the face meets the plate: the feather band
    ``0 < alpha < 1``, or the ``min_px`` outermost pixels of the support when there is no feather."""
    import cv2

    a = np.asarray(alpha, np.float32)
    ring = (a > 0) & (a < 1)
    if np.count_nonzero(ring) < 20:
        m = (a > 0).astype(np.uint8)
        inner = cv2.erode(m, np.ones((2 * min_px + 1, 2 * min_px + 1), np.uint8), borderValue=0)
        ring = (m > 0) & (inner == 0)
    return ring


def _boundary_gain(face: np.ndarray, plate: np.ndarray, alpha: np.ndarray, falloff_px: float) -> np.ndarray:
    """``face`` times the ring gain (:func:`.color.ring_gain` on :func:`boundary_ring`), fully at the support's edge
    and fading (smoothstep of the distance inwards) to no change at ``falloff_px``; everywhere when
    ``falloff_px <= 0``."""
    import cv2

    from .color import ring_gain

    face = np.asarray(face, np.float32)
    gain = ring_gain(face, plate, boundary_ring(alpha))
    if gain is None:
        return face
    if falloff_px <= 0:
        return np.clip(face * gain, 0.0, 1.0)
    dist = cv2.distanceTransform((np.asarray(alpha) > 0).astype(np.uint8), cv2.DIST_L2, 5)
    t = np.clip(dist / float(falloff_px), 0.0, 1.0)
    w = (1.0 - t * t * (3.0 - 2.0 * t)).astype(np.float32)[..., None]
    return np.clip(face * (1.0 + w * (gain - 1.0)), 0.0, 1.0)


def context_px(settings: CompositeSettings, compositor: Any) -> int:
    """How far past an edit's crop the compositor must see the plate: a multi-band blend's pyramid reaches about
    ``2 ** (levels + 1)`` px (its 5-tap filters, down and up; twice that as margin), every other compositor a few
    pixels (the distance transform of the feather and a Poisson solve's border need one)."""
    if hasattr(compositor, "levels"):
        return 2 ** (int(settings.levels) + 2)
    return 8


def _grid(settings: CompositeSettings, compositor: Any) -> int:
    """The working region starts on multiples of this: a multi-band blend's pyramid then samples the same pixels
    as on the whole frame (each pyrDown keeps the even ones)."""
    return 2 ** max(int(settings.levels) - 1, 0) if hasattr(compositor, "levels") else 1


def composite_region(plate: np.ndarray, face: np.ndarray, coverage: np.ndarray, settings: CompositeSettings,
                     compositor: Any, exclude: np.ndarray | None = None, skin: np.ndarray | None = None,
                     alpha: np.ndarray | None = None, origin: tuple[int, int] = (0, 0)) -> "CompositeCrop":
    """:func:`composite_face` of an edit that is a crop of the plate, computed on that crop only (grown by
    :func:`context_px` for a compositor that needs the plate around it; not at all for a ready ``alpha``).

    ``face`` (h, w, 3), ``coverage`` (h, w) and the optional ``exclude``/``skin``/``alpha`` (h, w) lie on the
    (H, W, 3) uint8 ``plate`` with their top-left pixel at ``origin = (x0, y0)``; outside the crop the edit has
    coverage 0 (the plate). The result is the composite of the working region, with its own origin
    (:class:`CompositeCrop`); everything outside it is the plate.
    """
    plate = np.asarray(plate)
    if plate.dtype != np.uint8 or plate.ndim != 3 or plate.shape[2] != 3:
        raise RenderError(f"composite: plate must be (H, W, 3) uint8, got {plate.shape} {plate.dtype}")
    cov = np.asarray(coverage)
    h, w = cov.shape[:2] if cov.ndim == 2 else (-1, -1)
    x0, y0 = (int(v) for v in origin)
    H, W = plate.shape[:2]
    if np.shape(face) != (h, w, 3) or x0 < 0 or y0 < 0 or x0 + w > W or y0 + h > H:
        raise RenderError(f"composite: face {np.shape(face)} / coverage {cov.shape} at {tuple(origin)} do not lie "
                          f"on the plate {plate.shape}", hint="render at the hero camera's image size")
    if h == 0 or w == 0:
        return CompositeCrop(plate, (0, 0), np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32),
                             np.zeros((0, 0, 3), np.float32))
    pad = 0 if alpha is not None else context_px(settings, compositor)
    g = 1 if alpha is not None else _grid(settings, compositor)
    bx0, by0 = max(x0 - pad, 0) // g * g, max(y0 - pad, 0) // g * g
    bx1, by1 = min(x0 + w + pad, W), min(y0 + h + pad, H)
    inner = (slice(y0 - by0, y0 - by0 + h), slice(x0 - bx0, x0 - bx0 + w))
    shape = (by1 - by0, bx1 - bx0)

    def grow(a):  # the crop's array on the working region (0 = the plate's, outside the crop)
        if a is None or (by0, bx0, by1, bx1) == (y0, x0, y0 + h, x0 + w):
            return a
        a = np.asarray(a)
        out = np.zeros(shape + a.shape[2:], a.dtype)
        out[inner] = a
        return out

    res = _composite(plate[by0:by1, bx0:bx1], grow(np.asarray(face, np.float32)), grow(cov), settings, compositor,
                     grow(exclude), grow(skin), grow(alpha))
    return CompositeCrop(plate, (bx0, by0), res.image, res.alpha, res.face)


def composite_face(plate: np.ndarray, face: np.ndarray, coverage: np.ndarray, settings: CompositeSettings,
                   compositor: Any, exclude: np.ndarray | None = None, skin: np.ndarray | None = None,
                   alpha: np.ndarray | None = None, origin: tuple[int, int] = (0, 0)) -> CompositeResult:
    """Composite ``face`` onto ``plate``.

    Args:
        plate: (H, W, 3) uint8 RGB hero plate.
        face: (h, w, 3) float32 sRGB in [0, 1], the edited face (meaningful where ``coverage`` > 0.5): plate-sized,
            or a crop of the plate whose top-left pixel is ``origin`` (see :func:`composite_region`).
        coverage: (h, w) float in [0, 1], where the face is defined (render coverage or a method's mask).
        settings: mask, colour and compositor settings.
        compositor: an object with ``blend(plate, face, alpha)`` (see module docstring).
        exclude: (h, w) mask of pixels that must keep the plate (e.g. eyes), or None.
        skin: (h, w) skin mask used when ``settings.skin_only`` (None: colour classifier on the plate).
        alpha: a ready alpha (skips mask building), or None.
        origin: ``(x0, y0)`` of the crop on the plate.

    Returns the whole frame (:meth:`CompositeCrop.on_plate` of :func:`composite_region`).
    """
    return composite_region(plate, face, coverage, settings, compositor, exclude=exclude, skin=skin, alpha=alpha,
                            origin=origin).on_plate()


def copy_where(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> None:
    """``dst[mask] = src[mask]`` in place, for (H, W[, C]) arrays of one shape and dtype and an (H, W) bool
    ``mask``: ``np.copyto(dst, src, where=mask[..., None])``, by OpenCV's masked copy where the arrays allow it
    (contiguous, at most 4 channels: ~5x faster on a face's region, the same values)."""
    import cv2

    mask = np.asarray(mask, bool)
    if (dst.size and dst.shape == src.shape and dst.dtype == src.dtype and dst.ndim in (2, 3)
            and (dst.ndim == 2 or dst.shape[2] <= 4) and dst.flags.c_contiguous and mask.flags.c_contiguous
            and mask.shape == dst.shape[:2]):
        res = cv2.copyTo(src, mask.view(np.uint8), dst)  # into dst (a contiguous array of its type and size)
        if res is not dst:  # pragma: no cover - OpenCV allocated a new array after all
            np.copyto(dst, res)
        return
    np.copyto(dst, src, where=mask[..., None] if dst.ndim == 3 else mask)


def _composite(plate: np.ndarray, face: np.ndarray, coverage: np.ndarray, settings: CompositeSettings,
               compositor: Any, exclude: np.ndarray | None, skin: np.ndarray | None,
               alpha: np.ndarray | None) -> CompositeResult:
    """The composite of equally sized arrays (a whole frame or a region of it)."""
    if face.shape != plate.shape or coverage.shape != plate.shape[:2]:
        raise RenderError(f"composite: face {face.shape} / coverage {coverage.shape} do not match the plate "
                          f"{plate.shape}", hint="render at the hero camera's image size")
    plate_f = plate.astype(np.float32) / np.float32(255.0)
    if alpha is None:
        if settings.skin_only and skin is None:
            skin = skin_from_color(plate)
        alpha = face_mask(coverage, settings.erode_px, feather_width(coverage, settings), exclude=exclude,
                          skin=skin if settings.skin_only else None)
    alpha = np.asarray(alpha, np.float32)
    region = alpha > 0
    if settings.color == "gain":
        face_c = _boundary_gain(face, plate_f, alpha, settings.gain_falloff * feather_width(coverage, settings))
    else:
        face_c = transfer_color(face, plate_f, region, region, settings.color)
    # outside its coverage the face is undefined (a render is black there): give the compositor the plate instead,
    # so that a multi-band blend's coarse levels do not pull black (or whatever) across the boundary.
    defined = np.asarray(coverage) > 0.5
    if exclude is not None:
        defined &= ~(np.asarray(exclude) > 0.5)
    face_c = np.array(face_c, np.float32)  # a copy (never the caller's array), the plate where undefined
    copy_where(face_c, plate_f, ~defined)
    if hasattr(compositor, "levels"):
        compositor.levels = settings.levels
    blended = np.asarray(compositor.blend(plate_f, face_c, alpha), np.float32)
    if blended.shape != plate_f.shape:
        raise RenderError(f"compositor {getattr(compositor, 'name', compositor)!r} returned {blended.shape}, "
                          f"expected {plate_f.shape}")
    # plate + alpha * (B - plate) where alpha > 0, the plate's exact values elsewhere (in place: the same values)
    out = blended - plate_f
    out *= alpha[..., None]
    out += plate_f
    np.clip(out, 0.0, 1.0, out=out)
    copy_where(out, plate_f, ~region)
    return CompositeResult(image=out, alpha=alpha, face=np.clip(blended, 0.0, 1.0))
