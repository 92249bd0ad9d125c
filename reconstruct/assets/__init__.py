"""Runtime assets that ship inside the package, so a plain clone or install runs with nothing beside it.

Each folder holds the file(s) the code uses and their licence; ``SOURCES.md`` here gives origin, licence and
sha256 of every file (``tests/test_assets.py`` checks the sums).

* ``ict_facekit_light/ict_face_light_facearea.npz``: the ICT-FaceKit light face model (MIT), the built-in ``ict``
  face model source;
* ``mediapipe_face_geometry/canonical_face_model.obj``: MediaPipe's canonical face mesh (Apache-2.0), from which
  every face model gets its ``mediapipe478`` landmark correspondence;
* ``yunet/face_detection_yunet_2023mar.onnx``: the YuNet face-box detector (MIT / Apache-2.0) for ``detect``;
* ``opencv_haarcascades/haarcascade_frontalface_default.xml``: OpenCV's Haar frontal-face cascade (Intel BSD-style
  licence, in the file's header), the face-box fallback;
* ``detector_bias/ict_mediapipe478.npz``: MediaPipe's learned landmark placement on the ICT model (made by this
  project from the ICT model, MIT), the fit's default detector bias.

Read them through these functions (:mod:`importlib.resources`): the product reads no data from outside the package
(test data beside the repository is for tests only).
"""

from __future__ import annotations

import atexit
import contextlib
from functools import lru_cache
from importlib.resources import as_file, files
from pathlib import Path

from ..errors import DeageError

ICT_LIGHT = ("ict_facekit_light", "ict_face_light_facearea.npz")
MEDIAPIPE_CANONICAL = ("mediapipe_face_geometry", "canonical_face_model.obj")
YUNET = ("yunet", "face_detection_yunet_2023mar.onnx")
HAAR = ("opencv_haarcascades", "haarcascade_frontalface_default.xml")

_extracted: list[contextlib.ExitStack] = []  # files extracted from a zipped install, removed at exit


@lru_cache(maxsize=None)
def asset_path(folder: str, name: str) -> Path:
    """The file ``folder/name`` of this package as a file-system path (OpenCV and numpy need one); a zipped install
    extracts it once per process."""
    res = files(__name__).joinpath(folder).joinpath(name)
    if not res.is_file():
        raise DeageError(f"the runtime asset {folder}/{name} is missing from the installed package",
                         hint="reinstall the project (`./dev setup` or `pip install .`); see reconstruct/assets/"
                              "SOURCES.md")
    if isinstance(res, Path):
        return res
    if not _extracted:
        _extracted.append(contextlib.ExitStack())
        atexit.register(_extracted[0].close)
    return _extracted[0].enter_context(as_file(res))


def ict_light_path() -> Path:
    """The ICT-FaceKit light model npz (cm; see :func:`reconstruct.face.ict.load_ict_light`)."""
    return asset_path(*ICT_LIGHT)


def mediapipe_canonical_path() -> Path:
    """MediaPipe's canonical face mesh OBJ (468 vertices; vertex i = Face Mesh landmark i; cm)."""
    return asset_path(*MEDIAPIPE_CANONICAL)


def yunet_path() -> Path:
    """The YuNet face detector ONNX for ``cv2.FaceDetectorYN``."""
    return asset_path(*YUNET)


#: (model name, landmark scheme) -> file of a shipped detector bias (reconstruct.face.detector_bias)
DETECTOR_BIAS = {("ict", "mediapipe478"): ("detector_bias", "ict_mediapipe478.npz")}


def detector_bias_path(model: str, scheme: str) -> Path | None:
    """The shipped detector bias of ``scheme`` on face model ``model``, or None when none ships."""
    key = DETECTOR_BIAS.get((model, scheme))
    return None if key is None else asset_path(*key)


def haar_path() -> Path:
    """OpenCV's Haar frontal-face cascade XML (OpenCV 5 wheels no longer ship it)."""
    return asset_path(*HAAR)
