"""The project's one face-model format.

A linear morphable model in its own *model frame* (right-handed, metres; ICT and FLAME: +x to the subject's left,
+y up, +z out of the face). The fit's head pose maps model frame to world (OpenCV-convention world, metres).

    vertices(alpha, beta) = mean + sum_i alpha_i * identity_basis[i] + sum_j beta_j * expression_basis[j]

Identity coefficients ``alpha`` are scaled so their prior is N(0, 1) (``identity_std`` rescales a source's basis);
expression weights ``beta`` are blendshape weights in [0, 1] (ICT/ARKit) or N(0, 1) PCA coefficients
(``expression_kind``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Mapping

import numpy as np

from ..errors import FaceModelError


@dataclass(frozen=True, slots=True, eq=False)
class LandmarkMap:
    """Where the points of a 2D landmark scheme lie on the model surface.

    Attributes:
        scheme: landmark scheme, e.g. ``"ibug68"`` or ``"mediapipe478"``.
        triangle: (N,) int32 triangle index of each landmark; -1 where the landmark has no correspondence.
        bary: (N, 3) float32 barycentric coordinates in that triangle (rows sum to 1).
        weight: (N,) float32 reliability weight in [0, 1] (0 = do not use, e.g. jaw-line contour points that
            slide on the surface).
    """

    scheme: str
    triangle: np.ndarray
    bary: np.ndarray
    weight: np.ndarray

    def points(self, vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
        """(V, 3) vertices -> (N, 3) landmark positions (NaN where there is no correspondence)."""
        tri = np.where(self.triangle < 0, 0, self.triangle)
        p = np.einsum("nk,nkd->nd", self.bary, vertices[triangles[tri]])
        p[self.triangle < 0] = np.nan
        return p


@dataclass(frozen=True, slots=True, eq=False)
class FaceModel:
    """A linear face model. Units: metres. Shapes use V vertices, F triangles, Ki identity and Ke expression modes.

    Attributes:
        name: model name (``"ict"``, ``"demo"``, ``"flame2023"`` ...).
        mean: (V, 3) float32 neutral mean shape, model frame.
        identity_basis: (Ki, V, 3) float32 offsets per unit identity coefficient (prior N(0, 1)).
        expression_basis: (Ke, V, 3) float32 offsets per unit expression weight.
        triangles: (F, 3) int32 vertex indices, counter-clockwise seen from outside.
        expression_names: (Ke,) names (ARKit names for ICT).
        expression_kind: ``"blendshape"`` (weights in [0, 1]) or ``"pca"`` (coefficients ~ N(0, 1)).
        uvs: (T, 2) float32 texture coordinates in [0, 1], origin bottom-left (OBJ convention); may be empty.
        triangle_uvs: (F, 3) int32 indices into ``uvs``; may be empty.
        albedo_mean: (V, 3) float32 linear RGB in [0, 1] per vertex, or None.
        albedo_basis: (Ka, V, 3) float32 per-vertex albedo modes, or None.
        albedo_texture: (Ht, Wt, 3) float32 linear-RGB albedo in [0, 1] over ``uvs`` (row 0 = top, i.e. v = 1),
            or None (the built-in models carry a procedural one, see :mod:`reconstruct.face.albedo`).
        landmarks: scheme -> LandmarkMap.
        regions: region name -> (V,) bool vertex mask (``"face"`` is used for error figures; also ``"eyes"``,
            ``"lips"``, ``"skin"`` where known).
        source: where the model came from (file, licence note).
    """

    name: str
    mean: np.ndarray
    identity_basis: np.ndarray
    expression_basis: np.ndarray
    triangles: np.ndarray
    expression_names: tuple[str, ...] = ()
    expression_kind: Literal["blendshape", "pca"] = "blendshape"
    uvs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    triangle_uvs: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int32))
    albedo_mean: np.ndarray | None = None
    albedo_basis: np.ndarray | None = None
    albedo_texture: np.ndarray | None = None
    landmarks: Mapping[str, LandmarkMap] = field(default_factory=lambda: MappingProxyType({}))
    regions: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""

    def __post_init__(self) -> None:
        V = self.mean.shape[0]
        if self.mean.ndim != 2 or self.mean.shape[1] != 3:
            raise FaceModelError(f"face model {self.name!r}: mean has shape {self.mean.shape}, expected (V, 3)")
        for nm in ("identity_basis", "expression_basis"):
            b = getattr(self, nm)
            if b.ndim != 3 or b.shape[1:] != (V, 3):
                raise FaceModelError(f"face model {self.name!r}: {nm} has shape {b.shape}, expected (K, {V}, 3)")
        if self.triangles.ndim != 2 or self.triangles.shape[1] != 3 or self.triangles.max() >= V or self.triangles.min() < 0:
            raise FaceModelError(f"face model {self.name!r}: triangles must be (F, 3) indices below {V}")
        if self.expression_names and len(self.expression_names) != self.expression_basis.shape[0]:
            raise FaceModelError(f"face model {self.name!r}: {len(self.expression_names)} expression names for "
                                 f"{self.expression_basis.shape[0]} expression modes")

    def __reduce__(self):
        """Picklable (read-only mapping fields travel as dicts): models go to ``--jobs`` processes and Ray tasks."""
        from dataclasses import fields

        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        kw["landmarks"], kw["regions"] = dict(self.landmarks), dict(self.regions)
        return _rebuild_face_model, (kw,)

    @property
    def n_vertices(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_identity(self) -> int:
        return int(self.identity_basis.shape[0])

    @property
    def n_expression(self) -> int:
        return int(self.expression_basis.shape[0])

    def vertices(self, identity: np.ndarray | None = None, expression: np.ndarray | None = None) -> np.ndarray:
        """(V, 3) float64 vertices in the model frame for coefficient vectors (missing trailing modes are zero)."""
        v = self.mean.astype(np.float64)
        if identity is not None and len(identity):
            a = np.asarray(identity, np.float64)
            v = v + np.tensordot(a, self.identity_basis[: a.size], axes=1)
        if expression is not None and len(expression):
            b = np.asarray(expression, np.float64)
            v = v + np.tensordot(b, self.expression_basis[: b.size], axes=1)
        return v

    def landmark_map(self, scheme: str) -> LandmarkMap:
        if scheme not in self.landmarks:
            raise FaceModelError(f"face model {self.name!r} has no {scheme!r} landmark correspondence; it has "
                                 f"{', '.join(self.landmarks) or 'none'}",
                                 hint="landmark correspondences are computed when the model is imported")
        return self.landmarks[scheme]


def save_face_model(model: FaceModel, path: Path, compress: bool = True) -> None:
    """Store a model as the project's npz format (``reconstruct models import`` writes these). ``compress=False``
    stores the arrays as they are (the converted built-in models' cache, :mod:`.store`: the ICT model's 31 MB of
    arrays read in 0.015 s instead of 0.145 s of inflating, in every process that loads it)."""
    from ..executors.frames import save_npz

    arrays = dict(mean=model.mean, identity_basis=model.identity_basis, expression_basis=model.expression_basis,
                  triangles=model.triangles, expression_names=np.array(model.expression_names, dtype=str),
                  expression_kind=np.array(model.expression_kind), uvs=model.uvs, triangle_uvs=model.triangle_uvs,
                  name=np.array(model.name), source=np.array(model.source), format=np.array("deage-face-model-1"))
    if model.albedo_mean is not None:
        arrays["albedo_mean"] = model.albedo_mean
    if model.albedo_basis is not None:
        arrays["albedo_basis"] = model.albedo_basis
    if model.albedo_texture is not None:
        arrays["albedo_texture"] = model.albedo_texture
    for scheme, lm in model.landmarks.items():
        arrays[f"landmarks/{scheme}/triangle"] = lm.triangle
        arrays[f"landmarks/{scheme}/bary"] = lm.bary
        arrays[f"landmarks/{scheme}/weight"] = lm.weight
    for region, mask in model.regions.items():
        arrays[f"regions/{region}"] = mask
    save_npz(path, compress=compress, **arrays)


def read_npz(path: Path, what: str, hint: str | None = None) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive ``path``; anything else (an empty file, random bytes, a pickle, a damaged
    or pickle-holding archive) is a :class:`FaceModelError` that names the file and says it is not ``what`` (e.g.
    ``"a FLAME model"``). Never unpickles, and never passes numpy's advice to allow pickles on to the user."""
    import zipfile
    import zlib

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise FaceModelError(f"cannot read {path}: {exc.strerror}", hint=hint) from exc
    if not head.startswith(b"PK"):  # an .npz is a zip archive
        raise FaceModelError(f"{path} is not {what}: {'an empty file' if not head else 'not a numpy .npz archive'}",
                             hint=hint)
    try:
        with np.load(path, allow_pickle=False) as d:
            return {k: d[k] for k in d.files}
    except ValueError as exc:
        why = ("it holds pickled Python objects, which are never loaded" if "pickle" in str(exc)
               else "a damaged .npz archive")
        raise FaceModelError(f"{path} is not {what}: {why}", hint=hint) from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise FaceModelError(f"{path} is not {what}: a damaged .npz archive ({type(exc).__name__})",
                             hint=hint) from exc


def load_face_model(path: Path) -> FaceModel:
    """Read a model written by :func:`save_face_model`. Never unpickles (``allow_pickle=False``)."""
    path = Path(path)
    d = read_npz(path, "a face model file", hint="import a model with `reconstruct models import <kind> <path>`")
    if "format" not in d or str(d["format"]) != "deage-face-model-1":
        raise FaceModelError(f"{path} is not in this project's face-model format",
                             hint="convert it with `reconstruct models import <kind> <path>`")
    landmarks, regions = {}, {}
    for k in d:
        if k.startswith("landmarks/") and k.endswith("/triangle"):
            scheme = k.split("/")[1]
            landmarks[scheme] = LandmarkMap(scheme, d[k], d[f"landmarks/{scheme}/bary"],
                                            d[f"landmarks/{scheme}/weight"])
        elif k.startswith("regions/"):
            regions[k.split("/", 1)[1]] = d[k].astype(bool)
    return FaceModel(
        name=str(d["name"]), mean=d["mean"], identity_basis=d["identity_basis"],
        expression_basis=d["expression_basis"], triangles=d["triangles"],
        expression_names=tuple(str(x) for x in d["expression_names"]), expression_kind=str(d["expression_kind"]),
        uvs=d["uvs"], triangle_uvs=d["triangle_uvs"],
        albedo_mean=d["albedo_mean"] if "albedo_mean" in d else None,
        albedo_basis=d["albedo_basis"] if "albedo_basis" in d else None,
        albedo_texture=d["albedo_texture"] if "albedo_texture" in d else None,
        landmarks=MappingProxyType(landmarks), regions=MappingProxyType(regions), source=str(d["source"]),
    )


def _rebuild_face_model(kw: dict) -> FaceModel:
    return FaceModel(**{**kw, "landmarks": MappingProxyType(kw["landmarks"]), "regions": MappingProxyType(kw["regions"])})
