"""The one exception tree of the project (``capture`` and ``reconstruct`` alike).

Every error a user can cause derives from :class:`DeageError`; its message says what went wrong *and what to
do*. Library errors (OpenCV, ZeroMQ, torch, OS) are translated where they enter our code with
``raise ... from exc`` so the original traceback is kept.

Hierarchy::

    DeageError                      exit code 1 unless a subclass says otherwise
     ├── ConfigError                bad rig file, bad settings, bad CLI combination           (exit 2)
     │    └── RigError              a rig TOML that does not parse into a Rig
     ├── SessionError               a session folder that is missing, damaged or of another schema (exit 3)
     │    └── NotASessionError      the folder has no session.toml
     ├── PluginError                a plugin failed validation, or a component is missing       (exit 4)
     │    └── ComponentNotFound     no plugin provides the requested component
     ├── StageError                 a pipeline stage failed                                     (exit 5)
     ├── CaptureError               camera nodes, recorder, protocol                            (exit 6)
     │    ├── BackendError          a camera backend could not open or read its camera
     │    └── SyncError             frames that cannot be matched into frame sets
     ├── CalibrationError           board not found, too few views, diverged solve              (exit 7)
     ├── FaceModelError             a file that is not a face model, or a broken one            (exit 8)
     ├── FitError                   the 3DMM fit cannot run (no landmarks, no calibrated camera) (exit 8)
     ├── RenderError                renderer backend missing or failing                         (exit 9)
     ├── MethodError                an aging method cannot prepare or apply                     (exit 10)
     │    └── ConsentError          identity-changing method without a consent record          (exit 11)
     └── DeviceError                ``--device cuda`` without CUDA, etc.                        (exit 2)
"""

from __future__ import annotations


class DeageError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class ConfigError(DeageError):
    exit_code = 2


class RigError(ConfigError):
    """A rig file that does not parse. The message names the file and the key."""


class DeviceError(DeageError):
    exit_code = 2


class SessionError(DeageError):
    exit_code = 3


class NotASessionError(SessionError):
    pass


class PluginError(DeageError):
    exit_code = 4


class ComponentNotFound(PluginError):
    pass


class StageError(DeageError):
    exit_code = 5


class CaptureError(DeageError):
    exit_code = 6


class BackendError(CaptureError):
    pass


class SyncError(CaptureError):
    pass


class CalibrationError(DeageError):
    exit_code = 7


class FaceModelError(DeageError):
    exit_code = 8


class FitError(DeageError):
    exit_code = 8


class RenderError(DeageError):
    exit_code = 9


class MethodError(DeageError):
    exit_code = 10


class ConsentError(MethodError):
    exit_code = 11
