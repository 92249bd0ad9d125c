"""ICT-FaceKit loaders (MIT licence, github.com/ICT-VGL/ICT-FaceKit): the light npz and the upstream OBJ folder.

* :func:`load_ict_light` reads ``ict_face_light_facearea.npz`` (built in: ``reconstruct/assets/ict_facekit_light``; cm).
* :func:`load_ict_folder` reads the upstream ``FaceXModel/`` folder: ``generic_neutral_mesh.obj``,
  ``identityNNN.obj`` (full shapes; the basis is their difference to the neutral mesh, coefficients ~ N(0, 1)) and
  one OBJ per expression blendshape (weights in [0, 1]), all with the same vertex order. Units cm.

Both return a :class:`FaceModel` in metres with an ``ibug68`` landmark map (one-hot barycentrics on the listed
vertices), regions and a procedural albedo (ICT ships none). The model frame is ICT's: +x to the subject's left,
+y up, +z out of the face.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import FaceModelError
from .albedo import bake_texture, procedural_albedo
from .features import JAW, regions_from_landmarks
from .model import FaceModel, LandmarkMap, read_npz

log = logging.getLogger(__name__)
CM = 0.01
#: ICT face area (upstream README): the first 9409 vertices are the face, scalp, ears and neck front.
FACE_AREA_VERTICES = 9409
LICENCE = "ICT-FaceKit (c) 2020 USC ICT, MIT licence"


def vertex_landmark_map(scheme: str, vertex_ids: np.ndarray, triangles: np.ndarray,
                        weights: np.ndarray | None = None) -> LandmarkMap:
    """A :class:`LandmarkMap` whose landmarks sit exactly on given vertices (one-hot barycentrics)."""
    vid = np.asarray(vertex_ids, np.int64).reshape(-1)
    tris = np.asarray(triangles)
    bary = np.zeros((len(vid), 3), np.float32)
    tri_of = np.full(len(vid), -1, np.int32)
    for i, v in enumerate(vid):
        rows, cols = np.nonzero(tris == v)
        if len(rows) == 0:
            raise FaceModelError(f"landmark vertex {v} belongs to no triangle",
                                 hint="the landmark vertex list does not match this mesh")
        tri_of[i] = rows[0]
        bary[i, cols[0]] = 1.0
    w = np.ones(len(vid), np.float32) if weights is None else np.asarray(weights, np.float32)
    return LandmarkMap(scheme, tri_of, bary, w)


def ibug68_weights() -> np.ndarray:
    """Reliability of the 68 points: jaw-line contour points slide on the surface, so 0.5; others 1."""
    w = np.ones(68, np.float32)
    w[JAW] = 0.5
    return w


def finish_model(name: str, mean: np.ndarray, identity: np.ndarray, expression: np.ndarray, triangles: np.ndarray,
                 expression_names, uvs: np.ndarray, triangle_uvs: np.ndarray, lm68_vertices: np.ndarray | None,
                 source: str, paint_eyes: bool = False, texture_size: int = 1024,
                 expression_kind: str = "blendshape", hair: bool = False) -> FaceModel:
    """Add landmarks, regions and procedural albedo to raw arrays (metres) and build the model."""
    landmarks, regions, albedo, tex = {}, {}, None, None
    if lm68_vertices is not None:
        lmap = vertex_landmark_map("ibug68", lm68_vertices, triangles, ibug68_weights())
        landmarks["ibug68"] = lmap
        lm = lmap.points(mean.astype(np.float64), triangles)
        regions = regions_from_landmarks(mean, lm)
        albedo = procedural_albedo(mean, lm, paint_eyes=paint_eyes, hair=hair)
        if len(uvs) and len(triangle_uvs) == len(triangles) and texture_size:
            tex = bake_texture(mean, triangles, uvs, triangle_uvs, lm, size=texture_size, paint_eyes=paint_eyes,
                               hair=hair)
    return FaceModel(
        name=name, mean=mean.astype(np.float32), identity_basis=identity.astype(np.float32),
        expression_basis=expression.astype(np.float32), triangles=np.asarray(triangles, np.int32),
        expression_names=tuple(str(x) for x in expression_names), expression_kind=expression_kind,  # type: ignore[arg-type]
        uvs=np.asarray(uvs, np.float32).reshape(-1, 2), triangle_uvs=np.asarray(triangle_uvs, np.int32).reshape(-1, 3),
        albedo_mean=albedo, albedo_texture=tex, landmarks=MappingProxyType(landmarks),
        regions=MappingProxyType(regions), source=source)


def load_ict_light(path: Path, texture_size: int = 1024) -> FaceModel:
    """Read the ICT-FaceKit light npz (cm) into a model in metres."""
    path = Path(path)
    keys = ("mean", "identity_basis", "expression_basis", "triangles", "expression_names")
    hint = (f"pass an ICT-FaceKit light npz ({', '.join(keys)}; like reconstruct/assets/ict_facekit_light) or the "
            "upstream FaceXModel folder")
    d = read_npz(path, "an ICT-FaceKit model", hint=hint)
    missing = [k for k in keys if k not in d]
    if missing:
        raise FaceModelError(f"{path} is not an ICT-FaceKit model: missing {', '.join(missing)}", hint=hint)
    lm = d.get("landmarks_68_multipie")
    uvs = d.get("uvs", np.zeros((0, 2)))
    tuv = d.get("triangle_uvs", np.zeros((0, 3)))
    return finish_model("ict", d["mean"] * CM, d["identity_basis"] * CM, d["expression_basis"] * CM,
                        d["triangles"], d["expression_names"], uvs, tuv, lm,
                        source=f"{path} ({LICENCE})", texture_size=texture_size)


# -- upstream OBJ folder ----------------------------------------------------------------------------------------
def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minimal OBJ reader: ``(vertices (V, 3), triangles (F, 3), uvs (T, 2), triangle_uvs (F, 3) or (0, 3))``;
    polygons are fanned into triangles."""
    vs, vts, faces, fuv = [], [], [], []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise FaceModelError(f"cannot read {path}: {exc.strerror}") from exc
    for line in text.splitlines():
        if line.startswith("v "):
            vs.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("vt "):
            vts.append([float(x) for x in line.split()[1:3]])
        elif line.startswith("f "):
            items = [c.split("/") for c in line.split()[1:]]
            vi = [int(c[0]) - 1 for c in items]
            ti = [int(c[1]) - 1 if len(c) > 1 and c[1] else -1 for c in items]
            for k in range(1, len(vi) - 1):
                faces.append([vi[0], vi[k], vi[k + 1]])
                fuv.append([ti[0], ti[k], ti[k + 1]])
    if not vs:
        raise FaceModelError(f"{path} has no vertices: not an OBJ mesh")
    f = np.array(faces, np.int32).reshape(-1, 3)
    t = np.array(fuv, np.int32).reshape(-1, 3)
    if t.size and t.min() < 0:
        t = np.zeros((0, 3), np.int32)
    return np.array(vs, np.float64), f, np.array(vts, np.float64).reshape(-1, 2), t


def load_ict_folder(folder: Path, lm68_vertices: np.ndarray | None = None, face_only: bool = True,
                    max_identity: int | None = None, texture_size: int = 1024) -> FaceModel:
    """Read an upstream ICT-FaceKit ``FaceXModel`` folder (OBJs in cm) into a model in metres.

    Args:
        folder: the folder holding ``generic_neutral_mesh.obj``, ``identity000.obj`` ... and expression OBJs.
        lm68_vertices: (68,) vertex indices of the 68 landmarks (the ICT README's list; ``reconstruct models
            import`` takes them from the built-in light npz, same vertex order); None = no ibug68 map.
        face_only: keep only the face area (the first 9409 vertices), as the light npz does.
        max_identity: read only this many identity shapes.
    """
    folder = Path(folder)
    neutral_path = folder / "generic_neutral_mesh.obj"
    if not neutral_path.exists():
        raise FaceModelError(f"{folder} is not an ICT-FaceKit FaceXModel folder: no generic_neutral_mesh.obj",
                             hint="pass the FaceXModel folder of github.com/ICT-VGL/ICT-FaceKit")
    mean, tris, uvs, tuv = read_obj(neutral_path)
    ids = sorted(p for p in folder.glob("identity*.obj") if re.fullmatch(r"identity\d+\.obj", p.name))
    if max_identity is not None:
        ids = ids[:max_identity]
    exprs = sorted(p for p in folder.glob("*.obj") if p.name != neutral_path.name and p not in ids
                   and not re.fullmatch(r"identity\d+\.obj", p.name))

    def shape(p: Path) -> np.ndarray:
        v = read_obj(p)[0]
        if v.shape != mean.shape:
            raise FaceModelError(f"{p} has {len(v)} vertices but the neutral mesh has {len(mean)}",
                                 hint="every OBJ of a FaceXModel folder must share the neutral mesh's vertex order")
        return v - mean

    identity = np.stack([shape(p) for p in ids]) if ids else np.zeros((0, *mean.shape))
    expression = np.stack([shape(p) for p in exprs]) if exprs else np.zeros((0, *mean.shape))
    if face_only and len(mean) > FACE_AREA_VERTICES:
        keep = np.all(tris < FACE_AREA_VERTICES, axis=1)
        tris, tuv = tris[keep], (tuv[keep] if len(tuv) else tuv)
        mean, identity, expression = (mean[:FACE_AREA_VERTICES], identity[:, :FACE_AREA_VERTICES],
                                      expression[:, :FACE_AREA_VERTICES])
    log.info("ICT folder %s: %d vertices, %d identity, %d expression shapes", folder, len(mean), len(ids), len(exprs))
    return finish_model("ict", mean * CM, identity * CM, expression * CM, tris, [p.stem for p in exprs], uvs, tuv,
                        lm68_vertices, source=f"{folder} ({LICENCE})", texture_size=texture_size)
