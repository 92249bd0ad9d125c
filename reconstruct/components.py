"""The small interfaces that plugins implement (what the ``register_*`` hooks return).

Each is a :class:`typing.Protocol`: a plugin's class need not inherit from it, only provide the attributes.
Every component has a unique ``name`` within its kind; :class:`reconstruct.plugins.Components` looks them up.
Detailed contracts (units, shapes, coordinate frames) live with each protocol; ``docs/plugins.md`` shows examples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Protocol, runtime_checkable

import numpy as np

from .stage import Stage

if TYPE_CHECKING:  # pragma: no cover
    from .stage import StageContext


@runtime_checkable
class CameraBackend(Protocol):
    """A source of frames for one camera (capture phase).

    Constructed as ``Backend(spec, **spec.settings)`` (a TypeError for an unknown setting is reported naming the
    camera); ``open()`` acquires the device; ``grab()`` returns the next ``(image, t_capture_ns, meta)`` or None
    at the end of the stream (files): image RGB ``uint8 (H, W, 3)`` or IR gray ``uint8 (H, W)`` (``uint16`` allowed)
    of ``spec.resolution``; ``t_capture_ns`` the capture time on ``time.time_ns()``'s clock (or the device
    clock); ``meta`` a dict with optional ``exposure_us`` (float), ``timecode`` (``"HH:MM:SS:FF"``) and ``tick``
    (hardware frame counter, int). ``trigger(tick, t_tick_ns)`` is called before each ``grab()`` for every
    software tick when the rig is software-triggered (a backend that cannot be triggered ignores it).
    ``close()`` releases. Optional class attribute ``live`` (default True): False for sources that can wait
    (files), which the node then reads at the recorder's pace instead of dropping frames when its queue is full.
    Built-ins: ``plugins/camera_backends.py``; operator documentation: ``docs/capture.md``.
    """

    name: ClassVar[str]

    def open(self) -> None: ...
    def trigger(self, tick: int, t_tick_ns: int) -> None: ...
    def grab(self) -> tuple[np.ndarray, int, dict[str, Any]] | None: ...
    def close(self) -> None: ...


@runtime_checkable
class LandmarkDetector(Protocol):
    """2D facial landmarks on one image (detect phase).

    ``scheme`` names the landmark set (``"mediapipe478"``, ``"ibug68"``); ``detect(image)`` takes RGB
    ``(H, W, 3)`` or gray ``(H, W)`` uint8 and returns ``(points (N, 2) float pixels, confidence (N,) in [0, 1])``
    or None when no face is found.
    """

    name: ClassVar[str]
    scheme: ClassVar[str]

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None: ...


@runtime_checkable
class FaceModelSource(Protocol):
    """A loadable face model (fit phase). ``load()`` returns a :class:`reconstruct.face.model.FaceModel`
    (metres). Loading may be slow: stages load through :meth:`reconstruct.plugins.Components.face_model`, which
    loads each model once per registry."""

    name: str

    def load(self) -> Any: ...


@runtime_checkable
class Renderer(Protocol):
    """Renders meshes through calibrated cameras (render phase).

    ``available()`` says whether it can run here (imports, device); ``priority`` orders automatic choice
    (higher first). ``render(...)`` contract is in :mod:`reconstruct.render`.
    """

    name: ClassVar[str]
    priority: ClassVar[int]

    def available(self, device: str) -> bool: ...


@runtime_checkable
class AgingMethod(Protocol):
    """A de-aging method (age phase).

    ``identity_changing``: True when the output depicts a different-looking person than the plate (needs a consent
    record in session.toml). ``prepare(ctx)`` trains or fits the method's own assets (cached under its stage
    folder); ``apply(ctx, frame)`` returns a face edit for one output frame. Contract details are in
    :mod:`reconstruct.methods`.
    """

    name: ClassVar[str]
    identity_changing: ClassVar[bool]

    def describe(self) -> str: ...


@runtime_checkable
class Compositor(Protocol):
    """Puts an edited face back onto the plate (composite phase). Contract in :mod:`reconstruct.composite`."""

    name: ClassVar[str]


@runtime_checkable
class ReportSection(Protocol):
    """One section of the QC report. ``order`` sorts sections; ``html(ctx)`` returns a self-contained HTML
    fragment (inline images as data URIs) or None to skip."""

    name: ClassVar[str]
    order: ClassVar[int]

    def html(self, ctx: "StageContext") -> str | None: ...


__all__ = ["AgingMethod", "CameraBackend", "Compositor", "FaceModelSource", "LandmarkDetector", "Renderer",
           "ReportSection", "Stage", "iter_components"]  # Stage: the contract lives in reconstruct.stage


def iter_components(results: list[list[Any]] | list[Any]) -> Iterator[Any]:
    """Flatten the list-of-lists a ``register_*`` hook call returns."""
    for r in results:
        if r is None:
            continue
        if isinstance(r, (list, tuple)):
            yield from r
        else:
            yield r
