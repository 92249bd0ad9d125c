"""A camera node: one process per camera. It grabs frames from its backend and PUSHes them to the recorder.

Run by ``capture record`` as ``python -m capture.node --rig RIG --camera NAME --data EP --clock EP``.

Life of a node:

1. open its backend (an error is sent to the recorder as an ERROR message and the node exits with code 6);
2. SUBscribe to the clock; on the first ARM message (proof the subscription is live) send HELLO;
3. software mode: for every TICK, ``backend.trigger(tick)`` then ``backend.grab()``; hardware/free mode: grab in a
   loop from START until END (or the backend's end of stream);
4. every produced frame gets the next frame index and goes into a bounded send queue; a sender thread PUSHes
   it zero-copy. When the queue is full the frame is *dropped at the node* and a DROP message with its index is
   sent instead, in index order: the recorder always learns about every index;
5. on END: flush the queue, send BYE with counts, exit.

A node whose recorder has died (parent process gone, or no clock message for ``--idle-timeout`` s) exits by
itself.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import os
import queue
import signal
import sys
import threading
import time

import zmq

from reconstruct.errors import DeageError
from reconstruct.rig import CameraSpec, load_rig

from .protocol import NO_TIMECODE, Header, Kind, frame_message, pack_header, pixfmt_of, timecode_to_frames, unpack_header
from .security import curve_client

log = logging.getLogger(__name__)

_STOP = object()


def open_backend(spec: CameraSpec, host=None):
    """Instantiate and open the backend named by ``spec.backend`` (errors name the camera)."""
    from reconstruct.errors import BackendError, ComponentNotFound
    from reconstruct.plugins import make_plugin_manager

    host = host or make_plugin_manager()
    try:
        cls = host.components().get("camera_backend", spec.backend)
    except ComponentNotFound as exc:
        raise BackendError(f"camera {spec.name!r}: {exc.message}", hint=exc.hint) from exc
    try:
        backend = cls(spec, **dict(spec.settings))
    except TypeError as exc:
        raise BackendError(f"camera {spec.name!r}: bad [camera.settings] for backend {spec.backend!r}: {exc}",
                           hint="docs/capture.md lists the settings of each backend") from exc
    return backend


class Node:
    def __init__(self, spec: CameraSpec, number: int, data_ep: str, clock_ep: str, mode: str, queue_len: int = 64,
                 hwm: int = 32, curve: str | None = None, idle_timeout: float = 5.0) -> None:
        self.spec, self.number, self.mode = spec, number, mode
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.SNDHWM, hwm)
        self.push.setsockopt(zmq.LINGER, 10_000)
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        if curve:
            curve_client(self.push, curve, spec.name)
            curve_client(self.sub, curve, spec.name)
        self.push.connect(data_ep)
        self.sub.connect(clock_ep)
        self.queue: queue.Queue = queue.Queue(maxsize=queue_len)
        self.notices: collections.deque = collections.deque()
        self.index = 0
        self.dropped = 0
        self.live = True
        self.idle_timeout = idle_timeout
        self.parent = os.getppid()

    # -- sending (sender thread owns the PUSH socket) ------------------------------------------------------------
    def _header(self, kind: Kind, **kw) -> Header:
        return Header(kind, camera=self.number, name=self.spec.name, **kw)

    def _control(self, kind: Kind, info: dict) -> None:
        self.queue.put((kind, info))  # blocking: control messages are never dropped

    def _sender(self) -> None:
        while True:
            try:
                item = self.queue.get(timeout=0.05)
            except queue.Empty:
                item = None
            limit = item[0].index if isinstance(item, tuple) and isinstance(item[0], Header) else None
            while self.notices and (limit is None or self.notices[0].index < limit):
                n = self.notices.popleft()
                self.push.send_multipart([pack_header(n), b'{"reason": "node send queue full"}'])
            if item is None:
                continue
            if item is _STOP:
                return
            if isinstance(item[0], Header):
                h, img = item
                h = dataclasses.replace(h, node_queue=self.queue.qsize())
                self.push.send_multipart(frame_message(h, img), copy=False)
            else:
                kind, info = item
                self.push.send_multipart([pack_header(self._header(kind)), json.dumps(info).encode()])

    def produce(self, image, t_ns: int, meta: dict, tick: int, t_tick_ns: int = 0) -> None:
        tc = NO_TIMECODE
        if meta.get("timecode"):
            tc = timecode_to_frames(meta["timecode"], self.spec.fps)
        if "tick" in meta:
            tick = int(meta["tick"])
        h = self._header(Kind.FRAME, index=self.index, tick=tick, t_capture_ns=int(t_ns), t_tick_ns=t_tick_ns,
                         pixfmt=pixfmt_of(image), width=image.shape[1], height=image.shape[0],
                         exposure_us=float(meta.get("exposure_us", self.spec.exposure_us)), timecode=tc)
        self.index += 1
        try:
            if self.live:
                self.queue.put_nowait((h, image))
            else:  # files can wait: read them at the pace the recorder accepts, drop nothing
                self.queue.put((h, image))
        except queue.Full:
            self.dropped += 1
            self.notices.append(Header(Kind.DROP, camera=self.number, name=self.spec.name, index=h.index, tick=tick,
                                       t_capture_ns=h.t_capture_ns, timecode=tc, exposure_us=h.exposure_us))

    # -- main loop -----------------------------------------------------------------------------------------------
    def _recv_clock(self, timeout_s: float) -> Header | None:
        if self.sub.poll(int(timeout_s * 1000)):
            parts = self.sub.recv_multipart()
            return unpack_header(parts[0])
        return None

    def _orphaned(self) -> bool:
        return os.getppid() != self.parent

    def run(self, backend) -> int:
        self.live = bool(getattr(backend, "live", True))
        sender = threading.Thread(target=self._sender, daemon=True)
        sender.start()
        reason = "end"
        try:
            try:
                backend.open()
            except DeageError as exc:
                self._control(Kind.ERROR, {"error": exc.message, "hint": exc.hint or ""})
                reason = "error"
                return 6
            # wait for the clock
            deadline = time.monotonic() + 30
            while True:
                h = self._recv_clock(0.5)
                if h is not None and h.kind in (Kind.ARM, Kind.START, Kind.TICK):
                    break
                if time.monotonic() > deadline or self._orphaned():
                    reason = "no clock"
                    return 6
            self._control(Kind.HELLO, {"pid": os.getpid(), "backend": self.spec.backend})
            if self.mode == "software":
                reason = self._run_triggered(backend, h)
            else:
                reason = self._run_free(backend)
            return 0
        except DeageError as exc:
            self._control(Kind.ERROR, {"error": exc.message, "hint": exc.hint or "", "index": self.index})
            reason = "error"
            return 6
        finally:
            try:
                backend.close()
            except Exception:  # noqa: BLE001 - closing must not hide the real outcome
                log.exception("closing backend")
            if self._orphaned():  # the recorder is gone: nothing can be delivered, do not wait for it
                log.warning("recorder gone; exiting")
                os._exit(3)
            self._control(Kind.BYE, {"produced": self.index, "dropped_at_node": self.dropped, "reason": reason})
            self.queue.put(_STOP)
            sender.join(timeout=30)
            self.push.close()
            self.sub.close()
            self.ctx.term()

    def _run_triggered(self, backend, h: Header | None) -> str:
        last = time.monotonic()
        while True:
            if h is not None:
                last = time.monotonic()
                if h.kind == Kind.END:
                    return "end"
                if h.kind == Kind.TICK:
                    backend.trigger(h.tick, h.t_tick_ns)
                    got = backend.grab()
                    if got is None:
                        return "end of stream"
                    img, t_ns, meta = got
                    self.produce(img, t_ns, meta, h.tick, h.t_tick_ns)
            elif time.monotonic() - last > self.idle_timeout or self._orphaned():
                return "clock lost"
            h = self._recv_clock(0.2)

    def _run_free(self, backend) -> str:
        started = False
        while not started:
            h = self._recv_clock(0.5)
            if h is not None and h.kind == Kind.START:
                started = True
            elif h is not None and h.kind == Kind.END:
                return "end"
            elif self._orphaned():
                return "recorder lost"
        while True:
            if self.sub.poll(0):
                h = unpack_header(self.sub.recv_multipart()[0])
                if h.kind == Kind.END:
                    return "end"
            if self._orphaned():
                return "recorder lost"
            got = backend.grab()
            if got is None:
                return "end of stream"
            img, t_ns, meta = got
            self.produce(img, t_ns, meta, -1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m capture.node", description="one camera node (started by capture record)")
    p.add_argument("--rig", required=True)
    p.add_argument("--camera", required=True)
    p.add_argument("--data", required=True, help="recorder endpoint (PUSH connects here)")
    p.add_argument("--clock", required=True, help="clock endpoint (SUB connects here)")
    p.add_argument("--queue", type=int, default=64, help="frames buffered in the node before it drops")
    p.add_argument("--hwm", type=int, default=32, help="ZeroMQ send high-water mark, messages")
    p.add_argument("--curve-keys", default=None)
    p.add_argument("-v", "--verbose", action="count", default=0)
    a = p.parse_args(argv)
    # Ctrl-C in the terminal reaches the whole process group: only the recorder acts on it (it stops the clock,
    # which ends the take cleanly for every node)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.WARNING,
                        format=f"node {a.camera}: %(levelname)s %(message)s")
    try:
        rig = load_rig(a.rig)
        spec = rig.camera(a.camera)
        number = rig.camera_names.index(a.camera)
        node = Node(spec, number, a.data, a.clock, rig.trigger.mode, a.queue, a.hwm, a.curve_keys)
        backend = open_backend(spec)
    except DeageError as exc:
        print(f"node {a.camera}: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return exc.exit_code
    return node.run(backend)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
