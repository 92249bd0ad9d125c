"""Calibrating a whole rig: detections in, :class:`~.result.RigCalibration` out.

Steps (each a function of its own module): intrinsics per camera (:mod:`.intrinsics`, skipped for cameras whose
intrinsics are given), board pose per view by PnP and the camera-graph initialisation (:mod:`.extrinsics`), one
bundle adjustment over all camera poses, board poses and optionally intrinsics (:mod:`.bundle`), then the quality
record and warnings (:mod:`.quality`). :func:`calibrate_session` wraps it for a session's ``calib/`` folder.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass, replace
from typing import Literal, Mapping

import numpy as np

from ..camera import CameraModel
from ..errors import CalibrationError
from ..progress import NullProgress, Progress
from ..rig import BoardSpec
from . import quality as Q
from .bundle import CameraInit, bundle_adjust
from .detect import BoardDetection, board_spec_hint, detect_board, diagnose_no_board, inner_corner_mistake
from .extrinsics import initial_poses, solve_board_pose
from .intrinsics import calibrate_intrinsics, homography_focal
from .model_select import wald_test
from .result import RigCalibration

log = logging.getLogger(__name__)

#: views whose PnP fit is worse than this are left out of the initialisation (the bundle adjustment sees them)
_PNP_INIT_MAX_PX = 5.0


@dataclass(frozen=True, slots=True)
class CalibrationOptions:
    """Settings of a rig calibration.

    Attributes:
        model: lens model of every camera, ``"pinhole"`` (OpenCV k1 k2 p1 p2 k3) or ``"fisheye"`` (k1..k4).
        fix_aspect_ratio: keep fy/fx fixed at 1 (``CALIB_FIX_ASPECT_RATIO``).
        zero_tangent: no tangential distortion (p1 = p2 = 0); False: fit p1, p2; None (default): decide per camera
            by a Wald test in the joint adjustment (:mod:`.model_select`): p1, p2 are kept only where significant
            (they trade off against the principal point, whose error roughly doubles when they are fitted to a lens
            that has no tangential distortion). Cameras with given intrinsics keep theirs unless True.
        rational: 8-coefficient rational model (k4..k6).
        fix_k3: no k3 (advisable when views do not reach the image corners).
        refine_intrinsics: refine intrinsics in the bundle adjustment (else only poses move).
        reference: camera whose frame is the world frame (default: the rig's hero, else the first camera).
        outlier_px: residuals above max(outlier_px, 5 sigma) are rejected before the final pass, pixels.
        sparse: use the Jacobian's sparsity (False: dense finite differences; only for benchmarks).
        refine_board: estimate the board's true shape (every corner's offset from its nominal position, shared by
            all views: a print not exactly to scale, a sheet that is not flat) in the bundle adjustment; the board
            keeps its nominal mean size. False: the board is exactly as specified (a precision glass target).
            None (default): decide by an F-test whether the data show a shape beyond noise.
        board_prior_mm: standard deviation of the zero-mean prior on those offsets, millimetres.
        intrinsics_only: calibrate every camera on its own (its own views, its own bundle adjustment) and leave
            the rig's geometry unknown: for cameras that never saw the board together. The result has
            ``extrinsics`` False (R = I, t = 0 are placeholders); a later capture with shared views gives the
            extrinsics (``intrinsics=`` of :func:`calibrate_rig`).
    """

    model: Literal["pinhole", "fisheye"] = "pinhole"
    fix_aspect_ratio: bool = False
    zero_tangent: bool | None = None
    rational: bool = False
    fix_k3: bool = False
    refine_intrinsics: bool = True
    reference: str | None = None
    outlier_px: float = 2.0
    sparse: bool = True
    refine_board: bool | None = None
    board_prior_mm: float = 2.0
    intrinsics_only: bool = False


def _one_blas_thread(fn):
    """``fn`` with BLAS/LAPACK on one thread (:func:`~reconstruct.executors.frames.single_thread_blas`): the rig's
    solve gives the same numbers on every machine, whatever its core count (a product summed by 2 threads rounds
    differently in the last bits: ~1e-6 px here), and its small products cost less CPU without threads spinning
    (the bench take's solve 1.07-1.29 -> 0.80 CPU-s, 0.58-0.77 -> 0.54 s)."""

    @functools.wraps(fn)
    def one_thread(*args, **kwargs):
        from ..executors.frames import single_thread_blas

        with single_thread_blas():
            return fn(*args, **kwargs)

    return one_thread


@_one_blas_thread
def calibrate_rig(detections: Mapping[str, list[BoardDetection]], board: BoardSpec,
                  options: CalibrationOptions = CalibrationOptions(), *,
                  intrinsics: Mapping[str, CameraModel] | None = None,
                  image_sizes: Mapping[str, tuple[int, int]] | None = None,
                  progress: Progress | None = None) -> RigCalibration:
    """Calibrate every camera in ``detections`` (camera -> its board detections; same ``view`` = same instant).

    ``intrinsics``: cameras whose intrinsics are known (their K, dist, model are used as the start, and kept
    unless ``options.refine_intrinsics``). ``image_sizes``: expected (width, height) per camera (from the rig);
    a mismatch is an error naming the camera.
    """
    progress = progress or NullProgress()
    t0 = time.perf_counter()
    cams = [c for c in detections]
    if not cams:
        raise CalibrationError("no cameras to calibrate", hint="put board images into calib/<camera>/")
    intrinsics = dict(intrinsics or {})
    for c in cams:
        dets = detections[c]
        if not dets:
            raise CalibrationError(f"camera {c!r}: the board was not found in any calibration image",
                                   hint=f"capture {Q.MIN_VIEWS}+ views of the board with camera {c!r}")
        sizes = {d.image_size for d in dets}
        if len(sizes) > 1:
            raise CalibrationError(f"camera {c!r}: calibration images have different sizes {sorted(sizes)}",
                                   hint="all images of one camera must have one resolution; remove the odd ones")
        if image_sizes and c in image_sizes and tuple(image_sizes[c]) != next(iter(sizes)):
            raise CalibrationError(f"camera {c!r}: calibration images are {next(iter(sizes))} pixels but the rig "
                                   f"says {tuple(image_sizes[c])}",
                                   hint="capture calibration views at the resolution the camera records with, or fix "
                                        "the rig file's resolution")
    if options.intrinsics_only and len(cams) > 1:
        return _intrinsics_only(detections, board, options, intrinsics, progress)
    reference = options.reference or cams[0]
    if reference not in detections:
        raise CalibrationError(f"reference camera {reference!r} has no calibration views",
                               hint=f"cameras with views: {', '.join(cams)}")
    weak = _degenerate_views(detections, board)
    skip = {c: {v for v, _ in items} for c, items in weak.items()}
    dropped: dict[str, list[tuple[int, str]]] = {}
    unsolved: _Diverged | None = None  # a solve whose parameters are not a camera (NaN, focal <= 0)
    try:
        cal, view_rms = _solve(detections, board, options, intrinsics, reference, progress, t0, skip)
        bad = _diverged(cal)
        first = ", ".join(f"{c} RMS {cal.camera_quality[c]['rms_px']:.1f} px" if cal.camera_quality[c]["views"]
                          else f"{c} lost every view" for c in bad)
    except _Diverged as exc:
        unsolved, bad, view_rms, first = exc, [exc.camera], {exc.camera: {}}, f"{exc.camera} went {exc.what}"
    if not bad:
        return _note_dropped(cal, weak, dropped)
    # guard: a camera whose residuals are absurd is never returned as if good. Retry once without the views that
    # disagree most with the rest (wrong detections, a frame out of sync, a degenerate view), then give up loudly.
    retry = {c: _suspect_views(detections[c], view_rms[c], board) for c in bad}
    log.warning("calibration of %s diverged (%s); retrying without views %s", ", ".join(bad), first,
                {c: sorted(v) for c, v in retry.items()})
    kept = {c: [d for d in dets if d.view not in retry.get(c, ())] for c, dets in detections.items()}
    if any(retry.values()) and all(len(kept[c]) >= 4 for c in bad):
        try:
            cal2, _ = _solve(kept, board, options, intrinsics, reference, progress, t0, skip)
        except _Diverged as exc:
            raise exc.error() from None
        bad2 = _diverged(cal2)
        if not bad2:
            for c, views in retry.items():
                dropped.setdefault(c, []).extend((v, "its residuals disagreed with the other views") for v in views)
            n = sum(len(v) for v in retry.values())
            msg = f"the first calibration diverged ({first}); it was redone without {n} view(s) - check those views"
            log.warning("%s", msg)
            quality = {**cal2.quality, "warnings": [*cal2.quality["warnings"], msg],
                       "retried": {c: sorted(int(v) for v in views) for c, views in retry.items()}}
            return _note_dropped(replace(cal2, quality=quality), weak, dropped)
        cal, bad, unsolved = cal2, bad2, None
    if unsolved is not None:
        raise unsolved.error()
    lost = [c for c in bad if cal.camera_quality[c]["views"] == 0]
    worst = lost[0] if lost else max(bad, key=lambda c: cal.camera_quality[c]["rms_px"])
    q = cal.camera_quality[worst]
    what = ("every view was rejected by the bundle adjustment (its own calibration and the rig disagree)" if lost else
            f"reprojects the board with RMS {q['rms_px']:.1f} px over {q['views']} views ({q['outliers']} corners "
            f"rejected), where a good calibration has well under {Q.MAX_RMS_PX:g} px")
    raise CalibrationError(
        f"calibration of camera(s) {', '.join(repr(c) for c in bad)} diverged: camera {worst!r}: {what}; "
        "no calibration was written",
        hint=f"capture {Q.MIN_VIEWS}+ sharp views with camera {worst!r} showing most of the board (not a strip of "
             "corners along one edge), tilted 20-45 degrees, spread over the image incl. its corners, several of them "
             "together with a neighbouring camera; check the board spec (square/marker size) in the rig file")


def _intrinsics_only(detections: Mapping[str, list[BoardDetection]], board: BoardSpec, options: CalibrationOptions,
                     intrinsics: dict[str, CameraModel], progress: Progress) -> RigCalibration:
    """Every camera calibrated on its own (:func:`calibrate_rig` of its views alone, with the divergence guard and
    the model choice), joined into one intrinsics-only :class:`RigCalibration` (``extrinsics`` False)."""
    t0 = time.perf_counter()
    one = {c: calibrate_rig({c: detections[c]}, board, replace(options, reference=c, intrinsics_only=False),
                            intrinsics={c: intrinsics[c]} if c in intrinsics else None, progress=progress)
           for c in detections}
    cam_q = {c: {**r.camera_quality[c], "board_shape": r.quality["board_shape"]} for c, r in one.items()}
    warnings = [w for r in one.values() for w in r.quality["warnings"]]
    corners = sum(r.quality["corners"] for r in one.values())
    rms = float(np.sqrt(sum(r.quality["rms_px"] ** 2 * r.quality["corners"] for r in one.values()) / max(corners, 1)))
    quality = {"rms_px": rms, "views": sum(r.quality["views"] for r in one.values()), "corners": corners, "outliers": sum(r.quality["outliers"] for r in one.values()),
               "seconds": time.perf_counter() - t0, "options": asdict(options), "warnings": warnings,
               "board_shape": {}}  # one estimate per camera, in its quality
    board_d = {**asdict(board), "squares": list(board.squares)}
    return RigCalibration(cameras={c: r.cameras[c] for c, r in one.items()}, quality=quality, camera_quality=cam_q,
                          reference="", board=board_d, extrinsics=False)


def _intrinsics(dets: list[BoardDetection], board: BoardSpec, options: CalibrationOptions, camera: str):
    """One camera's intrinsics. Returns (result, p1 = p2 = 0?, record for the quality). With
    ``options.zero_tangent`` None and refined intrinsics, p1 and p2 are fitted here and tested in the joint
    adjustment (record ``{"tangential": "test"}`` until then)."""
    pinhole = options.model == "pinhole"
    zero = pinhole and bool(options.zero_tangent)
    r = calibrate_intrinsics(dets, board, model=options.model, fix_aspect_ratio=options.fix_aspect_ratio,
                             zero_tangent=zero, rational=options.rational, fix_k3=options.fix_k3, camera=camera)
    if not pinhole:
        return r, False, {"tangential": "none (fisheye)"}
    if options.zero_tangent is None and options.refine_intrinsics:
        return r, False, {"tangential": "test"}
    return r, zero, {"tangential": "zero" if zero else "fitted"}


def _zero_tangent(dist: np.ndarray) -> np.ndarray:
    d = np.array(dist, np.float64)
    d[2:4] = 0.0
    return d


class _Diverged(Exception):
    """A solve whose parameters are no camera at all (NaN, a focal length <= 0): handled by :func:`calibrate_rig`'s
    guard like any other divergence (one retry without suspect views), then :meth:`error`."""

    def __init__(self, camera: str, what: str):
        super().__init__(camera, what)
        self.camera, self.what = camera, what

    def error(self) -> CalibrationError:
        # never written: a NaN or a negative focal in calibration.json would fail every later stage
        return CalibrationError(
            f"calibration of camera {self.camera!r} diverged {self.what}; no calibration was written",
            hint=f"capture {Q.MIN_VIEWS}+ sharp views with camera {self.camera!r} showing most of the board, tilted "
                 "20-45 degrees and spread over the image; check the board spec in the rig file")


def _suspect_views(dets: list[BoardDetection], view_rms: dict[int, float], board: BoardSpec) -> set[int]:
    """Views of a diverged camera to leave out in the retry: those whose residuals are far above the others', and
    those whose own homography disagrees with the others' about the focal length (by more than 30 %, or gives
    none: an ill-conditioned view that can drag the intrinsic initialisation into a wrong minimum)."""
    med = float(np.median(list(view_rms.values()))) if view_rms else 0.0
    out = {v for v, r in view_rms.items() if r > max(Q.ABSURD_RMS_PX, 5 * med)}
    size = dets[0].image_size
    fs = {d.view: homography_focal([d.object_points(board)], [d.corners], size) for d in dets}
    good = [f for f in fs.values() if f is not None]
    if good:
        f_med = float(np.median(good))
        out |= {v for v, f in fs.items() if f is None or abs(f / f_med - 1) > 0.3}
    return out


def _diverged(cal: RigCalibration) -> list[str]:
    """Cameras whose result is absurd: RMS above ``ABSURD_RMS_PX`` or more than a third of the corners rejected."""
    out = []
    for c, q in cal.camera_quality.items():
        n = q["corners"] + q["outliers"]
        if not np.isfinite(q["rms_px"]) or q["rms_px"] > Q.ABSURD_RMS_PX or (n and q["outliers"] > n / 3):
            out.append(c)
    return out


def _degenerate_views(detections: Mapping[str, list[BoardDetection]], board: BoardSpec
                      ) -> dict[str, list[tuple[int, str]]]:
    """Views whose corners are nearly collinear: camera -> [(view, reason)]. Their homography is ill-conditioned,
    so they are left out of the intrinsic calibration and the PnP initialisation (one of them can start OpenCV's
    intrinsics at a fifth of the true focal length, or give a flipped board pose); the bundle adjustment still
    uses them where another camera's view of the same instant places the board."""
    weak: dict[str, list[tuple[int, str]]] = {}
    for c, dets in detections.items():
        for d in dets:
            pts = d.object_points(board)
            if d.n >= 6 and Q.surely_spread(pts, board.square_size):  # most views: no leave-one-out loop
                continue
            span = Q.view_span_squares(pts, board.square_size)
            if d.n < 6 or span < Q.MIN_VIEW_SPAN_SQUARES:
                weak.setdefault(c, []).append(
                    (d.view, f"{d.n} corners spanning {span:.2f} squares (nearly collinear)"))
        if weak.get(c):
            log.info("camera %s: %d nearly collinear view(s) left out of the initialisation: %s", c, len(weak[c]),
                     [v for v, _ in weak[c]])
        if len(weak.get(c, ())) == len(dets):
            raise CalibrationError(f"camera {c!r}: every view shows only a few nearly collinear corners of the board",
                                   hint=f"capture {Q.MIN_VIEWS}+ views with camera {c!r} showing most of the board")
    return weak


def _note_dropped(cal: RigCalibration, weak: dict[str, list[tuple[int, str]]],
                  dropped: dict[str, list[tuple[int, str]]]) -> RigCalibration:
    """Record views in the camera quality: ``init_skipped_views`` (view -> reason; left out of the initialisation,
    see :func:`_degenerate_views`) and ``dropped_views`` (left out entirely by the divergence guard)."""
    cq = {}
    for c, q in cal.camera_quality.items():
        q = dict(q)
        if weak.get(c):
            q["init_skipped_views"] = {str(v): why for v, why in weak[c]}
        if dropped.get(c):
            q["dropped_views"] = {str(v): why for v, why in dropped[c]}
        cq[c] = q
    return replace(cal, camera_quality=cq)


def _solve(detections: Mapping[str, list[BoardDetection]], board: BoardSpec, options: CalibrationOptions,
           intrinsics: dict[str, CameraModel], reference: str, progress: Progress, t0: float,
           skip: dict[str, set[int]]) -> tuple[RigCalibration, dict[str, dict[int, float]]]:
    """One calibration of the rig (views in ``skip[camera]`` only in the bundle adjustment); also camera -> view
    -> RMS over all its corners (outliers included), px."""
    cams = list(detections)
    # 1. intrinsics
    intr: dict[str, tuple[np.ndarray, np.ndarray, str, tuple[int, int]]] = {}
    zero_tangent: dict[str, bool] = {}
    lens_model: dict[str, dict] = {}
    with progress.task("intrinsics", total=len(cams)) as task:
        for c in cams:
            if c in intrinsics:
                m = intrinsics[c]
                intr[c] = (m.K, m.dist, m.model, m.image_size)
                zero_tangent[c] = options.model == "pinhole" and options.zero_tangent is True
                lens_model[c] = {"intrinsics": "given", "tangential": "zero" if zero_tangent[c] else "as given"}
            else:
                r, zero_tangent[c], lens_model[c] = _intrinsics(
                    [d for d in detections[c] if d.view not in skip.get(c, ())], board, options, c)
                intr[c] = (r.K, r.dist, r.model, r.image_size)
            task.advance()

    # 2. board pose per view, camera graph
    poses: dict[str, dict[int, np.ndarray]] = {c: {} for c in cams}
    counts: dict[str, dict[int, int]] = {c: {} for c in cams}
    for c in cams:
        K, dist, model, _ = intr[c]
        for d in detections[c]:
            if d.view in skip.get(c, ()):
                continue
            T, rms = solve_board_pose(d, board, K, dist, model)
            if rms < _PNP_INIT_MAX_PX:
                poses[c][d.view] = T
                counts[c][d.view] = d.n
    init = initial_poses(poses, reference, counts)

    # 3. bundle adjustment
    def fixed(c: str) -> tuple[int, ...]:
        if options.model != "pinhole":
            return ()
        f = ([2, 3] if zero_tangent[c] else []) + ([4] if options.fix_k3 else [])
        return tuple(i for i in f if i < len(intr[c][1]))

    inits = [CameraInit(name=c, K=intr[c][0], dist=intr[c][1], model=intr[c][2], image_size=intr[c][3],
                        T=init.cameras[c], fixed_dist=fixed(c)) for c in cams]
    all_dets = [d for c in cams for d in detections[c]]
    refine = options.refine_intrinsics

    def adjust(inits, boards):
        return bundle_adjust(inits, reference, boards, all_dets, board, refine_intrinsics=refine,
                             fix_aspect=options.fix_aspect_ratio, outlier_px=options.outlier_px,
                             sparse=options.sparse, refine_board=options.refine_board,
                             board_prior_m=options.board_prior_mm / 1000)

    ba = adjust(inits, init.boards)
    # tangential distortion left to the data (zero_tangent None): a Wald test on (p1, p2) in the joint solution
    # (board shape included, so a warped print is not mistaken for a decentred lens); where they are not
    # significant they are held at zero and the rig is adjusted again from this solution
    drop = []
    for c, W in ba.tangential_wald.items():
        if lens_model[c].get("tangential") == "test":
            test = wald_test(W, 2)
            keep = test.pop("significant")
            lens_model[c] = {"tangential": "fitted" if keep else "zero", "test": test}
            if not keep:
                drop.append(c)
                zero_tangent[c] = True
    if drop:
        log.info("tangential distortion not significant for %s: held at zero", ", ".join(drop))
        inits = [replace(ci, K=ba.cameras[ci.name][0], dist=_zero_tangent(ba.cameras[ci.name][1]) if ci.name in drop
                         else ba.cameras[ci.name][1], T=ba.cameras[ci.name][2], fixed_dist=fixed(ci.name))
                 for ci in inits]
        ba = adjust(inits, ba.boards)

    # 4. quality
    models, cam_q = {}, {}
    view_rms: dict[str, dict[int, float]] = {}
    for c in cams:
        K, dist, T = ba.cameras[c]
        model, size = intr[c][2], intr[c][3]
        if not all(np.all(np.isfinite(a)) for a in (K, dist, T)):
            raise _Diverged(c, "to non-finite parameters (NaN or infinity)")
        if not (K[0, 0] > 0 and K[1, 1] > 0):
            raise _Diverged(c, f"to focal lengths fx = {K[0, 0]:.3g}, fy = {K[1, 1]:.3g} px (not positive)")
        models[c] = CameraModel(name=c, K=K, dist=dist, R=T[:3, :3], t=T[:3, 3], image_size=size, model=model)
        sel = ba.obs_camera == c
        inl = ba.inliers[sel]
        res = ba.residuals[sel]
        views = ba.obs_view[sel]
        err2 = np.sum(res ** 2, axis=1)
        view_rms[c] = {int(v): float(np.sqrt(np.mean(err2[views == v]))) for v in np.unique(views)}
        rms = float(np.sqrt(np.mean(err2[inl]))) if inl.any() else float("nan")
        per_view = {int(v): float(np.sqrt(np.mean(err2[(views == v) & inl]))) for v in np.unique(views)
                    if np.any((views == v) & inl)}
        med = float(np.median(list(per_view.values()))) if per_view else 0.0
        bad = [(v, r) for v, r in per_view.items() if r > max(3 * med, 0.5)]
        det_by_view = {d.view: d for d in detections[c]}
        mm = []
        for v in sorted(per_view):
            d = det_by_view[v]
            mm.append(Q.board_error_mm(K, dist, model, T, ba.boards[v], d.corners, d.ids, board, ba.board_offsets))
        mm_all = np.concatenate(mm) if mm else np.zeros(0)
        pts = np.concatenate([d.corners for d in detections[c]])
        cov, _ = Q.coverage(pts, size)
        shared = None
        if len(cams) > 1:
            shared = max(n for (a, b), n in init.shared_views.items() if c in (a, b))
        std = ba.param_std.get(c, {})
        cam_q[c] = {
            "rms_px": rms, "views": len(per_view), "corners": int(inl.sum()), "outliers": int((~inl).sum()),
            "per_view_rms_px": {str(v): r for v, r in per_view.items()},
            "board_error_mm": float(np.sqrt(np.mean(mm_all ** 2))) if mm_all.size else float("nan"),
            "coverage": cov, "std": std, "shared_views_max": shared, "lens_model": lens_model[c],
            "warnings": Q.camera_warnings(c, len(per_view), cov, Q.empty_regions(pts, size), rms, std, K, shared, bad),
        }
    warnings = [w for q in cam_q.values() for w in q["warnings"]]
    shape = {**Q.board_shape(ba.board_offsets, np.unique(ba.obs_id[ba.inliers])),
             **({"test": ba.board_test} if ba.board_test else {})}
    if (w := Q.board_shape_warning(shape)) is not None:
        warnings.append(w)
    if ba.board_test and ba.board_test.get("held_rigid"):
        warnings.append(f"the board's shape was held rigid: {ba.board_test['held_rigid']}; capture more views "
                        f"({Q.MIN_VIEWS}+ per camera, tilted, at several distances), or pass --board-shape rigid")
    for w in warnings:
        log.warning("%s", w)
    quality = {"rms_px": ba.rms, "views": len(ba.boards), "corners": int(ba.inliers.sum()),
               "outliers": int((~ba.inliers).sum()), "seconds": time.perf_counter() - t0,
               "bundle_seconds": ba.seconds, "shared_views": {f"{a}-{b}": n for (a, b), n in init.shared_views.items()},
               "options": asdict(options), "board_shape": shape, "warnings": warnings}
    board_d = asdict(board)
    board_d["squares"] = list(board.squares)
    return (RigCalibration(cameras=models, quality=quality, camera_quality=cam_q, reference=reference, board=board_d),
            view_rms)


@dataclass(frozen=True, slots=True)
class BoardJob:
    """One calibration image to search for the board (picklable: a work item of ``executor.map``)."""

    root: str
    camera: str
    record: object  # the image's FrameRecord in calib/<camera>/frames.csv
    board: BoardSpec


def read_calib_image(session, camera: str, record) -> np.ndarray:
    """One calibration image as RGB (H, W, 3) or grey (H, W), by the session's reader (plain PNGs -- what OpenCV
    and our writers store -- by :func:`reconstruct.png.decode_png`, about half OpenCV's time; the rest by OpenCV)."""
    return session.read_image(camera, record, kind="calib")


def detect_board_job(job: BoardJob, res) -> BoardDetection | None:
    """Read one calibration image and find the board in it (module-level: it runs in ``--jobs`` workers)."""
    img = read_calib_image(res.session(job.root), job.camera, job.record)
    return detect_board(img, job.board, camera=job.camera, view=job.record.index)


def calibration_records(session, cameras: list[str], step: int = 1) -> dict:
    """Camera -> the ``calib/<camera>/frames.csv`` records the calibration reads (stored ``ok`` images, every
    ``step``-th). Raises :class:`CalibrationError` naming a camera without frames.csv or without images."""
    missing = [c for c in cameras if not (session.camera_dir(c, kind="calib") / "frames.csv").exists()]
    if missing:
        files = ", ".join(f"calib/{c}/frames.csv" for c in missing)
        raise CalibrationError(
            f"{files} {'is' if len(missing) == 1 else 'are'} missing in {session.root}",
            hint=f"import {Q.MIN_VIEWS}+ board photos per camera with `capture import {session.root} "
                 + " ".join(f"{c}=PHOTOS" for c in missing) + "` (PHOTOS: a folder, or a quoted glob such as "
                 "'photos/left*.jpg'; same number in the file name = same instant)")
    records = {c: [r for r in session.frames(c, kind="calib") if r.status == "ok" and r.file][::step] for c in cameras}
    empty = [c for c, r in records.items() if not r]
    if empty:
        raise CalibrationError(
            f"camera(s) {', '.join(repr(c) for c in empty)} have no calibration images: their "
            f"calib/<camera>/frames.csv in {session.root} lists none",
            hint=f"add {Q.MIN_VIEWS}+ board photos per camera with `capture import {session.root} --append "
                 + " ".join(f"{c}=PHOTOS" for c in empty) + "`")
    return records


def detect_session(session, board: BoardSpec | None = None, cameras: list[str] | None = None,
                   progress: Progress | None = None, step: int = 1, executor=None) -> dict[str, list[BoardDetection]]:
    """Detect the board in every stored ``calib/<camera>/`` image (every ``step``-th row) of a session.

    The view index of a detection is the frame's ``index`` column in frames.csv: rows with the same index in
    different cameras are simultaneous. Raises :class:`CalibrationError` naming a camera that has no calibration
    images or in which the board is never found (with a diagnosis: polarity, dictionary, square count).

    ``executor``: the run's executor (``map(fn, items, progress, description, resources=True)``); the images are
    read and searched in its workers (each image on its own: the same detections as in process). None: here.
    """
    progress = progress or NullProgress()
    board = board or session.rig.board
    cameras = list(cameras or session.rig.camera_names)
    records = calibration_records(session, cameras, step)
    jobs = [BoardJob(str(session.root), c, rec, board) for c in cameras for rec in records[c]]
    if executor is None:  # in this process, on the session already open
        from ..executors.local import LocalExecutor

        executor = LocalExecutor(1)
        executor.resources.keep(("session", str(session.root)), session)
    found_all = executor.map(detect_board_job, jobs, progress, "detect board", resources=True)
    by_camera: dict[str, list[BoardDetection]] = {c: [] for c in cameras}
    for job, d in zip(jobs, found_all):
        if d is not None:
            by_camera[job.camera].append(d)
    out: dict[str, list[BoardDetection]] = {}
    for c in cameras:
        dets = by_camera[c]
        rig_file = str(session.rig.source) if session.rig.source else None
        if not dets:
            sample = [session.read_image(c, r, kind="calib") for r in records[c][:5]]
            raise diagnose_no_board(sample, board, c, rig_file)
        if board.kind == "chessboard" and not out:
            # a chessboard detector finds a pattern smaller than the print inside it: squares given as inner
            # corners would "succeed" here and fail later with a meaningless error. Two images of the first
            # camera settle it (the board is the rig's, shared by every camera).
            found = [session.read_image(c, r, kind="calib") for r in records[c]
                     if any(d.view == r.index for d in dets[:2])]
            if (msg := inner_corner_mistake(found[:2], board)) is not None:
                raise CalibrationError(f"camera {c!r}: {msg}", hint=board_spec_hint(rig_file))
        log.info("camera %s: board found in %d of %d calibration images", c, len(dets), len(records[c]))
        out[c] = dets
    return out


def calibrate_session(session, options: CalibrationOptions | None = None, progress: Progress | None = None,
                      step: int = 1, intrinsics: Mapping[str, CameraModel] | None = None, executor=None
                      ) -> RigCalibration:
    """Detect, calibrate and return the rig calibration of a session (does not write it; with
    ``options.intrinsics_only`` every camera on its own).

    ``intrinsics``: cameras whose intrinsics were calibrated elsewhere (see :func:`calibrate_rig`). ``executor``:
    where the board is searched for (see :func:`detect_session`)."""
    rig = session.rig
    options = options or CalibrationOptions(reference=rig.hero.name)
    if options.reference is None:
        from dataclasses import replace

        options = replace(options, reference=rig.hero.name)
    dets = detect_session(session, rig.board, progress=progress, step=step, executor=executor)
    sizes = {c.name: c.resolution for c in rig.cameras}
    return calibrate_rig(dets, rig.board, options, image_sizes=sizes, progress=progress, intrinsics=intrinsics)
