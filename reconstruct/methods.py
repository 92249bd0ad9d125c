"""The aging-method contract: what a method plugin receives and returns.

A method is a class registered through ``register_aging_methods``. It declares its options as a frozen ``Settings``
dataclass (``--option <name>.KEY=VALUE``, parsed once by the engine, :mod:`reconstruct.options`; the instance is
``ctx.settings``). The age stage builds it with no arguments, calls ``prepare(ctx)`` once (train or fit its own
assets; cache them under ``ctx.work_dir`` keyed by ``settings(ctx)``) and then ``apply(ctx, frame)`` for every
output frame. A method edits the face either in image
space (FRAN, deepfake: an RGB image and a mask in hero-plate pixels) or in geometry/texture space (digital human:
world-space vertices and albedo for the render stage to draw). The composite stage pastes either kind back.

Methods whose output shows a different-looking person (``identity_changing = True``) run only when
``session.toml`` holds a consent record covering them (see :func:`check_consent`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Literal, Mapping

import numpy as np

from .errors import ConsentError, MethodError

if TYPE_CHECKING:  # pragma: no cover
    from .camera import CameraModel
    from .executors.resources import Resources
    from .fitting.result import FitSequence, FrameFit
    from .plugins import Components
    from .progress import Progress
    from .session import Session


@dataclass(frozen=True, slots=True, eq=False)
class FrameInput:
    """One output frame as a method sees it.

    Attributes:
        frame: output frame number (row of sync.csv).
        plate: (H, W, 3) uint8 RGB hero plate.
        fit: the frame's 3DMM fit, or None when the pipeline ran without a fit.
        hero: the calibrated hero camera (OpenCV convention, metres), or None.
        witnesses: camera name -> (H', W') or (H', W', 3) uint8 witness images of the same frame set (may be empty).
    """

    frame: int
    plate: np.ndarray
    fit: "FrameFit | None" = None
    hero: "CameraModel | None" = None
    witnesses: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, eq=False)
class FaceEdit:
    """A method's result for one frame.

    Attributes:
        frame: output frame number.
        kind: ``"image"``: ``image`` and ``mask`` are set; ``"mesh"``: ``vertices`` (and albedo) are set and the
            render stage draws them through the hero camera.
        image: (h, w, 3) float32 sRGB in [0, 1]: the edited face (only meaningful under mask), a crop of the hero
            plate whose top-left pixel is ``origin`` (plate-sized with the default origin (0, 0)).
        mask: (h, w) float32 in [0, 1], same crop: where ``image`` replaces the plate (before the compositor's
            feathering); zero everywhere outside the crop.
        vertices: (V, 3) float32 world-frame vertices in metres (same topology as the session's face model).
        vertex_albedo: (V, 3) float32 linear RGB albedo in [0, 1], or None.
        albedo_texture: (S, S, 3) float32 linear RGB UV texture in [0, 1] (model's UV layout), or None.
        keep: (h, w) bool, same crop, image edits only: the pixels that must show the plate, or None to let the compositor
            keep the plate's eyes (it finds their lid apertures). An edit that moves the eyes itself (a warp of the
            plate) passes all-False: the plate's eyes are then where the edit put them.
        blend: image edits: ``"composite"`` (the compositor erodes and feathers ``mask``, matches colour and blends)
            or ``"exact"`` (``mask`` is the final alpha, used as is: for an edit made of the plate itself, already
            seamless, which any feather would only blur or double).
        landmark_shift: (N, 2) float32 pixels, or None: where the edit *meant* to move each landmark of the scheme
            named in ``info["landmark_scheme"]`` (a warp's intended change of shape), so the QC report does not read
            an intended change as a lost expression.
        origin: image edits: ``(x0, y0)`` pixels, where the crop's top-left pixel lies on the hero plate; an edit
            that changes a region of the frame only (the face) is that region, so the stages after it read, write
            and composite the region, not the whole frame (:meth:`cropped`, :meth:`on_plate`).
        info: small JSON-serialisable facts for the report (e.g. ``{"target_age": 30}``).
    """

    frame: int
    kind: Literal["image", "mesh"]
    image: np.ndarray | None = None
    mask: np.ndarray | None = None
    vertices: np.ndarray | None = None
    vertex_albedo: np.ndarray | None = None
    albedo_texture: np.ndarray | None = None
    keep: np.ndarray | None = None
    landmark_shift: np.ndarray | None = None
    blend: Literal["composite", "exact"] = "composite"
    origin: tuple[int, int] = (0, 0)
    info: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.kind == "image" and (self.image is None or self.mask is None):
            raise MethodError(f"frame {self.frame}: an image edit needs both image and mask")
        if self.kind == "mesh" and self.vertices is None:
            raise MethodError(f"frame {self.frame}: a mesh edit needs vertices")
        if self.blend not in ("composite", "exact"):
            raise MethodError(f"frame {self.frame}: blend must be 'composite' or 'exact', got {self.blend!r}")
        if self.image is not None and self.mask is not None and self.image.shape[:2] != self.mask.shape[:2]:
            raise MethodError(f"frame {self.frame}: image {self.image.shape} and mask {self.mask.shape} differ in size")
        if self.keep is not None and self.mask is not None and self.keep.shape != self.mask.shape[:2]:
            raise MethodError(f"frame {self.frame}: keep {self.keep.shape} and mask {self.mask.shape} differ in size")
        o = tuple(self.origin)
        if len(o) != 2 or any(int(v) != v or v < 0 for v in o):
            raise MethodError(f"frame {self.frame}: origin must be two pixel offsets >= 0, got {self.origin!r}")
        object.__setattr__(self, "origin", (int(o[0]), int(o[1])))

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, w, h)`` of an image edit's crop on the plate."""
        h, w = self.mask.shape[:2]
        return self.origin[0], self.origin[1], w, h

    def check_fits(self, plate_shape: tuple[int, ...]) -> None:
        """Raise :class:`MethodError` when the crop does not lie inside a plate of ``plate_shape`` (H, W[, C])."""
        x0, y0, w, h = self.box
        if x0 + w > plate_shape[1] or y0 + h > plate_shape[0]:
            raise MethodError(f"frame {self.frame}: the edit's crop {w}x{h} at {self.origin} lies outside the "
                              f"{plate_shape[1]}x{plate_shape[0]} plate",
                              hint="an image edit must be plate-sized or a crop of the plate (FaceEdit.origin)")

    def cropped(self, margin: int = 0) -> "FaceEdit":
        """The same image edit cut down to the bounding box of ``mask > 0`` grown by ``margin`` px (within the
        old crop): what is cut off has mask 0, so the composite is the same. A mesh edit, or one already tight, is
        returned as is; an empty mask gives an empty (0 x 0) crop."""
        if self.kind != "image":
            return self
        from .retouch.roi import mask_box  # the box from the rows and columns that hold one (not every pixel)

        h, w = self.mask.shape[:2]
        box = mask_box(np.asarray(self.mask) > 0)
        if box is not None:
            x0, y0 = max(box[2] - margin, 0), max(box[0] - margin, 0)
            x1, y1 = min(box[3] + margin, w), min(box[1] + margin, h)
        else:
            x0 = y0 = x1 = y1 = 0
        if (x0, y0, x1, y1) == (0, 0, w, h):
            return self
        sl = (slice(y0, y1), slice(x0, x1))
        return replace(self, image=self.image[sl], mask=self.mask[sl],
                       keep=None if self.keep is None else self.keep[sl],
                       origin=(self.origin[0] + x0, self.origin[1] + y0))

    def on_plate(self, plate: np.ndarray) -> "FaceEdit":
        """The same image edit as plate-sized arrays (origin (0, 0)): ``image`` is the plate (float, /255) outside
        the crop, ``mask`` 0 and ``keep`` False there. For callers that want whole frames."""
        if self.kind != "image" or (self.origin == (0, 0) and self.mask.shape[:2] == plate.shape[:2]):
            return self
        self.check_fits(plate.shape)
        x0, y0, w, h = self.box
        sl = (slice(y0, y0 + h), slice(x0, x0 + w))
        image = plate.astype(np.float32) / np.float32(255.0) if plate.dtype == np.uint8 else \
            np.array(plate, np.float32)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image[sl] = self.image
        mask = np.zeros(plate.shape[:2], np.float32)
        mask[sl] = self.mask
        keep = None
        if self.keep is not None:
            keep = np.zeros(plate.shape[:2], bool)
            keep[sl] = self.keep
        return replace(self, image=image, mask=mask, keep=keep, origin=(0, 0))


@dataclass
class MethodContext:
    """What a method may use.

    Attributes:
        session: the session. device: ``"cpu"`` or ``"cuda"``. progress: progress reporting.
        work_dir: the method's own persistent folder (``out/methods/<name>/``, kept across runs so training is not
            repeated). components: the plugin registry (face models: ``components.face_model(name)``).
        settings: the method's parsed ``Settings`` instance (None for a method that declares none).
        options: the run's raw ``NAMESPACE.KEY -> text`` options (for methods without a Settings class, through
            :meth:`option`).
        fits: the fit stage's result, when it ran. cameras: calibrated cameras by name (may be empty).
        resources: the process's per-run cache (:class:`~reconstruct.executors.resources.Resources`), or None.
        roi_edits: the caller takes image edits that are a crop of the plate (``FaceEdit.origin``); a method may
            then return only the region it changed. False (callers that want plate-sized edits): a method that
            works on a region returns ``edit.on_plate(plate)``. The age stage sets it.
        executor: the run's executor (``map(fn, items, progress, description, resources=True)``), for work a
            method's ``prepare`` can spread over the workers (module-level functions, picklable items); None: do it
            in process. The age stage's driver sets it; ``apply`` never gets one.
    """

    session: "Session"
    options: Mapping[str, Any]
    device: str
    work_dir: Path
    progress: "Progress"
    components: "Components"
    fits: "FitSequence | None" = None
    cameras: Mapping[str, "CameraModel"] = field(default_factory=dict)
    settings: Any = None
    resources: "Resources | None" = None
    roi_edits: bool = False
    executor: Any = None

    def option(self, key: str, default: Any = None, cast: type | None = None) -> Any:
        """A raw ``--option`` value (for methods that declare no Settings class)."""
        v = self.options.get(key, default)
        if v is None or cast is None:
            return v
        try:
            return cast(v)
        except (TypeError, ValueError) as exc:
            raise MethodError(f"option {key}={v!r} is not a valid {cast.__name__}") from exc


def method_context(session: "Session", method: str | None, *, device: str, progress: "Progress",
                   components: "Components", settings: Any = None, options: Mapping[str, Any] | None = None,
                   resources: "Resources | None" = None, roi_edits: bool = False, executor: Any = None,
                   with_fits: bool = True) -> MethodContext:
    """The context a method sees (fits and cameras when those stages have run), in the driver or in a worker.

    ``method``: the method's name (its work dir is made); None for stages that only read frames (render,
    composite). ``settings``: the run's :class:`~reconstruct.options.RunSettings` (the method's own is picked).
    ``roi_edits``, ``executor``: see :class:`MethodContext`. ``with_fits=False``: ``fits`` None whatever is on disk
    (a context made before the fit stage has run: what is there is the previous run's)."""
    from .fitting.result import load_fits

    fit_file = session.stage_dir("fit") / "fits.npz"
    own = settings[method] if settings is not None and method and method in settings else None
    return MethodContext(session=session, options=dict(options or {}), device=device,
                         work_dir=session.method_dir(method or "_none", create=bool(method)), progress=progress,
                         components=components,
                         fits=load_fits(fit_file) if with_fits and fit_file.exists() else None,
                         cameras=session.cameras(), settings=own, resources=resources, roi_edits=roi_edits,
                         executor=executor)


def frame_inputs(session: "Session", mctx: MethodContext, frames=None) -> Iterator[FrameInput]:
    """A :class:`FrameInput` per output frame whose hero plate was stored (sync.csv order), with its fit and the
    hero camera when available; ``frames``: only these output frame numbers (None: all)."""
    hero = session.rig.hero.name
    fits = mctx.fits
    fit_rows = {int(f): i for i, f in enumerate(fits.frames)} if fits is not None else {}
    wanted = None if frames is None else set(frames)
    for fs in session.read_sync():
        if wanted is not None and fs.frame not in wanted:
            continue
        plate = session.frame_images(fs, [hero])[hero]
        if plate is None:
            continue
        if plate.ndim == 2:
            plate = np.repeat(plate[..., None], 3, axis=2)
        fit = fits.frame(fit_rows[fs.frame]) if fs.frame in fit_rows else None
        yield FrameInput(frame=fs.frame, plate=plate, fit=fit, hero=mctx.cameras.get(hero))


@dataclass(frozen=True, slots=True)
class SideWork:
    """A work item of a method's preparation that its ``apply()`` does not need (an asset another mode or a later
    take reads): ``fn(item, res)`` -- module-level, picklable, ``res`` the worker's
    :class:`~reconstruct.executors.resources.Resources` -- run by the age stage beside the frames."""

    fn: Any
    item: Any


class BaseMethod:
    """Convenience base class with the defaults of the contract."""

    name: ClassVar[str] = ""
    identity_changing: ClassVar[bool] = False
    # A frozen dataclass of the method's options (``--option <name>.KEY=VALUE``), or None: declare one.
    Settings: ClassVar[type | None] = None
    # True when apply() of a frame depends on earlier frames (temporal smoothing kept on the instance): the age
    # stage then applies every frame in order in one work item instead of independent chunks. May also be a
    # method ``sequential(self, ctx) -> bool`` when it depends on settings.
    sequential: ClassVar[bool] = False

    def describe(self) -> str:
        return (self.__doc__ or self.name).strip().splitlines()[0]

    def own_settings(self, ctx: MethodContext) -> Any:
        """This method's parsed Settings: ``ctx.settings`` in a run; parsed from ``ctx.options``
        (``<name>.KEY`` entries, strictly) for a context built by hand (tools, tests, embedding)."""
        cls = type(self).Settings
        if cls is None or isinstance(ctx.settings, cls):
            return ctx.settings
        from .options import parse_settings

        prefix = self.name + "."
        return parse_settings(cls, {k[len(prefix):]: v for k, v in dict(ctx.options).items()
                                    if str(k).startswith(prefix)}, self.name)

    def settings(self, ctx: MethodContext) -> Mapping[str, Any]:
        """What changes this method's output beyond its parsed Settings (which the age stage's cache key already
        holds): digests of the files it reads, a checkpoint's hash."""
        return {}

    def prepare(self, ctx: MethodContext) -> None:
        """Train or fit the method's assets (cached under ``ctx.work_dir``)."""

    def prepare_for_frames(self, ctx: MethodContext) -> list[SideWork]:
        """:meth:`prepare` for the age stage's run of ``apply()`` over the frames: what ``apply()`` needs is made
        here; what it does not may be returned as :class:`SideWork`, which the stage runs on its workers beside
        the frames and hands to :meth:`finish_side_work` (results in order) before it ends. Default: ``prepare()``,
        nothing left."""
        self.prepare(ctx)
        return []

    def finish_side_work(self, ctx: MethodContext, results: list) -> None:
        """Take the results of the :class:`SideWork` that :meth:`prepare_for_frames` returned (in the driver)."""

    def apply(self, ctx: MethodContext, frame: FrameInput) -> FaceEdit:  # pragma: no cover - abstract
        raise NotImplementedError


def check_consent(session: "Session", method: Any) -> None:
    """Refuse identity-changing methods without a consent record that covers them."""
    if not getattr(method, "identity_changing", False):
        return
    if any(c.covers(method.name) for c in session.meta.consent):
        return
    invalid = [p for c in session.meta.consent for p in c.problems]
    if invalid:
        raise ConsentError(
            f"method {method.name!r} changes how the performer looks and no valid consent record covers it: "
            + "; ".join(invalid),
            hint="a record needs performer, granted_by, an ISO date (YYYY-MM-DD) and an explicit scope; fix it in "
                 f"session.toml or add one with `reconstruct consent add {session.root} ...`")
    raise ConsentError(
        f"method {method.name!r} changes how the performer looks and {session.root / 'session.toml'} holds no "
        f"consent record covering it",
        hint=("add the performer's signed consent: `reconstruct consent add "
              f"{session.root} --performer NAME --reference 'what footage' --granted-by NAME --date YYYY-MM-DD "
              f"--scope {method.name}` (or a [[consent]] table in session.toml)"),
    )
