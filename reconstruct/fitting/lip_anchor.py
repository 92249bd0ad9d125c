"""MediaPipe's inner-lip and eye contours anchored on the model's lip and lid lines (``fit.lips=edges``,
``fit.lids=edges``, the defaults).

The computed MediaPipe correspondence (:mod:`reconstruct.face.correspondence`) pulls MediaPipe's inner-lip contour
onto the model's mouth hole. On ICT that hole is nearly closed in the mean shape (the lips are 0.8 mm apart) and lies
on the inside of the lips, so the closest-point snapping put the *lower* inner-lip points on the upper lip: ICT's
``jawOpen`` moves MediaPipe's points 13 / 14 (upper / lower inner-lip midpoints) by 2.6 / 2.5 mm while the mouth
opens by 38 mm. The fit then had no landmark that follows the lower lip's inner edge; the detector bias's linear
expression term fakes the motion, and the fit reached the detected lip points through blendshape mixes that do
not open the mesh (on the unseen-rig takes the scream and smile were fitted 20-50 % too closed, docs/fitting.md).

Here both halves of MediaPipe's inner-lip contour are placed on the model's own inner-lip line, the iBUG-68 points
60-64 (upper, through 61-63) and 64-60 (lower, through 65-67) that the model ships, joined along the mesh by
shortest paths computed on an open-mouth shape (so that a path cannot cross from one lip to the other). Each
MediaPipe point keeps its arc-length fraction along its half of the contour on MediaPipe's canonical mesh. A
detector bias records the placement it was learned against (``DetectorBias.contours``). Where that is not the fit's
(the shipped file is learned on the computed contours, docs/fitting.md "Detector bias"), of the points placed
differently the part of the bias at the mean face is kept (its constant offset, re-expressed against the fit's
placement, its view term and its weight); its identity and expression slopes, which moved the points without the
mesh, are dropped.

The eye contours get the same treatment (the upper lid on iBUG-68 36-39 / 42-45, the lower on 39-36 / 45-42
through 40-41 / 46-47): the computed ones sit next to the lid margin and follow a blink with 4.9 mm where the
model's lid line moves 7.9 mm; on obama the mean eye-lid residual falls from 2.15 to 1.36 % of the inter-ocular
distance with them anchored.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..face.model import FaceModel, LandmarkMap

log = logging.getLogger(__name__)

#: iBUG-68 inner-lip points: the corners and the upper / lower chains between them
IBUG_UPPER = (60, 61, 62, 63, 64)
IBUG_LOWER = (60, 67, 66, 65, 64)
#: iBUG-68 eye contours (upper lid, lower lid) of its two eyes
IBUG_EYES = (((36, 37, 38, 39), (36, 41, 40, 39)), ((42, 43, 44, 45), (42, 47, 46, 45)))


def _components(edges) -> list[list[int]]:
    adj: dict[int, set[int]] = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    comps, seen = [], set()
    for s in adj:
        if s in seen:
            continue
        stack, comp = [s], []
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            comp.append(v)
            stack.extend(adj[v] - seen)
        comps.append(comp)
    return comps


def _split_cycle(edges, cycle: list[int], canonical: np.ndarray) -> tuple[list[int], list[int]]:
    """A closed contour (its edges) as two chains from its -x end to its +x end: (upper, lower)."""
    cyc = set(cycle)
    adj: dict[int, set[int]] = {}
    for a, b in edges:
        if a in cyc and b in cyc:
            adj.setdefault(a, set()).add(b)
            adj.setdefault(b, set()).add(a)
    left = min(cycle, key=lambda i: canonical[i, 0])
    right = max(cycle, key=lambda i: canonical[i, 0])
    chains = []
    for first in sorted(adj[left]):
        chain, prev = [left, first], left
        while chain[-1] != right:
            nxt = [v for v in adj[chain[-1]] if v != prev]
            prev = chain[-1]
            chain.append(nxt[0])
        chains.append(chain)
    up = 1.0 if canonical[1, 1] > canonical[152, 1] else -1.0  # nose tip above the chin: +y is up
    chains.sort(key=lambda c: -up * canonical[c, 1].mean())
    return chains[0], chains[1]


def inner_lip_chains(canonical: np.ndarray) -> tuple[list[int], list[int]]:
    """MediaPipe's inner-lip contour (from mediapipe's connection table) as two chains of landmark indices from the
    corner on the canonical mesh's -x side to the +x corner: (upper, lower)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_LIPS

    inner = min(_components(FACEMESH_LIPS), key=lambda c: np.ptp(canonical[c, 0]))  # the narrower lip loop
    return _split_cycle(FACEMESH_LIPS, inner, canonical)


def eye_chains(canonical: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """MediaPipe's two eye (lid) contours, each as (upper, lower) chains from its -x corner to its +x corner."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_LEFT_EYE, FACEMESH_RIGHT_EYE

    return [_split_cycle(e, _components(e)[0], canonical) for e in (FACEMESH_LEFT_EYE, FACEMESH_RIGHT_EYE)]


def _edges(triangles: np.ndarray) -> np.ndarray:
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def _shortest_path(adj: list[list[tuple[int, float]]], a: int, b: int) -> list[int]:
    dist = {a: 0.0}
    prev: dict[int, int] = {}
    heap = [(0.0, a)]
    while heap:
        d, v = heapq.heappop(heap)
        if v == b:
            break
        if d > dist.get(v, np.inf):
            continue
        for w, l in adj[v]:
            nd = d + l
            if nd < dist.get(w, np.inf):
                dist[w], prev[w] = nd, v
                heapq.heappush(heap, (nd, w))
    if b not in dist:
        raise ValueError(f"no mesh path between vertices {a} and {b}")
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


def _fractions(points: np.ndarray) -> np.ndarray:
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    return s / max(s[-1], 1e-12)


def _anchorable(model: FaceModel, scheme: str, lips: bool, eyes: bool) -> bool:
    if not (lips or eyes) or not scheme.startswith("mediapipe") or "ibug68" not in model.landmarks or scheme not in model.landmarks:
        return False
    ib = model.landmarks["ibug68"]
    return len(ib.triangle) >= 68 and not (ib.triangle[:68] < 0).any()


#: anchored maps kept in the cache folder (the newest used): a few models, placements and code versions
ANCHOR_CACHE_KEEP = 8


def _anchor_key(model: FaceModel, scheme: str, canonical: np.ndarray, lips: bool, eyes: bool) -> str:
    """Everything an anchored map is computed from: the model's arrays it reads, the canonical mesh, MediaPipe's
    connection tables (by the installed mediapipe's version), the placement asked for and this module's code."""
    import hashlib
    from importlib import metadata

    try:
        mp_version = metadata.version("mediapipe")
    except metadata.PackageNotFoundError:
        mp_version = "none"
    h = hashlib.sha256(f"{scheme}|{lips}|{eyes}|{mp_version}|".encode())
    h.update(Path(__file__).read_bytes())
    arrays = [model.mean, model.triangles, model.expression_basis, canonical]
    for name in ("ibug68", scheme):
        arrays += [model.landmarks[name].triangle, model.landmarks[name].bary]
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


def anchored_map(model: FaceModel, scheme: str, canonical: np.ndarray, lips: bool = True,
                 eyes: bool = True) -> tuple[LandmarkMap, np.ndarray] | None:
    """The model's ``scheme`` map with MediaPipe's inner-lip contour on the model's inner-lip line (``lips``) and
    its eye contours on the model's lid lines (``eyes``: iBUG-68 points 36-41 / 42-47), and the indices of the
    moved landmarks; None when the model has no iBUG-68 map to anchor on (or nothing is asked).

    Kept on disk (``$DEAGE_CACHE_DIR/anchors``) keyed by everything it is computed from (:func:`_anchor_key`):
    computing it (and importing MediaPipe for its connection tables) cost every fit stage ~1.1 s."""
    if not _anchorable(model, scheme, lips, eyes):
        return None
    from ..face.store import cache_dir, evict, mark_used

    lm = model.landmarks[scheme]
    folder = cache_dir() / "anchors"
    path = folder / f"{scheme}-{_anchor_key(model, scheme, canonical, lips, eyes)}.npz"
    try:
        with np.load(path, allow_pickle=False) as d:
            tri, bary, moved = d["triangle"], d["bary"], d["moved"]
        if tri.shape == lm.triangle.shape and bary.shape == lm.bary.shape:
            mark_used(path)
            return replace(lm, triangle=tri.astype(lm.triangle.dtype), bary=bary.astype(lm.bary.dtype)), moved
        log.warning("ignoring a cached anchored landmark map of the wrong shape: %s", path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring a damaged cached anchored landmark map %s: %s", path, exc)
    new, moved = _anchored_map(model, scheme, canonical, lips, eyes)
    try:
        from ..session import atomic_path

        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, triangle=new.triangle, bary=new.bary, moved=moved)
        evict(folder, scheme, keep=ANCHOR_CACHE_KEEP)
    except OSError as exc:  # a read-only home is fine: computed again next time
        log.info("could not cache the anchored landmark map in %s: %s", folder, exc)
    return new, moved


def _anchored_map(model: FaceModel, scheme: str, canonical: np.ndarray, lips: bool,
                  eyes: bool) -> tuple[LandmarkMap, np.ndarray]:
    ib = model.landmarks["ibug68"]
    tris = np.asarray(model.triangles)
    vert_of = {}
    for n in range(68):
        k = int(np.argmax(ib.bary[n]))
        vert_of[n] = int(tris[ib.triangle[n], k])
    # an open-mouth shape: the expression mode that opens the iBUG lips most (upper and lower lips apart)
    mean = model.mean.astype(np.float64)
    gap = [np.linalg.norm((mean + b)[vert_of[62]] - (mean + b)[vert_of[66]]) for b in model.expression_basis]
    shape = mean + model.expression_basis[int(np.argmax(gap))].astype(np.float64)
    edges = _edges(tris)
    length = np.linalg.norm(shape[edges[:, 0]] - shape[edges[:, 1]], axis=1)
    adj: list[list[tuple[int, float]]] = [[] for _ in range(model.n_vertices)]
    for (a, b), l in zip(edges, length):
        adj[a].append((b, float(l)))
        adj[b].append((a, float(l)))
    edge_tri: dict[tuple[int, int], int] = {}
    for t, f in enumerate(tris):
        for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])):
            edge_tri.setdefault((min(a, b), max(a, b)), t)
    pairs = []
    if lips:
        upper, lower = inner_lip_chains(canonical)
        pairs += [(upper, IBUG_UPPER), (lower, IBUG_LOWER)]
    if eyes:  # each MediaPipe eye with the iBUG eye on its side (the models share the canonical mesh's axes)
        for up, low in eye_chains(canonical):
            side = np.sign(canonical[up, 0].mean() - canonical[:468, 0].mean())
            ib_up, ib_low = min(IBUG_EYES, key=lambda e: abs(np.sign(mean[[vert_of[n] for n in e[0]], 0].mean()
                                                                          - mean[:, 0].mean()) - side))
            pairs += [(up, ib_up), (low, ib_low)]
    lm = model.landmarks[scheme]
    tri, bary = lm.triangle.copy(), lm.bary.astype(np.float64).copy()
    moved = []
    for mp_chain, ib_chain in pairs:
        path = [vert_of[ib_chain[0]]]
        for a, b in zip(ib_chain[:-1], ib_chain[1:]):
            path += _shortest_path(adj, vert_of[a], vert_of[b])[1:]
        if mean[path[0], 0] > mean[path[-1], 0]:  # run from the -x end like MediaPipe's chain
            path = path[::-1]
        fr_model = _fractions(mean[path])
        for n, f in zip(mp_chain, _fractions(canonical[mp_chain])):
            k = int(np.clip(np.searchsorted(fr_model, f, side="right") - 1, 0, len(path) - 2))
            a, b = path[k], path[k + 1]
            s = float(np.clip((f - fr_model[k]) / max(fr_model[k + 1] - fr_model[k], 1e-12), 0.0, 1.0))
            t = edge_tri[(min(a, b), max(a, b))]
            w = np.zeros(3)
            w[list(tris[t]).index(a)] += 1.0 - s
            w[list(tris[t]).index(b)] += s
            tri[n], bary[n] = t, w
            moved.append(n)
    moved = np.array(sorted(set(moved)))
    new = replace(lm, triangle=tri.astype(lm.triangle.dtype), bary=bary.astype(lm.bary.dtype))
    return new, moved


def contour_name(lips: bool, eyes: bool) -> str:
    """The name of a contour placement (:data:`reconstruct.face.detector_bias.CONTOURS`)."""
    return "+".join(n for n, on in (("lips", lips), ("lids", eyes)) if on) or "computed"


def anchor_inner_lips(model: FaceModel, scheme: str, bias=None, lips: bool = True, eyes: bool = True):
    """(model, bias) with MediaPipe's inner-lip contour on the model's inner-lip line and its eye contours on the
    lid lines (:func:`anchored_map`); the model unchanged when neither is asked for or the model or scheme has
    nothing to anchor on.

    The detector bias is learned against one placement of these contours (``bias.contours``). Where the fit's
    placement is the same the bias is kept whole; for the points placed differently only its mean-face part is
    kept (its constant offset re-expressed from the bias's placement to the fit's, its view term and weight) and its
    identity and expression slopes, learned against the other placement, are dropped.
    """
    from ..assets import mediapipe_canonical_path
    from ..face.correspondence import mediapipe_canonical_points, with_landmarks

    canonical = None

    def placed(on_lips: bool, on_eyes: bool):
        nonlocal canonical
        if not (on_lips or on_eyes):
            return None
        if canonical is None:
            canonical = mediapipe_canonical_points(mediapipe_canonical_path())
        return anchored_map(model, scheme, canonical, on_lips, on_eyes)

    out = placed(lips, eyes)
    if (lips or eyes) and out is None:
        log.info("fit: model %s has no iBUG-68 points to anchor on; MediaPipe's contours left as computed", model.name)
        return model, bias
    new = model.landmarks[scheme] if out is None else out[0]
    if out is not None:
        log.info("fit: %d inner-lip / eye-contour landmarks anchored on the model's lip and lid lines", len(out[1]))
    if bias is not None and bias.contours != contour_name(lips, eyes):
        learned = bias.contours.split("+")
        ref = placed("lips" in learned, "lids" in learned)
        old = model.landmarks[scheme] if ref is None else ref[0]
        moved = np.flatnonzero((old.triangle != new.triangle) | (np.abs(old.bary - new.bary) > 0).any(1))
        mean = model.mean.astype(np.float64)
        off = bias.offset.copy()
        off[moved] += old.points(mean, model.triangles)[moved] - new.points(mean, model.triangles)[moved]
        ident, expr = bias.identity.copy(), bias.expression.copy()
        ident[moved] = 0.0
        expr[moved] = 0.0
        xv = None if bias.expression_view is None else bias.expression_view.copy()
        if xv is not None:
            xv[moved] = 0.0
        log.info("fit: detector bias learned with %s contours, fit with %s: %d points keep only its mean-face part",
                 bias.contours, contour_name(lips, eyes), len(moved))
        bias = replace(bias, offset=off, identity=ident, expression=expr, expression_view=xv,
                       contours=contour_name(lips, eyes))
    return (model if out is None else with_landmarks(model, new)), bias
