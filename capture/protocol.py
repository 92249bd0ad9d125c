"""The capture wire protocol: what camera nodes, the trigger clock and the recorder send each other over ZeroMQ.

Every message is a ZeroMQ multipart message of two parts::

    part 0  header   HEADER_STRUCT (little endian, 64 bytes) followed by the camera name (UTF-8, ``name_len`` bytes)
    part 1  payload  FRAME: the raw pixel buffer, row-major, no padding (``height * width * channels`` bytes)
                     other kinds: UTF-8 JSON (may be empty)

Header fields (in order):

=============  ======  ==============================================================================
field          type    meaning
=============  ======  ==============================================================================
magic          4s      ``b"DGCF"``
version        u8      protocol version, currently 1; a receiver refuses other versions
kind           u8      :class:`Kind`: FRAME, DROP (a frame the node produced but could not send), HELLO,
                       BYE, ERROR (node side), TICK, ARM, START, END (clock side)
pixfmt         u8      :class:`PixFmt`: NONE, GRAY8, RGB8, GRAY16
name_len       u8      length of the camera name that follows the fixed header
camera         u16     camera number (position in the rig file, hero included)
node_queue     u16     frames waiting in the node's send queue when this message left (back-pressure gauge)
index          i64     frame index, 0-based, +1 for every frame the node *produced* (sent or dropped): a gap
                       in the indices a recorder receives is a lost frame, never a silent one
tick           i64     trigger tick the frame answers (-1: free running / none)
t_capture_ns   i64     capture time, ns, node clock (``time.time_ns()``) or device clock
t_tick_ns      i64     clock time of the tick (clock process), ns; 0 when free running
width          u32     image width, pixels
height         u32     image height, pixels
exposure_us    f32     exposure time, microseconds
timecode       u32     SMPTE timecode as a frame count since 00:00:00:00 at the rig fps; 0xFFFFFFFF = none
reserved       4x      zero
=============  ======  ==============================================================================

Frames go zero-copy: the sender passes the numpy buffer to ``send_multipart(..., copy=False)`` and the receiver wraps
the received ``zmq.Frame`` with ``np.frombuffer`` (no copy on either side of the socket).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np

from reconstruct.errors import CaptureError

MAGIC = b"DGCF"
VERSION = 1
HEADER_STRUCT = struct.Struct("<4sBBBBHHqqqqIIfI4x")
NO_TIMECODE = 0xFFFFFFFF


class Kind(enum.IntEnum):
    FRAME = 1
    DROP = 2
    HELLO = 3
    BYE = 4
    ERROR = 5
    TICK = 10
    ARM = 11
    START = 12
    END = 13


class PixFmt(enum.IntEnum):
    NONE = 0
    GRAY8 = 1
    RGB8 = 2
    GRAY16 = 3


_PIX = {PixFmt.GRAY8: (np.uint8, 1), PixFmt.RGB8: (np.uint8, 3), PixFmt.GRAY16: (np.uint16, 1)}


@dataclass(frozen=True, slots=True)
class Header:
    """A decoded message header (see the module docstring for units)."""

    kind: Kind
    camera: int = 0
    name: str = ""
    index: int = -1
    tick: int = -1
    t_capture_ns: int = 0
    t_tick_ns: int = 0
    pixfmt: PixFmt = PixFmt.NONE
    width: int = 0
    height: int = 0
    exposure_us: float = 0.0
    timecode: int = NO_TIMECODE
    node_queue: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        """numpy shape of the payload image: (H, W) or (H, W, 3)."""
        _, ch = _PIX[self.pixfmt]
        return (self.height, self.width) if ch == 1 else (self.height, self.width, ch)

    @property
    def nbytes(self) -> int:
        dt, ch = _PIX[self.pixfmt]
        return self.height * self.width * ch * np.dtype(dt).itemsize


def pixfmt_of(image: np.ndarray) -> PixFmt:
    """The PixFmt of an RGB ``uint8 (H, W, 3)``, gray ``uint8 (H, W)`` or gray ``uint16 (H, W)`` image."""
    if image.dtype == np.uint8 and image.ndim == 2:
        return PixFmt.GRAY8
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return PixFmt.RGB8
    if image.dtype == np.uint16 and image.ndim == 2:
        return PixFmt.GRAY16
    raise CaptureError(f"cannot send an image of shape {image.shape} and dtype {image.dtype}",
                       hint="camera backends must return RGB uint8 (H, W, 3) or gray uint8/uint16 (H, W)")


def pack_header(h: Header) -> bytes:
    name = h.name.encode("utf-8")
    if len(name) > 255:
        raise CaptureError(f"camera name {h.name!r} is longer than 255 bytes")
    return HEADER_STRUCT.pack(MAGIC, VERSION, int(h.kind), int(h.pixfmt), len(name), h.camera,
                              min(h.node_queue, 0xFFFF), h.index, h.tick, h.t_capture_ns, h.t_tick_ns, h.width,
                              h.height, h.exposure_us, h.timecode) + name


def unpack_header(buf: bytes | memoryview) -> Header:
    """Decode a header; raises CaptureError on a foreign or newer message."""
    buf = bytes(buf)
    if len(buf) < HEADER_STRUCT.size:
        raise CaptureError(f"short capture message header ({len(buf)} bytes)",
                           hint="something that is not a camera node sends to the recorder port; check the endpoints")
    (magic, version, kind, pixfmt, name_len, camera, queue, index, tick, t_cap, t_tick, w, h, exp,
     tc) = HEADER_STRUCT.unpack_from(buf)
    if magic != MAGIC:
        raise CaptureError("message without the capture magic bytes",
                           hint="something that is not a camera node sends to the recorder port; check the endpoints")
    if version != VERSION:
        raise CaptureError(f"capture protocol version {version}, this recorder speaks {VERSION}",
                           hint="run the same release of the software on every rig machine")
    name = buf[HEADER_STRUCT.size: HEADER_STRUCT.size + name_len].decode("utf-8")
    return Header(Kind(kind), camera, name, index, tick, t_cap, t_tick, PixFmt(pixfmt), w, h, exp, tc, queue)


def frame_message(h: Header, image: np.ndarray) -> list:
    """The two parts of a FRAME message; the image buffer is referenced, not copied (send with ``copy=False``)."""
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    return [pack_header(h), memoryview(image).cast("B")]


def decode_image(h: Header, payload) -> np.ndarray:
    """Wrap a received payload (``zmq.Frame``, bytes or memoryview) as an image without copying it."""
    buf = payload.buffer if hasattr(payload, "buffer") else payload
    if len(buf) != h.nbytes:
        raise CaptureError(f"camera {h.name!r} frame {h.index}: payload has {len(buf)} bytes, header says {h.nbytes}",
                           hint="a truncated or foreign message; the frame is counted as dropped")
    dt, _ = _PIX[h.pixfmt]
    return np.frombuffer(buf, dtype=dt).reshape(h.shape)


# -- timecode --------------------------------------------------------------------------------------------------
def timecode_to_frames(tc: str, fps: float) -> int:
    """``HH:MM:SS:FF`` -> frame count since midnight at the nominal (rounded) frame rate (non-drop-frame)."""
    try:
        hh, mm, ss, ff = (int(x) for x in tc.replace(";", ":").split(":"))
    except ValueError as exc:
        raise CaptureError(f"timecode {tc!r} is not HH:MM:SS:FF") from exc
    base = int(round(fps))
    return ((hh * 60 + mm) * 60 + ss) * base + ff


def frames_to_timecode(n: int, fps: float) -> str:
    base = int(round(fps))
    ff = n % base
    s = n // base
    return f"{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{ff:02d}"
