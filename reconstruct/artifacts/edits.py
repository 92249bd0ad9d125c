"""The age stage's result: one :class:`~reconstruct.methods.FaceEdit` per output frame.

File ``out/age/<frame:06d>.npz`` (:func:`edit_path`): ``frame``, ``kind`` (``image`` | ``mesh``), ``info`` (JSON)
and whichever of ``image`` (h, w, 3), ``mask`` (h, w) (both 16-bit fixed point, :mod:`.codec`), ``origin`` (2,)
int (the crop's top-left pixel on the plate; absent: (0, 0)), ``keep`` (h, w) bool, ``vertices`` (V, 3) float32
metres, ``vertex_albedo`` (V, 3), ``albedo_texture`` (S, S, 3), ``landmark_shift`` (N, 2) the edit has (shapes and
units: the FaceEdit docstring). Stored uncompressed, with fixed zip timestamps (byte-identical files for identical
edits).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..methods import FaceEdit
from .codec import decode_unit, encode_unit

ARRAYS = ("image", "mask", "vertices", "vertex_albedo", "albedo_texture", "keep", "landmark_shift")
UNIT = ("image", "mask")  # stored as 16-bit fixed point


def edit_path(stage_dir: Path, frame: int) -> Path:
    return Path(stage_dir) / f"{int(frame):06d}.npz"


def save_edit(edit: FaceEdit, path: Path, sync: bool = True) -> tuple[str, int]:
    """Write ``edit`` (``sync=False`` inside a stage's temporary folder: see
    :func:`reconstruct.session.atomic_path`); returns the file's ``(sha256 hex, bytes)``
    (:func:`reconstruct.executors.frames.save_npz`)."""
    from ..executors.frames import save_npz

    arrays = {k: (encode_unit(v) if k in UNIT else v) for k in ARRAYS if (v := getattr(edit, k)) is not None}
    if edit.blend != "composite":
        arrays["blend"] = np.asarray(edit.blend)
    if edit.origin != (0, 0):
        arrays["origin"] = np.asarray(edit.origin, np.int64)
    return save_npz(path, compress=False, sync=sync, frame=np.asarray(edit.frame), kind=np.asarray(edit.kind),
                    info=np.asarray(json.dumps(dict(edit.info), sort_keys=True)), **arrays)


def load_edit(path: Path) -> FaceEdit:
    with np.load(path, allow_pickle=False) as d:
        get = lambda k: (decode_unit(d[k]) if k in UNIT else d[k]) if k in d.files else None  # noqa: E731
        origin = tuple(int(v) for v in d["origin"]) if "origin" in d.files else (0, 0)
        return FaceEdit(frame=int(d["frame"]), kind=str(d["kind"]), info=json.loads(str(d["info"])),
                        blend=str(d["blend"]) if "blend" in d.files else "composite", origin=origin,
                        **{k: get(k) for k in ARRAYS})
