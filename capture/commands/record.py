"""``capture record RIG SESSION``: record a take from every camera of a rig into a new session folder."""

from __future__ import annotations

import argparse
import logging

from reconstruct.rig import load_rig

log = logging.getLogger(__name__)

EPILOG = """\
examples:
  capture record rigs/test-small.toml take-001/ --seconds 20     20 s from the three cameras of the rig
  capture record rigs/hero-2ir.toml take-002/ --frames 240        exactly 240 ticks (frames per camera)
  capture record rigs/hero-2ir.toml take-003/                     until Ctrl-C (the frames in flight are kept)
  capture record rigs/net.toml take-004/ --curve-keys keys/ --data-endpoint tcp://10.0.0.5:5551
                                                                  networked rig, encrypted (see `capture keys`)

The session gets cams/<camera>/*.npy + frames.csv, rig.toml, session.toml and capture.json (state, problems, per
camera: produced, stored, dropped indices, gaps). Frames are stored raw (.npy) by default: no encoding cost,
lossless; --format png stores PNG (compression 1) for small rigs. `capture status <session>` shows the live status
from another terminal. Exit status 0: complete (or stopped by Ctrl-C); 6: incomplete (a camera node or the trigger
clock died: the problems printed, and in capture.json, say what is missing) or failed.
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("record", help="record a take from every camera of a rig", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Start the trigger clock and one node process per camera, and write the session.")
    p.add_argument("rig", help="rig file, e.g. rigs/hero-2ir.toml")
    p.add_argument("session", help="new (or empty) session folder")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--frames", type=int, default=0, metavar="N", help="stop after N ticks (frames per camera)")
    stop.add_argument("--seconds", type=float, default=0.0, metavar="S", help="stop after S seconds")
    p.add_argument("--data-endpoint", default="tcp://127.0.0.1:5551",
                   help="where the recorder listens (default %(default)s; port 0 = any free port)")
    p.add_argument("--tick-endpoint", default=None, help="override the rig's trigger.tick_endpoint")
    p.add_argument("--format", dest="image_format", choices=("npy", "png"), default="npy",
                   help="frame storage: raw .npy (default) or PNG")
    p.add_argument("--node-queue", type=int, default=64, metavar="N", help="frames each node buffers (default 64)")
    p.add_argument("--hwm", type=int, default=32, metavar="N", help="ZeroMQ high-water mark (default 32)")
    p.add_argument("--curve-keys", default=None, metavar="DIR", help="encrypt and authenticate with CURVE keys")
    p.add_argument("--insecure-network", action="store_true",
                   help="allow binding a non-loopback address without CURVE (isolated rig networks only)")
    p.add_argument("--notes", default="", help="operator notes stored in session.toml")
    p.add_argument("--quiet", action="store_true", help="no live status view")
    return p


def _table(status: dict):
    from rich.table import Table

    def num(v, fmt: str = "g") -> str:  # capture.json may come from another version: show what is there
        return format(v, fmt) if isinstance(v, (int, float)) else "?"

    t = Table(title=f"{status.get('rig', '?')}  {status['state']}  ({num(status.get('fps'))} fps)", expand=False)
    for col in ("camera", "fps", "stored", "dropped", "gaps", "queue", "disk MB/s"):
        t.add_column(col, justify="right" if col != "camera" else "left")
    for cam, c in status["cameras"].items():
        t.add_row(cam, num(c.get("fps"), ".1f"), num(c.get("stored")), num(c.get("dropped")),
                  str(len(c.get("gaps") or [])), num(c.get("queue")), num(c.get("disk_mb_s"), ".1f"))
    return t


def run(args: argparse.Namespace, host) -> int:
    from capture.recorder import Recorder, RecordOptions

    rig = load_rig(args.rig)
    opts = RecordOptions(frames=args.frames, seconds=args.seconds, data_endpoint=args.data_endpoint,
                         tick_endpoint=args.tick_endpoint, image_format=args.image_format, node_queue=args.node_queue,
                         hwm=args.hwm, curve_keys=args.curve_keys, insecure_network=args.insecure_network,
                         notes=args.notes)
    live = None
    on_status = None
    if not args.quiet:
        from rich.console import Console
        from rich.live import Live

        live = Live(console=Console(stderr=True), refresh_per_second=4, transient=False)
        live.start()
        on_status = lambda s: live.update(_table(s))  # noqa: E731
    import signal

    recorder = Recorder(rig, args.session, opts, host=host, on_status=on_status)
    old = signal.signal(signal.SIGTERM, lambda *_: recorder.stop())  # `kill PID` ends the take like Ctrl-C
    try:
        result = recorder.run()
    finally:
        signal.signal(signal.SIGTERM, old)
        if live is not None:
            live.stop()
    rep = result.report
    lost = sum(c["dropped"] for c in rep["cameras"].values())
    gaps = sum(len(c["gaps"]) for c in rep["cameras"].values())
    for cam, c in rep["cameras"].items():
        print(f"{cam}: {c['stored']} stored, {c['dropped']} dropped, {len(c['gaps'])} gaps (of {c['produced']} produced)")
    print(f"session {result.session.root}: {result.state}; {lost} frames dropped, {gaps} gaps "
          f"(details in capture.json and frames.csv)")
    for p in rep.get("problems", []):
        print(f"incomplete: {p}")
    return 0 if result.state in ("complete", "stopped") and not gaps else 6
