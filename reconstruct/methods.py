"""The aging-method contract: what a method plugin receives and returns.

A method is a class registered through ``register_aging_methods``. The age stage builds it with no arguments,
calls ``prepare(ctx)`` once (train or fit its own assets; cache them under ``ctx.work_dir`` keyed by
``settings(ctx)``) and then ``apply(ctx, frame)`` for every output frame. A method edits the face either in image
space (FRAN, deepfake: an RGB image and a mask in hero-plate pixels) or in geometry/texture space (digital human:
world-space vertices and albedo for the render stage to draw). The composite stage pastes either kind back.

Methods whose output shows a different-looking person (``identity_changing = True``) run only when
``session.toml`` holds a consent record covering them (see :func:`check_consent`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping

import numpy as np

from .errors import ConsentError, MethodError

if TYPE_CHECKING:  # pragma: no cover
    from .camera import CameraModel
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
        image: (H, W, 3) float32 sRGB in [0, 1], hero-plate sized: the edited face (only meaningful under mask).
        mask: (H, W) float32 in [0, 1]: where ``image`` replaces the plate (before the compositor's feathering).
        vertices: (V, 3) float32 world-frame vertices in metres (same topology as the session's face model).
        vertex_albedo: (V, 3) float32 linear RGB albedo in [0, 1], or None.
        albedo_texture: (S, S, 3) float32 linear RGB UV texture in [0, 1] (model's UV layout), or None.
        info: small JSON-serialisable facts for the report (e.g. ``{"target_age": 30}``).
    """

    frame: int
    kind: Literal["image", "mesh"]
    image: np.ndarray | None = None
    mask: np.ndarray | None = None
    vertices: np.ndarray | None = None
    vertex_albedo: np.ndarray | None = None
    albedo_texture: np.ndarray | None = None
    info: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.kind == "image" and (self.image is None or self.mask is None):
            raise MethodError(f"frame {self.frame}: an image edit needs both image and mask")
        if self.kind == "mesh" and self.vertices is None:
            raise MethodError(f"frame {self.frame}: a mesh edit needs vertices")
        if self.image is not None and self.mask is not None and self.image.shape[:2] != self.mask.shape[:2]:
            raise MethodError(f"frame {self.frame}: image {self.image.shape} and mask {self.mask.shape} differ in size")


@dataclass
class MethodContext:
    """What a method may use. ``work_dir`` is the method's own persistent cache folder
    (``out/methods/<name>/``, kept across runs so training is not repeated); ``options`` are the
    ``--option``/plugin CLI values for this run."""

    session: "Session"
    options: Mapping[str, Any]
    device: str
    work_dir: Path
    progress: "Progress"
    components: "Components"
    fits: "FitSequence | None" = None
    cameras: Mapping[str, "CameraModel"] = field(default_factory=dict)

    def option(self, key: str, default: Any = None, cast: type | None = None) -> Any:
        v = self.options.get(key, default)
        if v is None or cast is None:
            return v
        try:
            return cast(v)
        except (TypeError, ValueError) as exc:
            raise MethodError(f"option {key}={v!r} is not a valid {cast.__name__}") from exc


class BaseMethod:
    """Convenience base class with the defaults of the contract."""

    name: ClassVar[str] = ""
    identity_changing: ClassVar[bool] = False
    # True when apply() of a frame depends on earlier frames (temporal smoothing kept on the instance): the age
    # stage then applies every frame in order in one work item instead of independent chunks. May also be a
    # method ``sequential(self, ctx) -> bool`` when it depends on settings.
    sequential: ClassVar[bool] = False

    def describe(self) -> str:
        return (self.__doc__ or self.name).strip().splitlines()[0]

    def settings(self, ctx: MethodContext) -> Mapping[str, Any]:
        """Everything that changes this method's output (part of the age stage's cache key)."""
        return {}

    def prepare(self, ctx: MethodContext) -> None:
        """Train or fit the method's assets (cached under ``ctx.work_dir``)."""

    def apply(self, ctx: MethodContext, frame: FrameInput) -> FaceEdit:  # pragma: no cover - abstract
        raise NotImplementedError


def check_consent(session: "Session", method: Any) -> None:
    """Refuse identity-changing methods without a consent record that covers them."""
    if not getattr(method, "identity_changing", False):
        return
    if any(c.covers(method.name) for c in session.meta.consent):
        return
    raise ConsentError(
        f"method {method.name!r} changes how the performer looks and {session.root / 'session.toml'} holds no "
        f"consent record covering it",
        hint=("add the performer's signed consent: `reconstruct consent add "
              f"{session.root} --performer NAME --reference 'what footage' --granted-by NAME --date YYYY-MM-DD "
              f"--scope {method.name}` (or a [[consent]] table in session.toml)"),
    )
