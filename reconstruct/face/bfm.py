"""Basel Face Model 2017 loader (``model2017-1_*.h5``; registration-only download, never shipped with this project).

Layout read (scalismo statistical-model HDF5): ``shape/representer/points`` (3, V), ``shape/representer/cells``
(3, F), and for ``shape``, ``expression`` and ``color``: ``<part>/model/mean`` (3V,), ``<part>/model/pcaBasis``
(3V, K, orthonormal columns) and ``<part>/model/pcaVariance`` (K,). Modes are scaled by sqrt(variance), so
coefficients are N(0, 1) (identity ``expression_kind="pca"``). Units are detected from the mean's size
(BFM 2017 stores millimetres). Colours are gamma-encoded in the file and converted to linear RGB (the basis to
first order around the mean). Model frame: +x to the subject's left, +y up, +z out of the face.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import FaceModelError
from .model import FaceModel


def _unit_scale(points: np.ndarray) -> float:
    """Metres per file unit, from the head's extent (a face model spans ~0.15-0.4 m)."""
    extent = float(np.linalg.norm(points.max(0) - points.min(0)))
    for scale in (1.0, 1e-2, 1e-3, 1e-6):
        if 0.05 <= extent * scale <= 1.0:
            return scale
    raise FaceModelError(f"cannot tell the units of a face model spanning {extent:g} file units",
                         hint="expected metres, centimetres, millimetres or micrometres")


def _part(h5, part: str, V: int, scale: float) -> tuple[np.ndarray, np.ndarray] | None:
    if part not in h5 or "model" not in h5[part]:
        return None
    g = h5[part]["model"]
    mean = np.asarray(g["mean"], np.float64).reshape(V, 3) * scale
    basis = np.asarray(g["pcaBasis"], np.float64)
    var = np.asarray(g["pcaVariance"], np.float64).reshape(-1)
    if basis.shape != (3 * V, var.size):
        raise FaceModelError(f"BFM {part}/model/pcaBasis has shape {basis.shape}, expected ({3 * V}, {var.size})")
    modes = (basis * np.sqrt(np.clip(var, 0, None))[None, :]).T.reshape(-1, V, 3) * scale
    return mean, modes


def load_bfm2017(path: Path) -> FaceModel:
    """Read a BFM 2017 h5 into a :class:`FaceModel` (metres, per-vertex albedo mean and basis)."""
    import h5py

    path = Path(path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise FaceModelError(f"{path} is not a Basel Face Model: not an HDF5 file",
                             hint="pass model2017-1_bfm_nomouth.h5 or similar") from exc
    with h5:
        try:
            pts = np.asarray(h5["shape/representer/points"], np.float64)
            cells = np.asarray(h5["shape/representer/cells"])
        except KeyError as exc:
            raise FaceModelError(f"{path} is not a Basel Face Model: no shape/representer/points or cells",
                                 hint="expected the BFM 2017 layout (shape/, expression/, color/ groups)") from exc
        pts = pts.T if pts.shape[0] == 3 else pts
        V = len(pts)
        scale = _unit_scale(pts)
        shape = _part(h5, "shape", V, scale)
        if shape is None:
            raise FaceModelError(f"{path}: no shape/model group", hint="expected a BFM 2017 statistical model")
        expr = _part(h5, "expression", V, scale)
        color = _part(h5, "color", V, 1.0)
    tris = (cells.T if cells.shape[0] == 3 else cells).astype(np.int32)
    mean, identity = shape
    if expr is not None:
        mean = mean + expr[0]  # expression mean (usually zero) folded into the neutral shape
        expression = expr[1]
    else:
        expression = np.zeros((0, V, 3))
    albedo_mean = albedo_basis = None
    if color is not None:
        c = np.clip(color[0], 0, 1)
        lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        slope = np.where(c <= 0.04045, 1 / 12.92, 2.4 / 1.055 * ((c + 0.055) / 1.055) ** 1.4)
        albedo_mean = lin.astype(np.float32)
        albedo_basis = (color[1] * slope[None]).astype(np.float32)
    return FaceModel(name="bfm2017", mean=mean.astype(np.float32), identity_basis=identity.astype(np.float32),
                     expression_basis=expression.astype(np.float32), triangles=tris,
                     expression_names=tuple(f"exp{i:03d}" for i in range(len(expression))), expression_kind="pca",
                     albedo_mean=albedo_mean, albedo_basis=albedo_basis, landmarks=MappingProxyType({}),
                     regions=MappingProxyType({}), source=f"{path} (Basel Face Model 2017; see its licence)")
