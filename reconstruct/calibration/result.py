"""The calibration result as stored in ``session/calibration.json``, and the loader every later stage calls.

Every camera is validated on reading (finite K, dist, R, t; R a rotation: :class:`~reconstruct.camera.CameraModel`):
a damaged or hand-edited file fails with :class:`CalibrationError` naming the file and the camera, never later in
a solver. An intrinsics-only calibration of a rig with several cameras is refused where cameras with poses are
needed (:meth:`RigCalibration.from_dict` with ``require_extrinsics``); ``reconstruct calibrate --intrinsics`` reads it.

Light on purpose (numpy + the camera model only): ``from reconstruct.calibration.result import load_calibration``.

``calibration.json`` (schema 1)::

    {
      "schema": 1,
      "reference": "hero",                      # camera whose frame is the world frame (unless re-anchored)
      "extrinsics": true,                       # false: intrinsics only (`reconstruct calibrate --intrinsics-only`):
                                                # every camera calibrated on its own, R = I and t = 0 are placeholders
      "board": {kind, squares, square_size, marker_size, dictionary, inverted, legacy_pattern},
      "cameras": {
        "<name>": {name, model, image_size, K, dist, R, t,       # CameraModel.to_dict(): R, t world->camera, m
                   "quality": {rms_px, views, corners, per_view_rms_px: {view: px}, board_error_mm,
                               coverage, std: {fx, fy, cx, cy, rotation_deg, translation_mm}, warnings: [...],
                               lens_model: {tangential: "zero"|"fitted"|..., test: {wald, p_value}}}}
      },
      "quality": {rms_px, views, corners, outliers, warnings: [...], seconds,
                  board_shape: {refined, max_offset_mm, rms_offset_mm, worst_corner,
                                offsets_mm: {corner id: [x, y, z]},       # board frame, from the nominal print
                                test: {F, F_critical, significant, rms_simple_px, rms_full_px}}}
    }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from ..camera import CameraModel
from ..errors import CalibrationError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..session import Session

SCHEMA = 1


@dataclass(frozen=True, slots=True)
class RigCalibration:
    """A calibrated rig.

    Attributes:
        cameras: camera name -> :class:`~reconstruct.camera.CameraModel` (world-to-camera R, t in metres).
        quality: rig-level quality record (JSON-serialisable; see the module docstring).
        camera_quality: camera name -> per-camera quality record (JSON-serialisable).
        reference: name of the camera whose frame is the world frame ("" when imported).
        board: the board spec as a plain dict ({} when imported).
        extrinsics: False for an intrinsics-only calibration of several cameras (each calibrated on its own; their
            R = I, t = 0 are placeholders, not poses in a common world frame).
    """

    cameras: Mapping[str, CameraModel]
    quality: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    camera_quality: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    reference: str = ""
    board: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    extrinsics: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", MappingProxyType(dict(self.cameras)))
        object.__setattr__(self, "quality", MappingProxyType(dict(self.quality)))
        object.__setattr__(self, "camera_quality", MappingProxyType(dict(self.camera_quality)))
        object.__setattr__(self, "board", MappingProxyType(dict(self.board)))

    @property
    def warnings(self) -> list[str]:
        """Every warning, rig-level first."""
        out = list(self.quality.get("warnings", []))
        for q in self.camera_quality.values():
            out += [w for w in q.get("warnings", []) if w not in out]
        return out

    def to_dict(self) -> dict:
        cams = {}
        for name, cam in self.cameras.items():
            rec = cam.to_dict()
            rec["quality"] = dict(self.camera_quality.get(name, {}))
            cams[name] = rec
        return {"schema": SCHEMA, "reference": self.reference, "extrinsics": self.extrinsics,
                "board": dict(self.board), "cameras": cams, "quality": dict(self.quality)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "calibration.json", *,
                  require_extrinsics: bool = True) -> "RigCalibration":
        """Read (and validate) a calibration record; ``where`` names the file in errors.

        Raises :class:`CalibrationError` (exit 7) naming ``where`` and the camera for a camera with non-finite
        numbers, a non-rotation R or missing keys, and, with ``require_extrinsics``, for an intrinsics-only
        calibration of several cameras (their poses are unknown)."""
        redo = "rerun `reconstruct calibrate <session>` (or re-import the cameras with `reconstruct calibrate --import`)"
        if not isinstance(d, Mapping):
            raise CalibrationError(f"{where}: not a calibration record (a JSON object)", hint=redo)
        if d.get("schema", SCHEMA) != SCHEMA:
            raise CalibrationError(f"{where}: calibration schema {d.get('schema')!r}; this version reads {SCHEMA}",
                                   hint="rerun `reconstruct calibrate <session>` with this version")
        raw = d.get("cameras")
        if not isinstance(raw, Mapping) or not raw:
            raise CalibrationError(f"{where}: no cameras in the calibration",
                                   hint="rerun `reconstruct calibrate <session>`")
        cams, qual = {}, {}
        for name, rec in raw.items():
            if not isinstance(rec, Mapping):
                raise CalibrationError(f"{where}: camera {name!r}: not a camera record (a JSON object)", hint=redo)
            try:
                cams[name] = CameraModel.from_dict({**rec, "name": rec.get("name", name)})
            except (ConfigError, TypeError, ValueError) as exc:
                msg = getattr(exc, "message", str(exc))
                if f"camera {name!r}" not in msg:
                    msg = f"camera {name!r}: {msg}"
                raise CalibrationError(f"{where}: {msg}", hint=redo) from exc
            qual[name] = dict(rec.get("quality", {}))
        extrinsics = d.get("extrinsics", True)
        if not isinstance(extrinsics, bool):
            raise CalibrationError(f"{where}: 'extrinsics' must be true or false, got {extrinsics!r}", hint=redo)
        if require_extrinsics and not extrinsics and len(cams) > 1:
            raise CalibrationError(
                f"{where} holds intrinsics only (`reconstruct calibrate --intrinsics-only`): the positions of cameras "
                f"{', '.join(repr(c) for c in cams)} in the rig are not known yet",
                hint="capture views where the cameras see the board together, add them with `capture import "
                     "<session> --append CAMERA=PHOTOS ...`, and run `reconstruct calibrate <session> --intrinsics "
                     f"{where}`")
        return cls(cameras=cams, quality=dict(d.get("quality", {})), camera_quality=qual,
                   reference=str(d.get("reference", "")), board=dict(d.get("board", {})), extrinsics=extrinsics)


def read_calibration(session: "Session") -> RigCalibration:
    """The session's calibration.json as a :class:`RigCalibration`."""
    return RigCalibration.from_dict(session.read_calibration(), str(session.calibration_path))


def load_calibration(session: "Session") -> dict[str, CameraModel]:
    """Camera name -> calibrated :class:`CameraModel` for every camera of the session's rig.

    Raises :class:`CalibrationError` naming the cameras the calibration lacks (e.g. a rig that gained a camera).
    """
    cal = read_calibration(session)
    missing = [c for c in session.rig.camera_names if c not in cal.cameras]
    if missing:
        raise CalibrationError(f"{session.calibration_path} has no calibration for camera(s) {', '.join(missing)}",
                               hint="capture calibration views with every camera into calib/ and rerun "
                                    "`reconstruct calibrate <session>`")
    return {name: cal.cameras[name] for name in session.rig.camera_names}
