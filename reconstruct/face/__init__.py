"""Face models: the one format (:mod:`.model`), loaders, landmark correspondences."""

from .model import FaceModel, LandmarkMap, load_face_model, save_face_model

__all__ = ["FaceModel", "LandmarkMap", "load_face_model", "save_face_model"]
