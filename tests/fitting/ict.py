"""Test helper: load the ICT-FaceKit light npz (cm) as a FaceModel in metres, with its 68-point map and the
computed MediaPipe correspondence. Private to the tests (the face helper's loader is the product's one)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np

from reconstruct.face.correspondence import (IBUG68_CONTOUR, landmark_map_from_vertices, mediapipe_correspondence,
                                             with_landmarks)
from reconstruct.face.model import FaceModel

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ICT = SHARED / "models" / "ict_facekit_light" / "ict_face_light_facearea.npz"
MP_OBJ = SHARED / "models" / "mediapipe_face_geometry" / "canonical_face_model.obj"


@lru_cache(maxsize=1)
def load_ict(with_mediapipe: bool = True) -> FaceModel:
    d = np.load(ICT, allow_pickle=False)
    cm = 0.01
    model = FaceModel(name="ict", mean=(d["mean"] * cm).astype(np.float32),
                      identity_basis=(d["identity_basis"] * cm).astype(np.float32),
                      expression_basis=(d["expression_basis"] * cm).astype(np.float32),
                      triangles=d["triangles"].astype(np.int32),
                      expression_names=tuple(str(x) for x in d["expression_names"]), expression_kind="blendshape",
                      regions=MappingProxyType({"face": np.ones(d["mean"].shape[0], bool)}), source=str(d["source"]))
    lm68 = landmark_map_from_vertices(model, d["landmarks_68_multipie"], "ibug68", contour=IBUG68_CONTOUR)
    model = with_landmarks(model, lm68)
    if with_mediapipe:
        model = with_landmarks(model, mediapipe_correspondence(model, MP_OBJ))
    return model


@lru_cache(maxsize=1)
def ict_face_region() -> np.ndarray:
    from reconstruct.face.correspondence import mediapipe_face_region

    return mediapipe_face_region(load_ict(False), MP_OBJ)
