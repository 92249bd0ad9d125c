"""Test helper: the ICT-FaceKit light model (metres, via the project's loader) with its 68-point map and the
computed MediaPipe correspondence, plus the face region used for error figures. Cached per test process."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from reconstruct.assets import ict_light_path, mediapipe_canonical_path
from reconstruct.face.model import FaceModel

ICT = ict_light_path()  # shipped with the package (reconstruct/assets)
MP_OBJ = mediapipe_canonical_path()


@lru_cache(maxsize=1)
def load_ict() -> FaceModel:
    from reconstruct.face.correspondence import mediapipe_correspondence, with_landmarks
    from reconstruct.face.ict import load_ict_light

    model = load_ict_light(ICT)
    return with_landmarks(model, mediapipe_correspondence(model, MP_OBJ))


@lru_cache(maxsize=1)
def ict_face_region() -> np.ndarray:
    """Vertices covered by MediaPipe's face mesh (5362 of 9409 on ICT)."""
    from reconstruct.face.correspondence import mediapipe_face_region

    return mediapipe_face_region(load_ict(), MP_OBJ)
