"""Landmark correspondences: where each point of a 2D landmark scheme lies on a face model's surface.

Computed, never typed in. A *source* point set whose points are the scheme's landmarks (MediaPipe's canonical face
mesh: vertex i = Face Mesh landmark i) is registered to the model:

1. similarity alignment (centroid + RMS scale; both meshes share the +y up / +z forward convention), then
2. similarity ICP against the model's mean surface (closest surface points, Umeyama), then
3. non-rigid ICP: the model's own identity modes (with their N(0, 1) prior) deform the model toward the source
   together with the similarity (linear least squares per iteration), so that the surfaces coincide;
4. each source point is projected onto the deformed model surface (closest point -> triangle + barycentrics). The
   barycentrics are then used on any identity/expression of the model.

Points that land farther than ``max_distance`` from the surface (MediaPipe's inner-lip points over the mouth hole,
iris points inside the eyeball) get no correspondence (triangle -1). Contour points (MediaPipe's face oval, the
68-point jaw line) slide on the silhouette and get a reduced weight.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Sequence

import numpy as np

from ..errors import FaceModelError
from .model import FaceModel, LandmarkMap

log = logging.getLogger(__name__)

#: Weight of points on the face outline, which slide along the silhouette when the head turns.
CONTOUR_WEIGHT = 0.3
#: Weight of MediaPipe's brow points pulled onto the model's 68-point brow line (eye/mouth hole features: 4).
BROW_WEIGHT = 0.5
#: 68-point (iBUG/Multi-PIE) scheme: indices 0..16 are the jaw contour.
IBUG68_CONTOUR = tuple(range(17))


def closest_surface_points(vertices: np.ndarray, triangles: np.ndarray, query: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Closest points on a triangle mesh (open3d Embree raycasting scene).

    Args:
        vertices: (V, 3) mesh vertices. triangles: (F, 3) int. query: (N, 3) points.
    Returns:
        points (N, 3) float64, triangle (N,) int32, bary (N, 3) float64 (rows sum to 1), distance (N,) float64.
    """
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vertices, np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(triangles, np.uint32)))
    q = o3d.core.Tensor(np.ascontiguousarray(query, np.float32))
    res = scene.compute_closest_points(q)
    tri = res["primitive_ids"].numpy().astype(np.int64)
    uv = res["primitive_uvs"].numpy().astype(np.float64)
    bary = np.stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1)
    bary = np.clip(bary, 0.0, 1.0)
    bary /= bary.sum(1, keepdims=True)
    pts = np.einsum("nk,nkd->nd", bary, np.asarray(vertices, np.float64)[triangles[tri]])
    dist = np.linalg.norm(pts - query, axis=1)
    return pts, tri.astype(np.int32), bary, dist


def umeyama(src: np.ndarray, dst: np.ndarray, w: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising sum w ||s R src + t - dst||^2 (Umeyama 1991, eq. 40-42)."""
    w = np.ones(len(src)) if w is None else np.asarray(w, float)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1
    R = U @ D @ Vt
    var_s = (w * (xs**2).sum(1)).sum()
    s = float(np.trace(np.diag(S) @ D) / var_s)
    t = mu_d - s * R @ mu_s
    return s, R, t


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """Boundary loops of a triangle mesh as (M, 2) edge arrays, largest loop first (the outer border)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    e = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    u, c = np.unique(e, axis=0, return_counts=True)
    b = u[c == 1]
    if len(b) == 0:
        return []
    n = int(triangles.max()) + 1
    g = sp.coo_matrix((np.ones(len(b)), (b[:, 0], b[:, 1])), shape=(n, n))
    _, lab = connected_components(g, directed=False)
    loops = [b[lab[b[:, 0]] == k] for k in np.unique(lab[b[:, 0]])]
    return sorted(loops, key=len, reverse=True)


def _closest_on_edges(vertices: np.ndarray, edges: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest points of (N, 3) queries on polyline edges (M, 2): (vertex ids (N, 3), weights (N, 3))."""
    a, b = vertices[edges[:, 0]], vertices[edges[:, 1]]
    ab = b - a
    u = np.clip(np.einsum("nmd,md->nm", query[:, None] - a[None], ab) / np.maximum((ab**2).sum(1), 1e-18), 0, 1)
    p = a[None] + u[..., None] * ab[None]
    j = np.argmin(((p - query[:, None]) ** 2).sum(-1), axis=1)
    uj = u[np.arange(len(query)), j]
    ids = np.stack([edges[j, 0], edges[j, 1], edges[j, 1]], axis=1)
    w = np.stack([1 - uj, uj, np.zeros_like(uj)], axis=1)
    return ids, w


def register_points(model: FaceModel, source: np.ndarray, *, iterations: int = 30, n_identity: int = 60,
                    prior: float = 1.0, trim: float = 0.9, sigma: float = 0.002,
                    features: Sequence[tuple[np.ndarray, np.ndarray]] = ()) -> tuple[np.ndarray, dict]:
    """Register a source point set (N, 3) (any units) to the model.

    ``features``: (source point indices, model boundary edges (M, 2)) pairs: those source points are matched to the
    closest point of that model boundary (e.g. MediaPipe's eye contour to the model's eye hole) instead of the
    closest surface point, which pins features that ICP alone lets slide along the surface.
    Returns the source points mapped into the model frame (N, 3) metres, and ``info`` with the deformed model
    ``vertices`` (V, 3), ``identity``, and the similarity ``scale``, ``R``, ``t``.
    """
    src = np.asarray(source, np.float64)
    mean = model.mean.astype(np.float64)
    verts = mean
    tris = model.triangles
    # 1. centroid + RMS scale against the model's frontal half (both meshes are face-forward, y-up).
    front = verts[verts[:, 2] > np.median(verts[:, 2])]
    sc = np.sqrt(((src - src.mean(0)) ** 2).sum(1).mean())
    sm = np.sqrt(((front - front.mean(0)) ** 2).sum(1).mean())
    s, R, t = sm / sc, np.eye(3), front.mean(0) - sm / sc * src.mean(0)
    k = min(n_identity, model.n_identity)
    basis = model.identity_basis[:k].astype(np.float64)  # (k, V, 3)
    alpha = np.zeros(k)
    feat_w = 4.0
    for it in range(iterations):
        x = s * src @ R.T + t
        _, tri, bary, dist = closest_surface_points(verts, tris, x)
        ids, w = tris[tri].astype(np.int64), bary
        weight = (dist <= np.quantile(dist, trim)).astype(float)
        for feat in features:
            idx, edges = feat[0], feat[1]
            fi, fw = _closest_on_edges(verts, edges, x[idx])
            ids[idx], w[idx], weight[idx] = fi, fw, (feat[2] if len(feat) > 2 else feat_w)
        pts = np.einsum("nk,nkd->nd", w, verts[ids])
        if it >= iterations // 3:
            # non-rigid: the model's identity modes move its surface toward x (MAP with the N(0, 1) prior).
            B = np.einsum("nk,jnkd->njd", w, basis[:, ids])  # (N, k, 3)
            base = np.einsum("nk,nkd->nd", w, mean[ids])
            sw = np.sqrt(weight)[:, None, None]
            A = (B * sw).transpose(0, 2, 1).reshape(-1, k)
            b = ((x - base) * sw[..., 0]).reshape(-1)
            alpha = np.linalg.solve(A.T @ A + prior * sigma**2 * np.eye(k), A.T @ b)
            verts = mean + np.tensordot(alpha, basis, axes=1)
            pts = np.einsum("nk,nkd->nd", w, verts[ids])
        s, R, t = _compose(umeyama(x, pts, weight + 1e-9), (s, R, t))
    x = s * src @ R.T + t
    return x, {"vertices": verts, "identity": alpha, "scale": s, "R": R, "t": t}


def _compose(delta, cur):
    ds, dR, dt = delta
    s, R, t = cur
    return ds * s, dR @ R, ds * dR @ t + dt


def landmark_map_from_points(model: FaceModel, points: np.ndarray, scheme: str, *, vertices: np.ndarray | None = None,
                             max_distance: float = 0.006, contour: Sequence[int] = ()) -> LandmarkMap:
    """Project model-frame points (N, 3) metres onto the model surface (``vertices`` or the mean) -> LandmarkMap."""
    verts = model.mean if vertices is None else vertices
    _, tri, bary, dist = closest_surface_points(verts, model.triangles, points)
    tri = tri.copy()
    far = dist > max_distance
    tri[far] = -1
    weight = np.where(far, 0.0, 1.0).astype(np.float32)
    weight[list(contour)] = np.minimum(weight[list(contour)], CONTOUR_WEIGHT)
    log.info("%s correspondence on %s: %d/%d points on the surface (median distance %.2f mm)", scheme, model.name,
             int((~far).sum()), len(points), 1e3 * float(np.median(dist)))
    return LandmarkMap(scheme=scheme, triangle=tri.astype(np.int32), bary=bary.astype(np.float32), weight=weight)


def landmark_map_from_vertices(model: FaceModel, vertex_ids: np.ndarray, scheme: str,
                               contour: Sequence[int] = ()) -> LandmarkMap:
    """A LandmarkMap from given vertex indices (e.g. ICT's 68-point vertex list): a triangle containing each
    vertex, with a one-hot barycentric."""
    vertex_ids = np.asarray(vertex_ids, np.int64)
    tris = model.triangles
    tri = np.full(len(vertex_ids), -1, np.int32)
    bary = np.zeros((len(vertex_ids), 3), np.float32)
    for i, v in enumerate(vertex_ids):
        rows, cols = np.nonzero(tris == v)
        if len(rows) == 0:
            continue
        tri[i] = rows[0]
        bary[i, cols[0]] = 1.0
    weight = (tri >= 0).astype(np.float32)
    weight[list(contour)] = np.minimum(weight[list(contour)], CONTOUR_WEIGHT)
    return LandmarkMap(scheme=scheme, triangle=tri, bary=bary, weight=weight)


def mediapipe_canonical_points(path: Path) -> np.ndarray:
    """(468 or 478, 3) vertices of MediaPipe's canonical face mesh OBJ (vertex i = Face Mesh landmark i), cm."""
    path = Path(path)
    try:
        rows = [line.split()[1:4] for line in path.read_text().splitlines() if line.startswith("v ")]
        pts = np.asarray(rows, np.float64)
    except (OSError, ValueError) as exc:
        raise FaceModelError(f"cannot read MediaPipe canonical mesh {path}: {exc}",
                             hint="use canonical_face_model.obj or face_model_with_iris.obj from "
                                  "mediapipe/modules/face_geometry/data") from exc
    if pts.shape[0] not in (468, 478):
        raise FaceModelError(f"{path} has {pts.shape[0]} vertices; a MediaPipe canonical face mesh has 468 or 478")
    return pts


def _obj_faces(path: Path) -> np.ndarray:
    faces = [[int(t.split("/")[0]) - 1 for t in line.split()[1:4]]
             for line in Path(path).read_text().splitlines() if line.startswith("f ")]
    return np.asarray(faces, np.int64)


def mediapipe_face_region(model: FaceModel, canonical_obj: Path, max_distance: float = 0.004) -> np.ndarray:
    """(V,) bool: model vertices covered by MediaPipe's face mesh (forehead to chin, ear to ear, within
    ``max_distance`` metres of the registered canonical mesh). Used as the "face" region for error figures."""
    src = mediapipe_canonical_points(canonical_obj)[:468]
    x, info = register_points(model, src, features=_mediapipe_features(model, src))
    faces = _obj_faces(canonical_obj)
    faces = faces[(faces < 468).all(1)]
    _, _, _, dist = closest_surface_points(x, faces, info["vertices"])
    return dist <= max_distance


def mediapipe_face_oval() -> tuple[int, ...]:
    """Indices of MediaPipe's face-oval landmarks (from mediapipe's own connection table)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    return tuple(sorted({i for e in FACEMESH_FACE_OVAL for i in e}))


def _mediapipe_features(model: FaceModel, src: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pair MediaPipe's eye contours and inner-lip contour (from mediapipe's connection tables) with the model's
    eye and mouth holes (its inner boundary loops), each hole chosen as the one nearest the contour after a
    similarity alignment of the two point sets' bounding boxes. Models without holes get no features."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    loops = boundary_loops(model.triangles)[1:]  # drop the outer border
    if not loops:
        return []
    lips = _edge_components(fmc.FACEMESH_LIPS)
    inner_lip = min(lips, key=lambda c: np.ptp(src[c, 0]))  # the inner of the two lip loops is narrower
    contours = [np.array(sorted({i for e in fmc.FACEMESH_LEFT_EYE for i in e})),
                np.array(sorted({i for e in fmc.FACEMESH_RIGHT_EYE for i in e})), inner_lip]
    mean = model.mean.astype(np.float64)
    # normalise both sets to their bounding boxes to compare hole and contour centres
    def norm(p, ref):
        lo, hi = ref.min(0), ref.max(0)
        return (p - lo) / (hi - lo)
    front = mean[mean[:, 2] > np.median(mean[:, 2])]
    feats, used = [], set()
    for c in contours:
        cc = norm(src[c].mean(0, keepdims=True), src)[0, :2]
        d = [np.linalg.norm(norm(mean[np.unique(lp)].mean(0, keepdims=True), front)[0, :2] - cc) for lp in loops]
        j = int(np.argmin(d))
        if j in used or d[j] > 0.15:
            continue
        used.add(j)
        feats.append((c, loops[j]))
    feats += _brow_features(model, src, fmc, norm, front)
    log.debug("mediapipe features: %d (eye/mouth holes, brows)", len(feats))
    return feats


def _brow_features(model: FaceModel, src: np.ndarray, fmc, norm, front) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pair MediaPipe's eyebrow points with the model's 68-point brow polylines (points 17-21, 22-26), when the model
    has a 68-point map: on a smooth forehead nothing else stops the brows from sliding up or down."""
    if "ibug68" not in model.landmarks:
        return []
    lm = model.landmarks["ibug68"]
    if lm.triangle.shape[0] != 68 or (lm.triangle[17:27] < 0).any():
        return []
    vid = model.triangles[lm.triangle[17:27], np.argmax(lm.bary[17:27], axis=1)].astype(np.int64)
    lines = [np.stack([vid[0:4], vid[1:5]], 1), np.stack([vid[5:9], vid[6:10]], 1)]
    mean = model.mean.astype(np.float64)
    out = []
    for brow in (fmc.FACEMESH_LEFT_EYEBROW, fmc.FACEMESH_RIGHT_EYEBROW):
        idx = np.array(sorted({i for e in brow for i in e}))
        cc = norm(src[idx].mean(0, keepdims=True), src)[0, 0]
        d = [abs(norm(mean[np.unique(ln)].mean(0, keepdims=True), front)[0, 0] - cc) for ln in lines]
        out.append((idx, lines[int(np.argmin(d))], BROW_WEIGHT))
    return out


def _edge_components(edges) -> list[np.ndarray]:
    """Connected components (vertex index arrays) of an edge set."""
    parent: dict[int, int] = {}

    def find(a):
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a
    for a, b in edges:
        parent[find(a)] = find(b)
    comps: dict[int, list[int]] = {}
    for v in list(parent):
        comps.setdefault(find(v), []).append(v)
    return [np.array(sorted(c)) for c in comps.values()]


def mediapipe_correspondence(model: FaceModel, canonical_obj: Path, *, scheme: str = "mediapipe478",
                             max_distance: float = 0.006) -> LandmarkMap:
    """Compute the MediaPipe Face Mesh correspondence (478 points; iris points 468..477 get none) of a model."""
    src = mediapipe_canonical_points(canonical_obj)
    x, info = register_points(model, src[:468], features=_mediapipe_features(model, src[:468]))
    lm = landmark_map_from_points(model, x, scheme, vertices=info["vertices"], max_distance=max_distance,
                                  contour=mediapipe_face_oval())
    if scheme.endswith("478"):
        n_extra = 10
        lm = LandmarkMap(scheme=scheme, triangle=np.concatenate([lm.triangle, np.full(n_extra, -1, np.int32)]),
                         bary=np.concatenate([lm.bary, np.full((n_extra, 3), 1 / 3, np.float32)]),
                         weight=np.concatenate([lm.weight, np.zeros(n_extra, np.float32)]))
    return lm


def with_landmarks(model: FaceModel, *maps: LandmarkMap) -> FaceModel:
    """A copy of ``model`` with these landmark maps added (replacing same-scheme maps)."""
    lms = dict(model.landmarks)
    for m in maps:
        lms[m.scheme] = m
    return replace(model, landmarks=MappingProxyType(lms))
