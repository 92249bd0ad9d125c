"""Plate-preserving face retouching: every output pixel comes from the plate, moved or filtered.

- :mod:`.roi`: the face's region of interest and a camera cropped to it (work on the face, not the frame);
- :mod:`.warp`: a dense, occlusion-aware 2D warp of the plate from two poses of the same mesh (the fitted face
  and its edited shape), extended smoothly past the face and faded to zero, so there is no edge to hide;
- :mod:`.regions`: the age regions (forehead, crow's feet, under-eye, nasolabial and marionette folds) as
  per-vertex weights of a face model, rasterised into the image;
- :mod:`.skin`: the wrinkle frequency band reduced inside those regions (pores and film grain kept), blotches
  evened out, and the skin's low-frequency tone moved toward a reference.

Used by the ``digital_human`` method's default ``plate`` mode.
"""

from .regions import AGE_REGIONS, region_weights
from .roi import Roi, crop_camera, face_roi
from .skin import SkinSettings, retouch_skin
from .warp import FaceWarp, apply_warp, face_warp, warp_points, warp_region

__all__ = ["AGE_REGIONS", "FaceWarp", "Roi", "SkinSettings", "apply_warp", "crop_camera", "face_roi", "face_warp",
           "region_weights", "retouch_skin", "warp_points", "warp_region"]
