"""Rig files (``rigs/*.toml``) parsed once into frozen dataclasses.

A rig file describes the hardware of a capture: its cameras, how they are triggered, and the calibration board.
Everything downstream receives a :class:`Rig`, never the raw TOML. A malformed file raises :class:`RigError`
naming the file, the key and what is expected. See ``rigs/hero-2ir.toml`` for a documented example.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping

from .errors import RigError

Role = Literal["hero", "witness"]
Sensor = Literal["rgb", "ir"]
BoardKind = Literal["charuco", "chessboard"]
TriggerMode = Literal["software", "hardware", "free"]

_ARUCO_DICTS = (
    "DICT_4X4_50", "DICT_4X4_100", "DICT_4X4_250", "DICT_4X4_1000",
    "DICT_5X5_50", "DICT_5X5_100", "DICT_5X5_250", "DICT_5X5_1000",
    "DICT_6X6_50", "DICT_6X6_100", "DICT_6X6_250", "DICT_6X6_1000",
    "DICT_7X7_50", "DICT_7X7_100", "DICT_7X7_250", "DICT_7X7_1000",
    "DICT_ARUCO_ORIGINAL",
)


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """One camera of the rig as configured (not calibrated).

    Attributes:
        name: unique camera name, used for folders (``cams/<name>/``) and in calibration.
        role: ``"hero"`` (the plate that is de-aged; exactly one per rig) or ``"witness"``.
        sensor: ``"rgb"`` (3-channel 8-bit) or ``"ir"`` (1-channel 8-bit grayscale).
        resolution: (width, height) in pixels.
        fps: nominal frame rate in frames per second (defaults to the rig's).
        exposure_us: exposure time in microseconds (recorded in frames.csv; backends may apply it).
        backend: name of the camera backend plugin (``reconstruct plugins`` lists them).
        settings: backend-specific settings (read-only mapping, passed to the backend as keyword arguments).
    """

    name: str
    role: Role
    sensor: Sensor
    resolution: tuple[int, int]
    fps: float
    exposure_us: float = 8000.0
    backend: str = "synthetic"
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def channels(self) -> int:
        return 3 if self.sensor == "rgb" else 1


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """How frames are triggered.

    Attributes:
        mode: ``"software"`` (one clock process broadcasts ticks at ``fps``), ``"hardware"`` (genlock/external
            trigger: backends stamp frames with the hardware frame counter), or ``"free"`` (free-running cameras,
            synchronised afterwards from timestamps, timecode or a flash).
        fps: tick rate in frames per second.
        tick_endpoint: ZeroMQ endpoint the software clock publishes on.
    """

    mode: TriggerMode = "software"
    fps: float = 30.0
    tick_endpoint: str = "tcp://127.0.0.1:5550"


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """A calibration target.

    Attributes:
        kind: ``"charuco"`` or ``"chessboard"``.
        squares: (columns, rows) of *squares* (a 9x6 inner-corner chessboard has squares (10, 7)).
        square_size: side of one square, metres.
        marker_size: side of one ArUco marker, metres (ChArUco only).
        dictionary: OpenCV ArUco dictionary name, e.g. ``"DICT_6X6_250"`` (ChArUco only).
        inverted: True when printed white-on-black (invert images before detection).
        legacy_pattern: OpenCV's pre-4.6 ChArUco layout (even row count boards differ).
    """

    kind: BoardKind = "charuco"
    squares: tuple[int, int] = (5, 7)
    square_size: float = 0.04
    marker_size: float = 0.02
    dictionary: str = "DICT_6X6_250"
    inverted: bool = False
    legacy_pattern: bool = False

    @property
    def inner_corners(self) -> tuple[int, int]:
        """(columns, rows) of inner corners: ``squares - 1``."""
        return (self.squares[0] - 1, self.squares[1] - 1)


@dataclass(frozen=True, slots=True)
class Rig:
    """A whole rig. ``source`` is the file it came from (None when built in code)."""

    name: str
    fps: float
    cameras: tuple[CameraSpec, ...]
    trigger: TriggerSpec
    board: BoardSpec
    source: Path | None = None
    description: str = ""

    @property
    def hero(self) -> CameraSpec:
        return next(c for c in self.cameras if c.role == "hero")

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def camera(self, name: str) -> CameraSpec:
        for c in self.cameras:
            if c.name == name:
                return c
        raise RigError(f"rig {self.name!r} has no camera {name!r}; it has {', '.join(self.camera_names)}")


# -- parsing -------------------------------------------------------------------------------------------------------
class _Reader:
    """Typed access to one TOML table with errors that name the file and the dotted key."""

    def __init__(self, data: Mapping[str, Any], where: str, prefix: str = "") -> None:
        self.data, self.where, self.prefix = data, where, prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, expected: str, got: Any = None) -> RigError:
        got_s = "" if got is None else f", got {got!r}"
        return RigError(f"{self.where}: key '{self._key(key)}' must be {expected}{got_s}")

    def get(self, key: str, typ, expected: str, default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise RigError(f"{self.where}: missing key '{self._key(key)}' ({expected})")
            return default
        v = self.data[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise self.fail(key, expected, v)
        if typ is float and not math.isfinite(v):
            raise self.fail(key, expected + " (a finite number)", v)
        return v

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
        v = self.get(key, str, "one of " + ", ".join(choices), default)
        if v not in choices:
            raise self.fail(key, "one of " + ", ".join(repr(c) for c in choices), v)
        return v

    def pair(self, key: str, typ, expected: str, default: Any = ...) -> tuple:
        v = self.get(key, list, expected, default)
        if isinstance(v, tuple):
            return v
        if len(v) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            raise self.fail(key, expected, v)
        if not all(math.isfinite(x) for x in v):
            raise self.fail(key, expected + " (finite numbers)", v)
        if typ is int and any(x != int(x) for x in v):
            raise self.fail(key, expected + " (whole numbers)", v)
        out = tuple(typ(x) for x in v)
        if any(x <= 0 for x in out):
            raise self.fail(key, expected + " (positive)", v)
        return out

    def positive(self, key: str, expected: str, default: Any = ...) -> float:
        v = self.get(key, float, expected, default)
        if v <= 0:
            raise self.fail(key, expected + " (positive)", v)
        return v

    def settings(self, key: str) -> Mapping[str, Any]:
        """A table of backend settings; every number in it (nested lists included) must be finite."""
        v = dict(self.get(key, dict, "a table of backend settings", {}))

        def finite(x: Any) -> bool:
            if isinstance(x, float):
                return math.isfinite(x)
            if isinstance(x, list):
                return all(finite(y) for y in x)
            if isinstance(x, dict):
                return all(finite(y) for y in x.values())
            return True

        for k, x in v.items():
            if not finite(x):
                raise RigError(f"{self.where}: key '{self._key(key)}.{k}' must be finite, got {x!r}")
        return MappingProxyType(v)

    def unknown(self, allowed: set[str]) -> None:
        extra = sorted(set(self.data) - allowed)
        if extra:
            raise RigError(
                f"{self.where}: unknown key '{self._key(extra[0])}'; allowed here: {', '.join(sorted(allowed))}"
            )


def parse_rig(data: Mapping[str, Any], where: str = "<rig>", source: Path | None = None) -> Rig:
    """Build a :class:`Rig` from parsed TOML. ``where`` names the file in error messages."""
    top = _Reader(data, where)
    top.unknown({"rig", "camera", "trigger", "board"})
    rig_t = _Reader(top.get("rig", dict, "a table [rig] with name and fps"), where, "rig.")
    rig_t.unknown({"name", "fps", "description"})
    name = rig_t.get("name", str, "a string")
    fps = rig_t.positive("fps", "a frame rate in frames per second")

    cams_raw = top.get("camera", list, "an array of tables [[camera]]")
    if not cams_raw:
        raise RigError(f"{where}: the rig has no [[camera]] entries; add at least the hero camera")
    cameras = []
    for i, c in enumerate(cams_raw):
        r = _Reader(c, where, f"camera[{i}].")
        r.unknown({"name", "role", "sensor", "resolution", "fps", "exposure_us", "backend", "settings"})
        cname = r.get("name", str, "a camera name")
        if not cname.replace("-", "").replace("_", "").isalnum():
            raise r.fail("name", "letters, digits, '-' or '_' (it names a folder)", cname)
        cameras.append(
            CameraSpec(
                name=cname,
                role=r.choice("role", ("hero", "witness")),
                sensor=r.choice("sensor", ("rgb", "ir"), "rgb"),
                resolution=r.pair("resolution", int, "[width, height] in pixels"),
                fps=r.positive("fps", "frames per second", fps),
                exposure_us=r.positive("exposure_us", "microseconds", 8000.0),
                backend=r.get("backend", str, "a camera backend name", "synthetic"),
                settings=r.settings("settings"),
            )
        )
    names = [c.name for c in cameras]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise RigError(f"{where}: camera name {sorted(dup)[0]!r} is used twice; camera names must be unique")
    heroes = [c.name for c in cameras if c.role == "hero"]
    if len(heroes) != 1:
        raise RigError(f"{where}: a rig needs exactly one camera with role = \"hero\", found {len(heroes)} ({heroes})")

    trig_t = _Reader(top.get("trigger", dict, "a table [trigger]", {}), where, "trigger.")
    trig_t.unknown({"mode", "fps", "tick_endpoint"})
    trigger = TriggerSpec(
        mode=trig_t.choice("mode", ("software", "hardware", "free"), "software"),
        fps=trig_t.positive("fps", "ticks per second", fps),
        tick_endpoint=trig_t.get("tick_endpoint", str, "a ZeroMQ endpoint", "tcp://127.0.0.1:5550"),
    )

    b = _Reader(top.get("board", dict, "a table [board]", {}), where, "board.")
    b.unknown({"kind", "squares", "square_size", "marker_size", "dictionary", "inverted", "legacy_pattern"})
    kind = b.choice("kind", ("charuco", "chessboard"), "charuco")
    board = BoardSpec(
        kind=kind,
        squares=b.pair("squares", int, "[columns, rows] of squares", (5, 7)),
        square_size=b.positive("square_size", "the square side in metres", 0.04),
        marker_size=b.positive("marker_size", "the marker side in metres", 0.02),
        dictionary=b.choice("dictionary", _ARUCO_DICTS, "DICT_6X6_250"),
        inverted=b.get("inverted", bool, "true or false", False),
        legacy_pattern=b.get("legacy_pattern", bool, "true or false", False),
    )
    if kind == "charuco" and board.marker_size >= board.square_size:
        raise b.fail("marker_size", f"smaller than square_size ({board.square_size} m)", board.marker_size)
    if min(board.squares) < 2:
        raise b.fail("squares", "at least 2 squares each way", list(board.squares))
    return Rig(
        name=name, fps=fps, cameras=tuple(cameras), trigger=trigger, board=board, source=source,
        description=rig_t.get("description", str, "a string", ""),
    )


def load_rig(path: str | Path) -> Rig:
    """Read and validate a rig TOML file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RigError(f"rig file {p} does not exist", hint="rigs/ in the project holds examples, e.g. rigs/hero-2ir.toml") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RigError(f"{p}: not valid TOML: {exc}") from exc
    return parse_rig(data, where=str(p), source=p)


def one_camera_rig(resolution: tuple[int, int], fps: float, *, name: str = "one-view", backend: str = "images",
                   settings: Mapping[str, Any] | None = None) -> Rig:
    """A rig of one free-running RGB hero camera (footage from files: a plate, a real clip), with the default board.

    ``resolution`` is (width, height) in pixels, ``fps`` frames per second; ``settings`` go to the camera backend
    (the ``images`` backend takes ``path`` and ``fps``). Write it with :func:`rig_to_toml`.
    """
    cam = CameraSpec(name="hero", role="hero", sensor="rgb", resolution=(int(resolution[0]), int(resolution[1])),
                     fps=float(fps), backend=backend, settings=MappingProxyType(dict(settings or {})))
    return Rig(name=name, fps=float(fps), cameras=(cam,), trigger=TriggerSpec(mode="free", fps=float(fps)),
               board=BoardSpec())


def rig_to_toml(rig: Rig) -> str:
    """Serialise a rig back to TOML (used to copy the rig into a session)."""
    lines = ["[rig]", f"name = {_q(rig.name)}", f"fps = {rig.fps!r}"]
    if rig.description:
        lines.append(f"description = {_q(rig.description)}")
    t = rig.trigger
    lines += ["", "[trigger]", f"mode = {_q(t.mode)}", f"fps = {t.fps!r}", f"tick_endpoint = {_q(t.tick_endpoint)}"]
    b = rig.board
    lines += [
        "", "[board]", f"kind = {_q(b.kind)}", f"squares = [{b.squares[0]}, {b.squares[1]}]",
        f"square_size = {b.square_size!r}", f"marker_size = {b.marker_size!r}", f"dictionary = {_q(b.dictionary)}",
        f"inverted = {str(b.inverted).lower()}", f"legacy_pattern = {str(b.legacy_pattern).lower()}",
    ]
    for c in rig.cameras:
        lines += [
            "", "[[camera]]", f"name = {_q(c.name)}", f"role = {_q(c.role)}", f"sensor = {_q(c.sensor)}",
            f"resolution = [{c.resolution[0]}, {c.resolution[1]}]", f"fps = {c.fps!r}",
            f"exposure_us = {c.exposure_us!r}", f"backend = {_q(c.backend)}",
        ]
        if c.settings:
            lines.append("[camera.settings]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in c.settings.items()]
    return "\n".join(lines) + "\n"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return _q(v)
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise RigError(f"cannot write setting value {v!r} to TOML")
