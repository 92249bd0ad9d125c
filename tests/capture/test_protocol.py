"""Wire protocol: header round trip, zero-copy payloads, refusal of foreign messages; timecode helpers."""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from capture.protocol import (HEADER_STRUCT, Header, Kind, PixFmt, decode_image, frame_message, frames_to_timecode,
                              pack_header, pixfmt_of, timecode_to_frames, unpack_header)
from reconstruct.errors import CaptureError


def test_header_is_64_bytes_and_round_trips():
    assert HEADER_STRUCT.size == 64
    h = Header(Kind.FRAME, camera=2, name="witness-left", index=123456789012, tick=99, t_capture_ns=1_700_000_000_123,
               t_tick_ns=1_700_000_000_000, pixfmt=PixFmt.GRAY8, width=640, height=480, exposure_us=4000.0,
               timecode=86399 * 30, node_queue=7)
    assert unpack_header(pack_header(h)) == h


def test_frames_travel_zero_copy_over_zmq():
    ctx = zmq.Context()
    push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push.connect(f"tcp://127.0.0.1:{port}")
    img = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    h = Header(Kind.FRAME, name="hero", index=0, pixfmt=pixfmt_of(img), width=1280, height=720)
    parts = frame_message(h, img)
    assert np.shares_memory(np.frombuffer(parts[1], np.uint8), img)  # the sender does not copy the buffer
    push.send_multipart(parts, copy=False)
    got = pull.recv_multipart(copy=False)
    h2 = unpack_header(got[0].buffer)
    out = decode_image(h2, got[1])
    assert np.array_equal(out, img)
    assert np.shares_memory(out, np.frombuffer(got[1].buffer, np.uint8))  # the receiver wraps, does not copy
    push.close()
    pull.close()
    ctx.term()


def test_foreign_and_damaged_messages_are_refused():
    with pytest.raises(CaptureError, match="magic"):
        unpack_header(b"X" * 64)
    with pytest.raises(CaptureError, match="short"):
        unpack_header(b"DGCF")
    bad = bytearray(pack_header(Header(Kind.HELLO, name="a")))
    bad[4] = 9
    with pytest.raises(CaptureError, match="version 9"):
        unpack_header(bytes(bad))
    h = Header(Kind.FRAME, name="a", pixfmt=PixFmt.RGB8, width=4, height=2)
    with pytest.raises(CaptureError, match="payload has 5 bytes, header says 24"):
        decode_image(h, b"12345")
    with pytest.raises(CaptureError, match="cannot send"):
        pixfmt_of(np.zeros((4, 4, 2), np.uint8))


def test_timecode():
    assert timecode_to_frames("01:00:00:00", 24) == 86400
    assert frames_to_timecode(timecode_to_frames("10:59:59:29", 30) + 1, 30) == "11:00:00:00"
    with pytest.raises(CaptureError, match="not HH:MM:SS:FF"):
        timecode_to_frames("1:00", 30)
