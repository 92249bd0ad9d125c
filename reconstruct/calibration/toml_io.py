"""Camera TOML files of anipose (aniposelib ``CameraGroup.dump``) and caliscope (``camera_array.toml``).

Both store, per camera table, ``size = [w, h]``, ``matrix`` (3x3 K), ``distortions`` and a world-to-camera pose:

* anipose: ``[cam_0]`` with ``name``, ``rotation`` = Rodrigues vector (3,), ``translation`` in the units of the
  board used (often millimetres), plus ``[metadata]``;
* caliscope: ``[cameras.<id>]`` (or older ``[cam_<id>]``) with ``rotation`` = 3x3 matrix and ``translation``
  in metres.

Import detects the layout and the rotation form; ``translation_scale`` converts translations to metres
(``0.001`` for an anipose file in millimetres).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import numpy as np

from ..camera import CameraModel
from ..errors import CalibrationError, ConfigError


def _rotation(v, where: str) -> np.ndarray:
    a = np.asarray(v, np.float64)
    if a.shape == (3, 3):
        return a
    if a.shape == (3,):
        import cv2

        if not np.all(np.isfinite(a)):
            raise CalibrationError(f"{where}: rotation has non-finite values (NaN or infinity): {a.tolist()}",
                                   hint="fix or re-export the camera file; it is not used")
        return cv2.Rodrigues(a)[0]
    raise CalibrationError(f"{where}: rotation must be a Rodrigues vector (3) or a 3x3 matrix, got shape {a.shape}")


def read_camera_toml(path: str | Path, translation_scale: float = 1.0) -> dict[str, CameraModel]:
    """Cameras of an anipose or caliscope TOML file, by name (caliscope: ``cam_<id>``)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CalibrationError(f"camera file {p} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationError(f"{p}: not valid TOML: {exc}") from exc
    tables: dict[str, dict] = {}
    if isinstance(data.get("cameras"), dict):  # caliscope >= 0.5
        for k, v in data["cameras"].items():
            tables[f"cam_{k}"] = v
    for k, v in data.items():
        if isinstance(v, dict) and "matrix" in v and k != "cameras":
            tables.setdefault(str(v.get("name", k)), v)
    if not tables:
        raise CalibrationError(f"{p}: no camera tables (with 'matrix') found",
                               hint="expected anipose [cam_0] tables or caliscope [cameras.0] tables")
    out = {}
    for name, t in tables.items():
        where = f"{p} [{name}]"
        try:
            size = tuple(int(x) for x in t["size"])
            K = np.asarray(t["matrix"], np.float64)
            dist = np.asarray(t.get("distortions", [0, 0, 0, 0, 0]), np.float64).ravel()
            R = _rotation(t.get("rotation", np.zeros(3)), where)
            tvec = np.asarray(t.get("translation", np.zeros(3)), np.float64).ravel() * translation_scale
        except KeyError as exc:
            raise CalibrationError(f"{where}: missing key {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{where}: size, matrix, distortions, rotation and translation must be numbers: "
                                   f"{exc}", hint="fix or re-export the camera file; it is not used") from exc
        model: Literal["pinhole", "fisheye"] = "fisheye" if t.get("fisheye", False) else "pinhole"
        try:
            out[name] = CameraModel(name=name, K=K, dist=dist, R=R, t=tvec, image_size=size, model=model)
        except ConfigError as exc:  # NaN/inf (TOML has nan and inf), a non-rotation, a wrong coefficient count
            raise CalibrationError(f"{where}: {exc.message}",
                                   hint="fix or re-export the camera file; it is not used") from exc
    return out


def _fmt(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return "[" + ", ".join(_fmt(x) for x in v) + "]"


def write_camera_toml(cameras: dict[str, CameraModel], path: str | Path,
                      style: Literal["anipose", "caliscope"] = "anipose", translation_scale: float = 1.0,
                      error: float | None = None) -> Path:
    """Write ``cameras`` as an anipose (Rodrigues rotation) or caliscope (3x3 rotation) camera TOML.

    ``translation_scale`` multiplies translations (metres) on the way out (1000 for an anipose file in mm).
    """
    import cv2

    lines: list[str] = []
    for i, (name, c) in enumerate(cameras.items()):
        t = (c.t * translation_scale).tolist()
        if style == "anipose":
            lines += [f"[cam_{i}]", f"name = {_fmt(name)}", f"size = {_fmt(list(c.image_size))}",
                      f"matrix = {_fmt(c.K.tolist())}", f"distortions = {_fmt(c.dist.tolist())}",
                      f"rotation = {_fmt(cv2.Rodrigues(c.R)[0].ravel().tolist())}", f"translation = {_fmt(t)}",
                      f"fisheye = {_fmt(c.model == 'fisheye')}", ""]
        else:
            lines += [f"[cameras.{i}]", f"cam_id = {i}", f"name = {_fmt(name)}", f"size = {_fmt(list(c.image_size))}",
                      f"matrix = {_fmt(c.K.tolist())}", f"distortions = {_fmt(c.dist.tolist())}",
                      f"rotation = {_fmt(c.R.tolist())}", f"translation = {_fmt(t)}", ""]
    if style == "anipose":
        lines += ["[metadata]", "adjusted = true"] + ([f"error = {_fmt(error)}"] if error is not None else []) + [""]
    p = Path(path)
    from ..session import atomic_write_text

    atomic_write_text(p, "\n".join(lines))
    return p
