"""A dense 2D warp of the plate that moves the fitted face onto an edited shape of it.

Given the fitted mesh (where the face *is* in the plate) and an edited mesh of the same topology in the same pose
(e.g. the young identity with the frame's expression), the edited mesh is rasterised through the hero camera;
every pixel it covers looks up where the same surface point lies on the fitted mesh in the plate: a backward map
``output(x) = plate(x + flow(x))``. Only the visible surface is rasterised (the first hit along each ray), so a
nose or cheek occludes what is behind it. Past the face the flow is extended by normalised convolution and faded
to exactly zero within ``falloff`` face sizes, so background, hair and neck move smoothly with a changed jaw or
cheek line and there is no edge anywhere; holes of the mesh (eyes, mouth interior) get the smooth flow of their
surroundings, so eyes, teeth and tongue move as a whole and are never redrawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import CameraModel
from .blur import gaussian_blur
from .roi import Roi, coarse_size, crop_camera, mask_box, scale_camera


@dataclass(frozen=True, slots=True, eq=False)
class FaceWarp:
    """A backward warp of a frame, nonzero only inside ``roi``.

    Attributes:
        roi: the region of the frame the warp covers.
        flow: (h, w, 2) float32 pixels: output pixel ``x`` (roi coordinates) shows the plate at ``x + flow(x)``;
            exactly 0 where the frame is unchanged.
        coverage: (h, w) bool, where the edited face's surface is visible.
        face_px: the face's size in pixels (square root of its covered area).
        fragments: the edited mesh rasterised through the camera cropped to ``roi`` at ``1 / scale`` resolution
            (what the warp was made from; a caller that needs the same rasterisation reuses it), or None.
        scale: the resolution the warp's geometry was computed at (1: the plate's; 2: half of it, the flow then
            resized to the roi), see :func:`face_warp`.
    """

    roi: Roi
    flow: np.ndarray
    coverage: np.ndarray
    face_px: float
    fragments: object = None
    scale: int = 1

    @property
    def moved(self) -> np.ndarray:
        """(h, w) bool: pixels whose flow is not zero."""
        # the same as ``np.any(self.flow != 0, axis=-1)``, ~9x faster (a reduction over a last axis of 2 is slow)
        return (self.flow[..., 0] != 0) | (self.flow[..., 1] != 0)


def face_warp(renderer, camera: CameraModel, triangles: np.ndarray, src_vertices: np.ndarray,
              dst_vertices: np.ndarray, roi: Roi, falloff: float = 0.25, blend: float = 0.08,
              scale: int = 1) -> FaceWarp:
    """The warp that moves the face from ``src_vertices`` (fitted, world metres (V, 3)) to ``dst_vertices``
    (edited, same topology) as seen by ``camera`` (OpenCV, distortion included), computed in ``roi``.

    ``falloff``: the flow outside the face fades to zero over this many face sizes; ``blend``: inside the mesh's
    edge, the surface flow blends into the smooth extension over this many face sizes. ``scale`` > 1: the geometry
    (rasterisation, extension, fold relaxation) is computed at ``1 / scale`` of the roi's resolution and the flow
    resized to it (bilinear): the flow is smooth at the scale of a face, and every step of it costs in proportion
    to its pixels (:func:`geometry_scale` picks it from the face's size).
    """
    import cv2

    from ..render.fragments import interpolate

    scale = max(1, int(scale))
    cam = crop_camera(camera, roi)
    if scale > 1:
        cam = scale_camera(cam, coarse_size(roi.w, roi.h, scale))
    frags = renderer.rasterize(np.asarray(dst_vertices, np.float64), triangles, cam)
    covered = frags.mask
    src_px = cam.project(np.asarray(src_vertices, np.float64)).astype(np.float32)  # (V, 2) roi pixels
    h, w = covered.shape
    flow = np.zeros((h, w, 2), np.float32)
    area = int(covered.sum())
    if area == 0:
        return _at_roi(FaceWarp(roi, flow, covered, 0.0, frags, scale))
    # every (h, w, 2) product below is taken channel by channel (the same float32 operations on each element: a
    # (h, w, 1) operand broadcast over a last axis of 2 ran numpy's inner loop on 2 elements at a time, ~3x slower)
    pos = interpolate(frags, triangles, np.nan_to_num(src_px))
    inside = np.empty((h, w, 2), np.float32)  # the surface flow: where the fitted mesh's point is, minus here
    np.multiply(pos[..., 0] - np.arange(w, dtype=np.float32)[None, :], covered, out=inside[..., 0])
    np.multiply(pos[..., 1] - np.arange(h, dtype=np.float32)[:, None], covered, out=inside[..., 1])
    face = float(np.sqrt(area))
    # extend past the face: normalised convolution of the inside flow, then fade to zero
    sigma = max(1.0, 0.08 * face)
    c = covered.astype(np.float32)
    den = gaussian_blur(c, sigma)
    num = gaussian_blur(inside, sigma)
    dist = cv2.distanceTransform((~covered).astype(np.uint8), cv2.DIST_L2, 5)
    reach = max(1.0, falloff * face)
    t = np.clip(1.0 - dist / reach, 0.0, 1.0)
    fade = t * t * (3 - 2 * t)  # smoothstep: 1 at the face edge, 0 (with zero slope) at ``reach``
    # blend the surface flow into its extension over ``blend`` face sizes inside the mesh's edge: the edge of a
    # face-area mesh is not an edge of the picture (the neck and temples go on), so no step may show there
    inner = cv2.distanceTransform(covered.astype(np.uint8), cv2.DIST_L2, 5)
    u = np.clip(inner / max(1.0, blend * face), 0.0, 1.0)
    soft = u * u * (3 - 2 * u)
    rest, den = 1 - soft, np.maximum(den, 1e-6)
    for k in range(2):  # soft * inside + (1 - soft) * ext, ext = num / den * fade
        ext = num[..., k] / den
        ext *= fade
        ext *= rest
        num[..., k] = soft * inside[..., k] + ext
    flow = relax_folds(num, sigma=max(1.0, 0.02 * face))
    flow[fade <= 0] = 0.0
    return _at_roi(FaceWarp(roi, flow, covered, face, frags, scale))


def geometry_scale(face_px: float, target_px: float = 64.0) -> int:
    """The coarsest power-of-2 ``scale`` for :func:`face_warp` that keeps a face of ``face_px`` pixels (its
    inter-ocular distance, say) at least ``target_px`` pixels wide: 1 for faces up to twice that."""
    s = 1
    while face_px / (2 * s) >= target_px:
        s *= 2
    return s


def _at_roi(warp: FaceWarp) -> FaceWarp:
    """A warp computed at ``1 / warp.scale`` resolution, its flow and coverage resized to the roi (flow in roi
    pixels); the fragments stay the coarse ones."""
    import cv2

    if warp.scale == 1:
        return warp
    r = warp.roi
    h, w = warp.coverage.shape
    flow = cv2.resize(warp.flow, (r.w, r.h), interpolation=cv2.INTER_LINEAR)
    flow[..., 0] *= np.float32(r.w / w)  # channel by channel: ``flow *= (sx, sy)`` broadcast over 2 was ~4x slower
    flow[..., 1] *= np.float32(r.h / h)
    cov = cv2.resize(warp.coverage.view(np.uint8), (r.w, r.h), interpolation=cv2.INTER_NEAREST).view(bool)
    return FaceWarp(r, np.ascontiguousarray(flow, np.float32), cov, warp.face_px * float(np.sqrt(r.w * r.h / (w * h))),
                    warp.fragments, warp.scale)


def jacobian_det(flow: np.ndarray) -> np.ndarray:
    """(h, w) determinant of the map ``x -> x + flow(x)``: below 0 the map folds over (pixels sampled twice, a
    crease in the picture), near 0 it squeezes."""
    fx, fy = flow[..., 0], flow[..., 1]
    return (1 + np.gradient(fx, axis=1)) * (1 + np.gradient(fy, axis=0)) - \
        np.gradient(fx, axis=0) * np.gradient(fy, axis=1)


def relax_folds(flow: np.ndarray, sigma: float, min_det: float = 0.5, rounds: int = 6) -> np.ndarray:
    """Smooth the flow where it folds or squeezes (``det < min_det``: at silhouettes that move, the nostrils, the
    lips), locally and repeatedly, so that the warp never doubles a stretch of the plate into a crease.

    Each round works on the box where it can change the flow: the folding pixels' bounding box grown by the
    dilation and the blur's reach (the zone is exactly 0 past it), its blurs computed on the window they read
    (:func:`.blur.blur_window`) -- the same numbers as blurring the whole flow."""
    import cv2

    from .blur import blur_reach, blur_window, gaussian_blur_box

    flow = flow.copy()
    h, w = flow.shape[:2]
    iters = max(1, int(sigma))
    reach = iters + blur_reach(sigma)  # how far from a folding pixel the zone can be non-zero
    bad = jacobian_det(flow) < min_det
    for i in range(rounds):
        folds = mask_box(bad)
        if folds is None:
            break
        r0, r1, c0, c1 = folds
        zone_box = (slice(max(r0 - reach, 0), min(r1 + reach, h)), slice(max(c0 - reach, 0), min(c1 + reach, w)))
        # the folds dilated on the window the zone's blur reads (it holds every folding pixel)
        window, inner = blur_window(bad.shape, zone_box, sigma)
        grown = cv2.dilate(bad[window].astype(np.float32), np.ones((3, 3), np.uint8), iterations=iters)
        zone = gaussian_blur(grown, sigma)[inner]
        smooth = gaussian_blur_box(flow, sigma, zone_box)
        f = flow[zone_box]
        f += np.clip(zone, 0, 1)[..., None] * (smooth - f)
        if i + 1 < rounds:  # the next round's folds: only the zone (and the pixel around it) changed
            _update_folds(bad, flow, zone_box, min_det)
    return flow


def _update_folds(bad: np.ndarray, flow: np.ndarray, box: tuple[slice, slice], min_det: float) -> None:
    """``bad[:] = jacobian_det(flow) < min_det`` after ``flow`` changed inside ``box`` only: the determinant's
    central differences reach one pixel, so it is recomputed on the box grown by 1 px, from the flow grown by 2 px
    (clipped to the array, where :func:`numpy.gradient` takes the same one-sided differences): the same values."""
    h, w = bad.shape
    (ys, xs) = box
    oy0, oy1 = max(ys.start - 1, 0), min(ys.stop + 1, h)
    ox0, ox1 = max(xs.start - 1, 0), min(xs.stop + 1, w)
    ry0, rx0 = max(oy0 - 1, 0), max(ox0 - 1, 0)
    det = jacobian_det(flow[ry0:min(oy1 + 1, h), rx0:min(ox1 + 1, w)])
    bad[oy0:oy1, ox0:ox1] = det[oy0 - ry0:oy1 - ry0, ox0 - rx0:ox1 - rx0] < min_det


def apply_warp(image: np.ndarray, warp: FaceWarp) -> np.ndarray:
    """The frame warped: a float32 copy of ``image`` ((H, W[, C])) whose ``warp.roi`` is resampled (Lanczos, 8x8:
    it keeps pore-scale detail that bilinear and bicubic soften) at ``x + flow``. Pixels with zero flow keep their
    exact value."""
    out = np.asarray(image, np.float32).copy()
    if warp.roi.empty or not warp.moved.any():
        return out
    out[warp.roi.slices] = warp_region(out, warp)
    return out


_REMAP_BAND = 16  # rows of a band of :func:`warp_region`'s resampling


def warp_region(image: np.ndarray, warp: FaceWarp, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """``apply_warp(image, warp)[warp.roi.slices]`` without copying the whole frame: the (h, w[, C]) float32 region
    of the warped frame. ``image`` is the whole frame (the warp samples it outside the region too), or a window of
    it whose pixel (0, 0) is the frame's ``origin = (x, y)`` and that holds the roi and every pixel the warp
    samples (the roi grown by the largest flow and the Lanczos kernel's 4 px, :func:`sampled_window`): the same
    values."""
    import cv2

    src = np.asarray(image, np.float32)
    r = warp.roi
    ox, oy = int(origin[0]), int(origin[1])
    out = np.array(src[r.y0 - oy:r.y0 - oy + r.h, r.x0 - ox:r.x0 - ox + r.w], np.float32)
    if r.empty:
        return out
    moved = warp.moved
    box = mask_box(moved)
    if box is None:
        return out
    # only the moved pixels are resampled (the same maps, the same values there): the moved pixels' bounding box,
    # in bands of rows each cut to its own moved columns (the moved region is round: ~20 % fewer pixels)
    y0, y1, x0, x1 = box
    gx = np.arange(x0, x1, dtype=np.float32)[None, :]
    gy = np.arange(y0, y1, dtype=np.float32)[:, None]
    map_x = gx + warp.flow[y0:y1, x0:x1, 0] + r.x0
    map_y = gy + warp.flow[y0:y1, x0:x1, 1] + r.y0
    if ox:  # exact: a float32 coordinate >= ox minus the integer ox is representable
        map_x -= ox
    if oy:
        map_y -= oy
    sub = moved[y0:y1, x0:x1]
    for b0 in range(0, y1 - y0, _REMAP_BAND):
        b1 = min(b0 + _REMAP_BAND, y1 - y0)
        cols = np.flatnonzero(sub[b0:b1].any(axis=0))
        if not cols.size:
            continue
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        res = cv2.remap(src, map_x[b0:b1, c0:c1], map_y[b0:b1, c0:c1], cv2.INTER_LANCZOS4,
                        borderMode=cv2.BORDER_REFLECT)
        dst, where = out[y0 + b0:y0 + b1, x0 + c0:x0 + c1], sub[b0:b1, c0:c1]
        if dst.ndim == 2:
            np.copyto(dst, res, where=where)
        else:  # channel by channel: a (h, w, 1) ``where`` broadcast over the 3 channels was ~5x slower
            for k in range(dst.shape[2]):
                np.copyto(dst[..., k], res[..., k], where=where)
    return out


def sampled_window(warp: FaceWarp, size: tuple[int, int], grow: int = 0, flow_max: float | None = None) -> Roi:
    """The window of a frame of ``size = (W, H)`` that :func:`warp_region` reads: the roi grown by ``grow`` and by
    the largest flow plus the Lanczos kernel's reach (4 px) and a pixel, clipped to the frame. ``flow_max``:
    ``np.abs(warp.flow).max()`` when the caller has it (a pass over the flow)."""
    r = warp.roi
    W, H = size
    if warp.flow.size and flow_max is None:
        flow_max = float(np.abs(warp.flow).max())
    reach = int(np.ceil(flow_max)) + 6 if warp.flow.size else 0
    m = max(reach, int(grow))
    x0, y0 = max(r.x0 - m, 0), max(r.y0 - m, 0)
    x1, y1 = min(r.x0 + r.w + m, W), min(r.y0 + r.h + m, H)
    return Roi(x0, y0, x1 - x0, y1 - y0)


def warp_points(points: np.ndarray, warp: FaceWarp, iterations: int = 12) -> np.ndarray:
    """Where plate points ((N, 2) frame pixels) land in the warped frame: solves ``x + flow(x) = p`` by fixed-point
    iteration (the flow is smooth and small against the face). Points outside the roi do not move."""
    import cv2

    p = np.asarray(points, np.float64).reshape(-1, 2)
    if warp.roi.empty:
        return p.copy()
    r = warp.roi
    local = p - (r.x0, r.y0)
    x = local.copy()
    # contiguous once: cv2.remap copied each strided channel on every one of its 2 x ``iterations`` calls
    fx, fy = np.ascontiguousarray(warp.flow[..., 0]), np.ascontiguousarray(warp.flow[..., 1])
    ok = np.isfinite(local).all(1)
    for _ in range(iterations):
        q = x[ok].astype(np.float32).reshape(-1, 1, 2)
        if not len(q):
            break
        dx = cv2.remap(fx, q[..., 0], q[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT).reshape(-1)
        dy = cv2.remap(fy, q[..., 0], q[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT).reshape(-1)
        x[ok] = local[ok] - np.stack([dx, dy], -1)
    return x + (r.x0, r.y0)
