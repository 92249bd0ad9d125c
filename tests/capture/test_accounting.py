"""The recorder's per-camera accounting, message by message (no processes): every index ends as exactly one row."""

from __future__ import annotations

import queue
import threading

import numpy as np

from capture.protocol import Header, Kind, PixFmt
from capture.recorder import Recorder
from reconstruct.session import Session

from .conftest import loopback_options


class FakeWriter:
    def __init__(self):
        self.q: queue.Queue = queue.Queue()
        self.lock = threading.Lock()

    def rows(self):
        out = []
        while not self.q.empty():
            rec, img = self.q.get()
            out.append((rec.index, rec.status, rec.tick, rec.note, img is not None))
        return out


def frame(index, tick, name="ir-left"):
    img = np.zeros((64, 96), np.uint8)
    return Header(Kind.FRAME, name=name, index=index, tick=tick, pixfmt=PixFmt.GRAY8, width=96, height=64), img.tobytes()


def test_frames_drops_transport_losses_and_missed_ticks(small_rig, tmp_path):
    rec = Recorder(small_rig, tmp_path / "t", loopback_options())
    rec.session = Session.create(tmp_path / "t", small_rig)
    writers = {c: FakeWriter() for c in small_rig.camera_names}
    for h, payload in [frame(0, 0), frame(1, 3),  # ticks 1-2 never seen by the node
                       frame(4, 6),  # indices 2-3 lost between node and recorder
                       (Header(Kind.DROP, name="ir-left", index=5, tick=7), b'{"reason": "node send queue full"}'),
                       frame(6, 8), frame(6, 8)]:  # a repeated index is ignored
        rec._handle(h, payload, writers)
    rec._handle(Header(Kind.BYE, name="ir-left"), b'{"produced": 9}', writers)  # 7, 8 never arrived
    rows = writers["ir-left"].rows()
    assert [r[0] for r in rows] == list(range(9))  # one row per produced index, in order
    assert [r[1] for r in rows] == ["ok", "ok", "dropped", "dropped", "ok", "dropped", "ok", "dropped", "dropped"]
    assert "lost between node and recorder" in rows[2][3] and rows[5][3] == "node send queue full"
    assert "before the node ended" in rows[7][3]
    st = rec.stats["ir-left"]
    assert st.missed_ticks == [1, 2, 4, 5]
    assert sorted(st.dropped) == [2, 3, 5, 7, 8] and st.produced == 9
    # a frame whose payload does not match its header is a dropped row, not a corrupt image
    h, _ = frame(0, 0, name="hero")
    rec._handle(Header(Kind.FRAME, name="hero", index=0, tick=0, pixfmt=PixFmt.GRAY8, width=96, height=64),
                b"short", writers)
    assert writers["hero"].rows() == [(0, "dropped", 0, "bad payload", False)]
