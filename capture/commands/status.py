"""``capture status SESSION``: per-camera fps, drops, gaps, queue depth and disk rate of a recording (live or done)."""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

EPILOG = """\
examples:
  capture status take-001/            one table from take-001/capture.json
  capture status take-001/ --watch    refresh every second while `capture record` runs (Ctrl-C to quit)

state is `recording` while the recorder runs; a `recording` state whose last update is older than 5 s means the
recorder was killed: the frames listed `ok` in frames.csv are complete, the rest of the take is not there.
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("status", help="show a recording's per-camera status", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Show fps, stored/dropped frames, gaps, queue depth and disk MB/s per camera.")
    p.add_argument("session", help="session folder being (or already) recorded")
    p.add_argument("--watch", action="store_true", help="refresh every second")
    p.add_argument("--json", action="store_true", help="print capture.json as is")
    return p


def _state(rep: dict) -> str:
    state = rep.get("state", "?")
    try:
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(rep["updated"])).total_seconds()
    except (KeyError, ValueError):
        age = 0
    if state in ("recording", "starting") and age > 5:
        return f"{state}, but no update for {age:.0f} s: recorder gone (interrupted take)"
    return state


def run(args: argparse.Namespace, host) -> int:
    import json

    from rich.console import Console

    from capture.commands.record import _table
    from reconstruct.errors import SessionError
    from reconstruct.session import Session

    session = Session.open(args.session)
    console = Console()
    while True:
        rep = session.read_capture_report()
        if rep is None:
            raise SessionError(f"{session.root} has no capture.json", hint="it was not recorded by `capture record`")
        if args.json:
            print(json.dumps(rep, indent=2))
        else:
            rep = {**rep, "state": _state(rep)}
            console.print(_table(rep))
            for cam, c in rep["cameras"].items():
                for g in c.get("gaps", []):
                    console.print(f"[yellow]{cam}: gap: {g}[/]")
            for e in rep.get("errors", []):
                console.print(f"[red]error: {e}[/]")
        if not args.watch or rep.get("state") not in ("recording", "starting"):
            return 0
        time.sleep(1.0)
