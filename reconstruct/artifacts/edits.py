"""The age stage's result: one :class:`~reconstruct.methods.FaceEdit` per output frame.

File ``out/age/<frame:06d>.npz`` (:func:`edit_path`): ``frame``, ``kind`` (``image`` | ``mesh``), ``info`` (JSON)
and whichever of ``image`` (H, W, 3) float32, ``mask`` (H, W) float32, ``vertices`` (V, 3) float32 metres,
``vertex_albedo`` (V, 3), ``albedo_texture`` (S, S, 3), ``keep`` (H, W) bool, ``landmark_shift`` (N, 2) the edit has (shapes and units: the FaceEdit docstring).
Written with fixed zip timestamps (byte-identical files for identical edits).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..methods import FaceEdit

ARRAYS = ("image", "mask", "vertices", "vertex_albedo", "albedo_texture", "keep", "landmark_shift")


def edit_path(stage_dir: Path, frame: int) -> Path:
    return Path(stage_dir) / f"{int(frame):06d}.npz"


def save_edit(edit: FaceEdit, path: Path) -> None:
    from ..executors.frames import save_npz

    arrays = {k: getattr(edit, k) for k in ARRAYS if getattr(edit, k) is not None}
    if edit.blend != "composite":
        arrays["blend"] = np.asarray(edit.blend)
    save_npz(path, frame=np.asarray(edit.frame), kind=np.asarray(edit.kind),
             info=np.asarray(json.dumps(dict(edit.info), sort_keys=True)), **arrays)


def load_edit(path: Path) -> FaceEdit:
    with np.load(path, allow_pickle=False) as d:
        get = lambda k: d[k] if k in d.files else None  # noqa: E731
        return FaceEdit(frame=int(d["frame"]), kind=str(d["kind"]), info=json.loads(str(d["info"])),
                        blend=str(d["blend"]) if "blend" in d.files else "composite", **{k: get(k) for k in ARRAYS})
