"""Built-in plugin ``camera_backends``: synthetic, OpenCV VideoCapture, video file and image sequence cameras.

Each backend implements :class:`reconstruct.components.CameraBackend`: ``Backend(spec, **spec.settings)``, then
``open()``, ``trigger(tick, t_tick_ns)`` per software tick, ``grab() -> (image, t_capture_ns, meta) | None``
(None: end of stream), ``close()``. Settings come from the rig file's ``[camera.settings]`` table; an unknown
setting is an error naming the camera. ``docs/capture.md`` lists every setting.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from capture.protocol import frames_to_timecode, timecode_to_frames
from reconstruct import hookimpl
from reconstruct.errors import BackendError
from reconstruct.rig import CameraSpec

log = logging.getLogger(__name__)

CODE_BITS = 24  # tick code stamped into the synthetic pattern's top rows


def _cell(width: int) -> int:
    return max(1, min(8, width // CODE_BITS))


def stamp_code(img: np.ndarray, value: int) -> None:
    """Write ``value`` (0 <= value < 2**24) as black/white cells along the image's top rows (in place)."""
    c = _cell(img.shape[1])
    for b in range(CODE_BITS):
        img[0:c, b * c:(b + 1) * c] = 255 if (value >> b) & 1 else 0


def read_code(img: np.ndarray) -> int:
    """Inverse of :func:`stamp_code` (for tests and checks of stored frames)."""
    gray = img if img.ndim == 2 else img[..., 0]
    c = _cell(gray.shape[1])
    v = 0
    for b in range(CODE_BITS):
        if gray[c // 2, b * c + c // 2] > 127:
            v |= 1 << b
    return v


class SyntheticBackend:
    """A camera without hardware: a moving test pattern stamped with the tick number.

    Settings:
        pattern: ``"bars"`` (default) or ``"face"`` (falls back to bars until face renders exist here).
        flash_tick: tick at which the frame is a white flash (a slate/clap stand-in for flash sync), -1 none.
        clock_offset_ns: added to every capture timestamp (simulates an unsynchronised camera clock).
        latency_ns: capture delay after the tick, ns.
        genlock: in free/hardware mode, frames land on multiples of the frame period of the wall clock and carry
            that multiple as their hardware tick (what a genlocked camera's frame counter gives).

    RGB cameras give ``uint8 (H, W, 3)``, IR cameras ``uint8 (H, W)`` whose brightness scales with exposure.
    """

    name = "synthetic"

    def __init__(self, spec: CameraSpec, pattern: str = "bars", flash_tick: int = -1, clock_offset_ns: int = 0,
                 latency_ns: int = 200_000, genlock: bool = False) -> None:
        if pattern not in ("bars", "face"):
            raise BackendError(f"camera {spec.name!r}: synthetic pattern {pattern!r} unknown",
                               hint="use pattern = \"bars\" or \"face\"")
        self.spec = spec
        self.flash_tick, self.offset, self.latency, self.genlock = flash_tick, clock_offset_ns, latency_ns, genlock
        self._tick = -1
        self._n = 0
        self._k: int | None = None
        self._base: np.ndarray | None = None
        self._period = 1e9 / spec.fps

    def open(self) -> None:
        w, h = self.spec.resolution
        yy, xx = np.mgrid[0:h, 0:w]
        gain = min(1.0, self.spec.exposure_us / 8000.0) if self.spec.sensor == "ir" else 1.0
        base = ((((xx // 32) + (yy // 32)) % 2) * 110 + 50) * gain
        if self.spec.channels == 3:
            base = np.stack([base, (xx * 255 // max(w - 1, 1)) * 0.6 + 40, (yy * 255 // max(h - 1, 1)) * 0.6 + 40], -1)
        self._base = np.clip(base, 0, 255).astype(np.uint8)

    def trigger(self, tick: int, t_tick_ns: int) -> None:
        self._tick = tick

    def _image(self, tick: int) -> np.ndarray:
        assert self._base is not None, "open() first"
        if tick == self.flash_tick:
            return np.full_like(self._base, 255)
        img = self._base.copy()
        x = (tick * 9) % img.shape[1]
        img[:, x:x + 6] = 230
        stamp_code(img, tick % (1 << CODE_BITS))
        return img

    def grab(self) -> tuple[np.ndarray, int, dict[str, Any]] | None:
        meta: dict[str, Any] = {"exposure_us": self.spec.exposure_us}
        if self._tick >= 0:  # software-triggered: the frame of the last tick
            tick = self._tick
            self._tick = -1
            if self.latency:
                time.sleep(self.latency / 1e9)
            return self._image(tick), time.time_ns() + self.offset, meta
        # free running / genlocked: frame k exposes at k * period on the wall clock; like a real camera it buffers,
        # so a late reader still gets every frame, stamped with its exposure time
        now = time.time_ns()
        k = int(now // self._period) + 1 if self._k is None else self._k + 1
        self._k = k
        t_k = int(round(k * self._period))
        time.sleep(max(0.0, (t_k - now) / 1e9))
        tick = k if self.genlock else self._n
        if self.genlock:
            meta["tick"] = k
        self._n += 1
        return self._image(tick), t_k + self.latency + self.offset, meta

    def close(self) -> None:
        self._base = None


def _to_spec_image(spec: CameraSpec, bgr: np.ndarray, where: str) -> np.ndarray:
    import cv2

    h, w = bgr.shape[:2]
    if (w, h) != tuple(spec.resolution):
        raise BackendError(f"camera {spec.name!r}: {where} delivers {w}x{h}, the rig says "
                           f"{spec.resolution[0]}x{spec.resolution[1]}",
                           hint="fix resolution in the rig file to match the source")
    if spec.channels == 1:
        return bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB) if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class OpenCVBackend:
    """A live camera through ``cv2.VideoCapture``: ``device = 0`` (index) or ``url = "rtsp://..."``.

    Free-running: a software tick takes the next frame the device delivers. The capture time is taken when the
    frame is returned (OpenCV gives no reliable device timestamp for every driver).
    """

    name = "opencv"

    def __init__(self, spec: CameraSpec, device: int = -1, url: str = "", api: str = "ANY") -> None:
        if device < 0 and not url:
            raise BackendError(f"camera {spec.name!r}: the opencv backend needs `device = N` or `url = \"...\"`",
                               hint="add [camera.settings] device = 0 to the rig file")
        self.spec, self.device, self.url, self.api = spec, device, url, api
        self._cap = None

    def open(self) -> None:
        import cv2

        api = getattr(cv2, f"CAP_{self.api}", None)
        if api is None:
            raise BackendError(f"camera {self.spec.name!r}: unknown OpenCV capture API {self.api!r}",
                               hint="use api = \"ANY\", \"V4L2\", \"FFMPEG\", ...")
        src = self.url or self.device
        cap = cv2.VideoCapture(src, api)
        if not cap.isOpened():
            raise BackendError(f"camera {self.spec.name!r}: cannot open {src!r}",
                               hint="check the device index/URL, cabling and that no other program holds the camera")
        w, h = self.spec.resolution
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        cap.set(cv2.CAP_PROP_FPS, self.spec.fps)
        self._cap = cap

    def trigger(self, tick: int, t_tick_ns: int) -> None:
        pass

    def grab(self):
        ok, bgr = self._cap.read()
        t = time.time_ns()
        if not ok:
            raise BackendError(f"camera {self.spec.name!r}: the device stopped delivering frames",
                               hint="check the cable/stream; the recorder marks the gap and keeps the other cameras")
        return _to_spec_image(self.spec, bgr, "the device"), t, {"exposure_us": self.spec.exposure_us}

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


class VideoFileBackend:
    """Frames of a video file, e.g. one device of an independently recorded shoot.

    Settings: ``path`` (file), ``start_time_ns`` (device clock at the first frame; frame times follow the file's
    own timestamps), ``timecode_start`` (``HH:MM:SS:FF`` of the first frame, empty if the device wrote none).
    Ends (``grab() -> None``) at the end of the file.
    """

    name = "video"
    live = False  # a file: the node reads it at the pace the recorder accepts and never drops

    def __init__(self, spec: CameraSpec, path: str = "", start_time_ns: int = 0, timecode_start: str = "") -> None:
        if not path:
            raise BackendError(f"camera {spec.name!r}: the video backend needs `path = \"file.mp4\"`")
        self.spec, self.path, self.t0, self.tc0 = spec, path, start_time_ns, timecode_start
        self._cap = None
        self._n = 0

    def open(self) -> None:
        import cv2

        if not os.path.exists(self.path):
            raise BackendError(f"camera {self.spec.name!r}: video file {self.path} does not exist")
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            raise BackendError(f"camera {self.spec.name!r}: OpenCV cannot decode {self.path}",
                               hint="convert it, e.g. `ffmpeg -i in.mov -c:v mjpeg out.avi`")
        self._cap = cap

    def trigger(self, tick: int, t_tick_ns: int) -> None:
        pass

    def grab(self):
        import cv2

        ok, bgr = self._cap.read()
        if not ok:
            return None
        t_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        meta: dict[str, Any] = {"exposure_us": self.spec.exposure_us}
        if self.tc0:
            meta["timecode"] = frames_to_timecode(timecode_to_frames(self.tc0, self.spec.fps) + self._n, self.spec.fps)
        t = self.t0 + int(round(t_ms * 1e6)) if t_ms > 0 or self._n == 0 else self.t0 + int(self._n * 1e9 / self.spec.fps)
        self._n += 1
        return _to_spec_image(self.spec, bgr, self.path), t, meta

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


class ImageSequenceBackend:
    """Frames from numbered image files (``path = "dir/*.png"``, sorted by name).

    Settings: ``path`` (glob pattern or folder), ``start_time_ns`` (clock at the first frame), ``fps`` (frame
    spacing, default the camera's), ``timecode_start`` (``HH:MM:SS:FF`` of the first frame or empty).
    """

    name = "images"
    live = False

    def __init__(self, spec: CameraSpec, path: str = "", start_time_ns: int = 0, fps: float = 0.0,
                 timecode_start: str = "") -> None:
        if not path:
            raise BackendError(f"camera {spec.name!r}: the images backend needs `path = \"dir/*.png\"`")
        self.spec, self.t0, self.tc0 = spec, start_time_ns, timecode_start
        self.fps = fps or spec.fps
        pattern = str(Path(path) / "*") if os.path.isdir(path) else path
        self.files = sorted(f for f in glob.glob(pattern) if not f.endswith((".csv", ".txt", ".json")))
        self.path = path
        self._n = 0

    def open(self) -> None:
        if not self.files:
            raise BackendError(f"camera {self.spec.name!r}: no image files match {self.path!r}",
                               hint="check the path/glob in the rig file")

    def trigger(self, tick: int, t_tick_ns: int) -> None:
        pass

    def grab(self):
        import cv2

        if self._n >= len(self.files):
            return None
        f = self.files[self._n]
        img = np.load(f) if f.endswith(".npy") else cv2.imread(f, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise BackendError(f"camera {self.spec.name!r}: cannot read image {f}")
        if not f.endswith(".npy"):
            img = _to_spec_image(self.spec, img, f)
        meta: dict[str, Any] = {"exposure_us": self.spec.exposure_us}
        if self.tc0:
            meta["timecode"] = frames_to_timecode(timecode_to_frames(self.tc0, self.spec.fps) + self._n, self.spec.fps)
        t = self.t0 + int(round(self._n * 1e9 / self.fps))
        self._n += 1
        return img, t, meta

    def close(self) -> None:
        pass


@hookimpl
def register_camera_backends():
    return [SyntheticBackend, OpenCVBackend, VideoFileBackend, ImageSequenceBackend]
