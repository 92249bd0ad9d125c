"""The software trigger clock: one process that broadcasts frame ticks at the rig's frame rate (ZeroMQ PUB).

Run by ``capture record`` as ``python -m capture.clock``; driven through its stdin, one command per line:
``start N`` (N ticks, 0 = until stopped) and ``stop``; end of stdin (the recorder died) also stops it. It
answers on stdout: ``bound <endpoint>`` once its socket is bound (or ``error <message>\\t<hint>``), ``ended
<ticks>`` when done.

Messages (see :mod:`capture.protocol`): ARM every 20 ms until started (a node that receives one knows its
subscription works and says HELLO to the recorder), START, then TICK ``k`` at ``t_start + k / fps`` (absolute
schedule, no accumulated sleep error) in software mode, and END (sent three times). In ``hardware`` and ``free``
mode no ticks are sent: the cameras' own trigger/genlock paces them, and START/END only bracket the take.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import zmq

from reconstruct.errors import DeageError

from .protocol import Header, Kind, pack_header
from .security import CurveServer, bind, check_bind_allowed


def _send(sock: zmq.Socket, kind: Kind, tick: int = -1, t_ns: int | None = None) -> None:
    t = time.time_ns() if t_ns is None else t_ns
    sock.send_multipart([pack_header(Header(kind, name="clock", tick=tick, t_capture_ns=t, t_tick_ns=t)), b""])


def run_clock(endpoint: str, fps: float, mode: str, curve: str | None = None, insecure: bool = False,
              out=sys.stdout, inp=sys.stdin) -> int:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.LINGER, 2000)
    server = None
    try:
        check_bind_allowed(endpoint, curve is not None, insecure)
        if curve:
            server = CurveServer(ctx, curve)
            server.apply(sock)
        actual = bind(sock, endpoint, "trigger clock")
    except DeageError as exc:
        out.write(f"error {exc.message}\t{exc.hint or ''}\n")
        out.flush()
        return 6
    out.write(f"bound {actual}\n")
    out.flush()

    commands: list[str] = []
    got = threading.Event()

    def reader() -> None:
        for line in inp:
            commands.append(line.strip())
            got.set()
        commands.append("stop")  # EOF: the recorder is gone
        got.set()

    threading.Thread(target=reader, daemon=True).start()
    n_ticks = 0
    while True:  # armed, waiting for start
        _send(sock, Kind.ARM)
        if got.wait(0.02):
            got.clear()
            cmd = commands.pop(0) if commands else ""
            if cmd.startswith("start"):
                parts = cmd.split()
                n_ticks = int(parts[1]) if len(parts) > 1 else 0
                break
            if cmd == "stop":
                _send(sock, Kind.END)
                out.write("ended 0\n")
                out.flush()
                sock.close()
                ctx.term()
                return 0
    period = 1e9 / fps
    t0 = time.time_ns() + int(0.05e9)
    _send(sock, Kind.START, t_ns=t0)
    k = 0
    while True:
        if commands and commands[0] == "stop":
            break
        if n_ticks and k >= n_ticks:
            break
        t_k = t0 + int(round(k * period))
        delay = (t_k - time.time_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        if mode == "software":
            _send(sock, Kind.TICK, tick=k, t_ns=time.time_ns())
        k += 1
    for _ in range(3):
        _send(sock, Kind.END, tick=k)
        time.sleep(0.01)
    try:
        out.write(f"ended {k}\n")
        out.flush()
    except (BrokenPipeError, OSError):  # the recorder is gone: nobody to tell
        pass
    sock.close()
    if server:
        server.stop()
    ctx.term()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m capture.clock", description="software trigger clock (internal)")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--fps", type=float, required=True)
    p.add_argument("--mode", default="software", choices=("software", "hardware", "free"))
    p.add_argument("--curve-keys", default=None)
    p.add_argument("--insecure-network", action="store_true")
    a = p.parse_args(argv)
    # Ctrl-C in the terminal reaches the whole process group: only the recorder acts on it (it stops the clock,
    # which ends the take cleanly for every node)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return run_clock(a.endpoint, a.fps, a.mode, a.curve_keys, a.insecure_network)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
