"""The recorder: starts the clock and one node process per camera, PULLs their frames and writes the session.

Accounting (nothing is lost silently): every node numbers the frames it produces 0, 1, 2, ... The recorder keeps
the next expected index per camera. A FRAME with the expected index is written (image first, atomically, then its
``ok`` row); a DROP notice (the node's queue was full) becomes a ``dropped`` row; an index that jumps ahead means
frames were lost between node and recorder, and each missing index becomes a ``dropped`` row ("not received");
a node that dies without its BYE gets a ``gap`` row naming the ticks it missed. ``capture.json`` in the session
holds the live status (rewritten every ``status_interval`` s) and, at the end, the per-camera counts.

A take is ``incomplete`` (not ``complete``) when a camera node died (gap), a camera reported an error or lost the
clock, or the trigger clock died before it sent every tick; ``problems`` in capture.json says which, with the
missing ticks (see :func:`Recorder.problems`).

Back-pressure instead of loss: writer queues are bounded; when one is full the receive loop waits, ZeroMQ queues
fill up to their high-water marks, and the nodes' own queues absorb the rest. Only when a node's queue is full does
it drop a frame -- and says so.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import zmq

from reconstruct.errors import CaptureError, ConfigError, SessionError
from reconstruct.rig import Rig
from reconstruct.session import FrameRecord, Session

from .protocol import NO_TIMECODE, Header, Kind, decode_image, frames_to_timecode, timecode_to_frames, unpack_header
from .security import CurveServer, bind, check_bind_allowed, clock_endpoint
from .writer import CameraStats, CameraWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """How to record.

    Attributes:
        frames: stop after this many ticks (frames per camera); 0 = use ``seconds`` or run until stopped.
        seconds: stop after this many seconds (converted to ticks at the rig fps); 0 = until stopped.
        data_endpoint: where the recorder's PULL socket binds (port 0 = a free port).
        tick_endpoint: overrides the rig's trigger.tick_endpoint (None = the rig's).
        image_format: ``"npy"`` (raw, default: no encode cost) or ``"png"`` (lossless, compression level 1).
        node_queue: frames a node buffers before it drops (and reports) one.
        hwm: ZeroMQ high-water mark (messages) of node PUSH and recorder PULL sockets.
        writer_queue: frames buffered per camera between receiving and writing.
        curve_keys: key folder for ZeroMQ CURVE (None = plain TCP, loopback only).
        insecure_network: allow binding non-loopback addresses without CURVE.
        status_interval: seconds between status updates (capture.json and the live view).
        ready_timeout: seconds to wait for every node's HELLO.
    """

    frames: int = 0
    seconds: float = 0.0
    data_endpoint: str = "tcp://127.0.0.1:5551"
    tick_endpoint: str | None = None
    image_format: str = "npy"
    node_queue: int = 64
    hwm: int = 32
    writer_queue: int = 64
    curve_keys: str | None = None
    insecure_network: bool = False
    status_interval: float = 0.5
    ready_timeout: float = 30.0
    notes: str = ""


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What a finished recording did: the session, its state and the final report (as in capture.json)."""

    session: Session
    state: str
    report: dict


class Recorder:
    """One take: ``Recorder(rig, root, options).run()``. ``stop()`` (thread-safe) ends it early like Ctrl-C."""

    def __init__(self, rig: Rig, root: str | Path, options: RecordOptions = RecordOptions(), host=None,
                 on_status: Callable[[dict], None] | None = None) -> None:
        self.rig, self.root, self.opt = rig, Path(root), options
        self.host = host
        self.on_status = on_status or (lambda s: None)
        self.stats = {c: CameraStats() for c in rig.camera_names}
        self.procs: dict[str, subprocess.Popen] = {}
        self.clock: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._fatal: list[str] = []
        self.ticks = 0
        self.clock_ended: int | None = None  # ticks the clock says it sent ("ended N"); None until it ends cleanly
        self.clock_exit: int | None = None  # the clock's exit code, once it exited during the take
        self.endpoints: dict[str, str] = {}
        self.state = "starting"
        self.session: Session | None = None

    # -- public --------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def n_ticks(self) -> int:
        if self.opt.frames:
            return int(self.opt.frames)
        if self.opt.seconds:
            return max(1, int(round(self.opt.seconds * self.rig.fps)))
        return 0

    def run(self) -> RecordResult:
        self._validate()
        ctx = zmq.Context()
        server = None
        pull = ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.RCVHWM, self.opt.hwm)
        pull.setsockopt(zmq.LINGER, 0)
        writers: dict[str, CameraWriter] = {}
        try:
            check_bind_allowed(self.opt.data_endpoint, self.opt.curve_keys is not None, self.opt.insecure_network)
            if self.opt.curve_keys:
                server = CurveServer(ctx, self.opt.curve_keys)
                server.apply(pull)
            data_ep = bind(pull, self.opt.data_endpoint, "recorder")
            clock_ep = self._start_clock(data_ep)
            self.endpoints = {"data": data_ep, "clock": clock_ep}
            self.session = Session.create(self.root, self.rig, notes=self.opt.notes)
            self._check_disk()
            for cam in self.rig.camera_names:
                writers[cam] = CameraWriter(self.session, cam, self.stats[cam], self.opt.image_format,
                                       self.opt.writer_queue, self._on_fatal)
                writers[cam].start()
            self._start_nodes(data_ep, clock_ep)
            self._wait_ready(pull, writers)
            self.state = "recording"
            self._send_clock(f"start {self.n_ticks()}")
            self._loop(pull, writers)
            if self.clock_exit is None and self.clock.poll() is not None:
                self.clock_exit = self.clock.returncode
            self.state = ("failed" if self._fatal else "incomplete" if self.problems() else
                          "stopped" if self._stop.is_set() else "complete")
        except BaseException:
            self.state = "failed"
            raise
        finally:
            self._shutdown()
            for w in writers.values():
                w.q.put(None)
            for w in writers.values():
                w.join(timeout=60)
            pull.close()
            if server:
                server.stop()
            ctx.term()
            if self.session is not None:
                self._status(writers)  # final counts, after every writer finished
        if self._fatal:
            raise CaptureError(f"recording stopped: {self._fatal[0]}",
                               hint=f"free disk space (or fix the cause) and record a new take; everything listed as "
                                    f"ok in {self.root}/cams/*/frames.csv was kept")
        return RecordResult(self.session, self.state, self.report())

    # -- start-up ------------------------------------------------------------------------------------------------
    def _validate(self) -> None:
        from .node import open_backend
        from reconstruct.plugins import make_plugin_manager

        if self.opt.image_format not in ("npy", "png"):
            raise ConfigError(f"image format {self.opt.image_format!r} unknown", hint="use npy or png")
        host = self.host or make_plugin_manager()
        for spec in self.rig.cameras:
            open_backend(spec, host)  # constructs (does not open) every backend: unknown names/settings fail here
        if self.rig.source is None:
            raise ConfigError("the rig must come from a file (nodes load it)", hint="use reconstruct.rig.load_rig")

    def _check_disk(self) -> None:
        per_s = sum(c.resolution[0] * c.resolution[1] * c.channels for c in self.rig.cameras) * self.rig.fps
        free = shutil.disk_usage(self.root).free
        n = self.n_ticks()
        need = per_s * (n / self.rig.fps if n else 60)
        if free < need:
            raise CaptureError(f"only {free / 1e6:.0f} MB free in {self.root}; this take needs about {need / 1e6:.0f} MB "
                               f"({per_s / 1e6:.0f} MB/s)",
                               hint="free disk space, record to another disk, or record fewer seconds")

    def _python(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def _start_clock(self, data_ep: str) -> str:
        t = self.rig.trigger
        ep = clock_endpoint(self.opt.tick_endpoint or t.tick_endpoint, data_ep, self.opt.curve_keys is not None,
                            explicit=self.opt.tick_endpoint is not None)
        check_bind_allowed(ep, self.opt.curve_keys is not None, self.opt.insecure_network)
        args = ["--endpoint", ep, "--fps", repr(t.fps), "--mode", t.mode]
        if self.opt.curve_keys:
            args += ["--curve-keys", self.opt.curve_keys]
        if self.opt.insecure_network:
            args.append("--insecure-network")
        self.clock = subprocess.Popen(self._python("capture.clock", *args), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, bufsize=1)
        line = self.clock.stdout.readline().strip()
        if line.startswith("bound "):
            return line.split(" ", 1)[1]
        self.clock.wait(timeout=10)
        if line.startswith("error "):
            msg, _, hint = line[6:].partition("\t")
            raise CaptureError(msg, hint=hint or None)
        raise CaptureError(f"the trigger clock did not start (exit code {self.clock.returncode})",
                           hint="run with -vv; check that python -m capture.clock runs on this machine")

    def _send_clock(self, cmd: str) -> None:
        if self.clock and self.clock.poll() is None:
            try:
                self.clock.stdin.write(cmd + "\n")
                self.clock.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def _start_nodes(self, data_ep: str, clock_ep: str) -> None:
        rig_file = str(self.session.root / "rig.toml")
        for cam in self.rig.camera_names:
            args = ["--rig", rig_file, "--camera", cam, "--data", data_ep, "--clock", clock_ep,
                    "--queue", str(self.opt.node_queue), "--hwm", str(self.opt.hwm)]
            if self.opt.curve_keys:
                args += ["--curve-keys", self.opt.curve_keys]
            self.procs[cam] = subprocess.Popen(self._python("capture.node", *args), stdin=subprocess.DEVNULL)
            self.stats[cam].pid = self.procs[cam].pid

    def _wait_ready(self, pull: zmq.Socket, writers: dict[str, CameraWriter]) -> None:
        ready: set[str] = set()
        deadline = time.monotonic() + self.opt.ready_timeout
        while len(ready) < len(self.procs):
            if pull.poll(100):
                h, payload = self._recv(pull)
                if h is None:
                    continue
                if h.kind == Kind.HELLO:
                    ready.add(h.name)
                elif h.kind == Kind.ERROR:
                    raise CaptureError(f"camera {h.name!r}: {self._json(payload).get('error', 'failed')}",
                                       hint=self._json(payload).get("hint") or None)
            for cam, p in self.procs.items():
                if cam not in ready and p.poll() is not None:
                    raise CaptureError(f"camera node {cam!r} exited with code {p.returncode} before it was ready",
                                       hint="its error is printed above; fix the rig's [camera.settings] or the device")
            if self._stop.is_set():
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                missing = sorted(set(self.procs) - ready)
                raise CaptureError(f"camera nodes {missing} did not connect within {self.opt.ready_timeout:.0f} s",
                                   hint="check the endpoints and CURVE keys; with CURVE every camera needs its key pair")

    # -- receiving -----------------------------------------------------------------------------------------------
    @staticmethod
    def _json(payload) -> dict:
        import json

        try:
            return json.loads(bytes(payload.buffer if hasattr(payload, "buffer") else payload) or b"{}")
        except ValueError:
            return {}

    def _recv(self, pull: zmq.Socket):
        parts = pull.recv_multipart(copy=False)
        try:
            h = unpack_header(parts[0].buffer)
        except CaptureError as exc:
            log.warning("ignored a message: %s", exc.message)
            return None, None
        if h.name not in self.stats:
            log.warning("ignored a message from unknown camera %r", h.name)
            return None, None
        return h, (parts[1] if len(parts) > 1 else b"")

    def _timecode(self, h: Header) -> str:
        if h.timecode != NO_TIMECODE:
            return frames_to_timecode(h.timecode, self.rig.fps)
        if h.tick >= 0:
            start = timecode_to_frames(self.session.meta.timecode_start, self.rig.fps)
            return frames_to_timecode(start + h.tick, self.rig.fps)
        return ""

    def _put(self, writers, cam: str, rec: FrameRecord, image) -> None:
        w = writers[cam]
        while True:
            try:
                w.q.put((rec, image), timeout=0.1)
                return
            except queue.Full:
                self._check_nodes(writers, mark_gaps=False)

    def _missing(self, writers, cam: str, upto: int, note: str) -> None:
        st = self.stats[cam]
        while st.expected < upto:
            self._put(writers, cam, FrameRecord(st.expected, 0, -1, "", 0.0, "", "dropped", note), None)
            with writers[cam].lock:
                st.dropped.append(st.expected)
            st.expected += 1

    def _handle(self, h: Header, payload, writers) -> None:
        cam = h.name
        st = self.stats[cam]
        if h.kind in (Kind.FRAME, Kind.DROP):
            if h.index < st.expected:
                log.warning("camera %s: index %d arrived again or late; ignored", cam, h.index)
                return
            self._missing(writers, cam, h.index, "not received: lost between node and recorder")
            st.expected = h.index + 1
            st.produced = max(st.produced, h.index + 1)
            st.node_queue = h.node_queue
            if h.tick >= 0 and (st.last_tick >= 0 or self.rig.trigger.mode == "software"):
                if h.tick > st.last_tick + 1:  # the node never saw these ticks: no frame was produced for them
                    st.missed_ticks.extend(range(st.last_tick + 1, h.tick))
                    log.warning("camera %s: no frame for ticks %d-%d", cam, st.last_tick + 1, h.tick - 1)
            st.last_tick = max(st.last_tick, h.tick)
            if h.kind == Kind.FRAME:
                try:
                    image = decode_image(h, payload)
                except CaptureError as exc:
                    log.warning("%s", exc.message)
                    image = None
                rec = FrameRecord(h.index, h.t_capture_ns, h.tick, self._timecode(h), round(h.exposure_us, 3), "",
                                  "dropped" if image is None else "ok", "" if image is not None else "bad payload")
                if image is None:
                    with writers[cam].lock:
                        st.dropped.append(h.index)
                self._put(writers, cam, rec, image)
            else:
                reason = self._json(payload).get("reason", "dropped at node")
                self._put(writers, cam, FrameRecord(h.index, h.t_capture_ns, h.tick, self._timecode(h),
                                                    round(h.exposure_us, 3), "", "dropped", reason), None)
                with writers[cam].lock:
                    st.dropped.append(h.index)
        elif h.kind == Kind.BYE:
            st.bye = self._json(payload)
            self._missing(writers, cam, int(st.bye.get("produced", st.expected)), "not received before the node ended")
            st.produced = max(st.produced, st.expected)
        elif h.kind == Kind.ERROR:
            st.error = self._json(payload).get("error", "error")
            log.error("camera %s: %s", cam, st.error)

    def _check_nodes(self, writers, mark_gaps: bool = True) -> None:
        """Notice node processes that ended. A node that ended without its BYE gets a gap row -- but only once
        everything it sent has been received (``mark_gaps`` is True only when the socket is drained) and a grace
        time has passed (a clean exit, code 0, always sends BYE first: give it longer)."""
        for cam, p in self.procs.items():
            st = self.stats[cam]
            if st.exit_code is None and p.poll() is not None:
                st.exit_code = p.returncode
                st.dead_at = time.monotonic()
            grace = 10.0 if st.exit_code == 0 else 0.5
            if mark_gaps and st.exit_code is not None and st.bye is None and not st.gaps and \
                    time.monotonic() - st.dead_at > grace:
                note = (f"camera node exited (code {st.exit_code}) after frame {st.expected - 1}, tick {st.last_tick}; "
                        f"no frames after")
                st.gaps.append(note)
                log.error("camera %s: %s; recording the other cameras", cam, note)
                self._put(writers, cam, FrameRecord(st.expected, time.time_ns(), st.last_tick + 1, "", 0.0, "", "gap",
                                                    note), None)

    def _done(self) -> bool:
        for cam, st in self.stats.items():
            if st.bye is None and not st.gaps:
                return False
        return True

    def _loop(self, pull: zmq.Socket, writers) -> None:
        next_status = time.monotonic()
        stop_sent = False
        end_deadline = None
        try:
            while not self._done():
                try:
                    if pull.poll(50):
                        for _ in range(64):  # drain what is there before housekeeping
                            h, payload = self._recv(pull)
                            if h is not None:
                                self._handle(h, payload, writers)
                            if not pull.poll(0):
                                break
                    self._check_nodes(writers, mark_gaps=not pull.poll(0))
                    if (self._stop.is_set() or self._fatal) and not stop_sent:
                        self._send_clock("stop")
                        stop_sent = True
                    if self.clock.poll() is not None and end_deadline is None:
                        end_deadline = time.monotonic() + 20
                        self.clock_exit = self.clock.returncode
                        if self.clock_exit != 0:
                            log.error("the trigger clock died (exit code %s) after %d ticks; the take is incomplete",
                                      self.clock_exit, self._ticks_seen())
                    if end_deadline and time.monotonic() > end_deadline:
                        for cam, p in self.procs.items():
                            if p.poll() is None:
                                log.error("camera node %s did not finish after the clock ended; stopping it", cam)
                                p.kill()
                        end_deadline = time.monotonic() + 5
                    if time.monotonic() >= next_status:
                        next_status = time.monotonic() + self.opt.status_interval
                        self._status(writers)
                except KeyboardInterrupt:
                    log.warning("stopping: finishing the frames in flight (Ctrl-C again to abort)")
                    if self._stop.is_set():
                        raise
                    self._stop.set()
        finally:
            self._status(writers)

    # -- status --------------------------------------------------------------------------------------------------
    def _status(self, writers) -> None:
        now = time.monotonic()
        cams = {}
        for cam, st in self.stats.items():
            w = writers.get(cam)
            lock = w.lock if w else threading.Lock()
            with lock:
                st.window = [x for x in st.window if now - x[0] <= 2.0]
                span = max(1e-3, now - st.window[0][0]) if len(st.window) > 1 else 0
                fps = (len(st.window) - 1) / span if span else 0.0
                mbs = sum(b for _, b in st.window[1:]) / span / 1e6 if span else 0.0
                cams[cam] = {"pid": st.pid, "produced": st.produced, "stored": st.stored,
                             "dropped": len(st.dropped), "dropped_indices": list(st.dropped), "gaps": list(st.gaps),
                             "missed_ticks": list(st.missed_ticks),
                             "fps": round(fps, 2), "disk_mb_s": round(mbs, 2),
                             "queue": (w.q.qsize() if w else 0) + st.node_queue, "exit_code": st.exit_code,
                             "error": st.error}
        self._cams = cams
        try:
            self.session.write_capture_report(self.report())
        except SessionError as exc:
            log.warning("status not written: %s", exc.message)
        self.on_status(self.report())

    def report(self) -> dict:
        cams = getattr(self, "_cams", {})
        clock = {"pid": self.clock.pid if self.clock else None, "exit_code": self.clock_exit,
                 "ticks": self._ticks_sent(), "missing_ticks": self._ticks_missing()}
        return {"state": self.state, "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "recorder_pid": os.getpid(), "host": socket.gethostname(), "rig": self.rig.name, "fps": self.rig.fps,
                "image_format": self.opt.image_format, "requested_ticks": self.n_ticks(), "endpoints": self.endpoints,
                "clock": clock, "cameras": cams, "problems": self.problems(), "errors": list(self._fatal)}

    # -- completeness --------------------------------------------------------------------------------------------
    def _ticks_seen(self) -> int:
        """Ticks the cameras answered: one more than the highest tick any camera stamped (software mode)."""
        return max((st.last_tick for st in self.stats.values()), default=-1) + 1

    def _clock_died(self) -> bool:
        return self.clock_exit is not None and self.clock_exit != 0

    def _ticks_sent(self) -> int | None:
        """Ticks of the take: what the clock said it sent, or (clock killed, software mode) what the cameras saw."""
        if self.clock_ended is not None:
            return self.clock_ended
        if self.rig.trigger.mode == "software" and self.state != "starting":
            return self._ticks_seen()
        return None

    def _ticks_missing(self) -> int | None:
        """Ticks of the requested take never sent because the clock died (None when unknown or not asked)."""
        n, sent = self.n_ticks(), self._ticks_sent()
        if not self._clock_died() or not n or sent is None:
            return None
        return max(0, n - sent)

    def problems(self) -> list[str]:
        """Why the take is incomplete, one line each: camera nodes that died (gaps), camera errors, cameras that lost
        the clock, a trigger clock that died (with the ticks it never sent). Empty for a whole take."""
        out = []
        for cam, st in self.stats.items():
            out += [f"camera {cam}: {g}" for g in st.gaps]
            if st.error:
                out.append(f"camera {cam}: {st.error}")
            elif st.bye and st.bye.get("reason") == "clock lost" and not self._clock_died():
                out.append(f"camera {cam}: lost the trigger clock after tick {st.last_tick}; no frames after")
        if self._clock_died():
            sent, missing = self._ticks_sent(), self._ticks_missing()
            what = f"after {sent} ticks" if sent is not None else "during the take"
            rest = (f"{missing} of {self.n_ticks()} ticks missing" if missing is not None
                    else "the rest of the take is missing")
            out.append(f"the trigger clock died (exit code {self.clock_exit}) {what}: {rest}")
        return out

    def _on_fatal(self, msg: str) -> None:
        if not self._fatal:
            log.error("%s: stopping the take", msg)
        self._fatal.append(msg)

    # -- shutdown ------------------------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        self._send_clock("stop")
        procs = list(self.procs.values()) + ([self.clock] if self.clock else [])
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("process %d did not exit; terminating it", p.pid)
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    p.kill()
        if self.clock and self.clock.stdout:
            try:
                for line in self.clock.stdout.read().splitlines():
                    if line.startswith("ended "):
                        self.clock_ended = int(line.split()[1])
            except (OSError, ValueError):
                pass
            self.clock.stdout.close()
        if self.clock and self.clock.stdin:
            try:
                self.clock.stdin.close()
            except OSError:
                pass
