"""``capture status SESSION``: per-camera fps, drops, gaps, queue depth and disk rate of a recording (live or done)."""

from __future__ import annotations

import argparse
import time

EPILOG = """\
examples:
  capture status take-001/            one table from take-001/capture.json
  capture status take-001/ --watch    refresh every second while `capture record` runs (Ctrl-C to quit)

state is `recording` while the recorder runs; a `recording` state whose recorder process is gone (or whose last
update is older than 5 s) is an interrupted take: the frames listed `ok` in frames.csv are complete, the rest of the
take is not there. Exit status: 0 for a complete (or stopped) take or one still recording; 6 for an incomplete
take (a camera node or the trigger clock died: each problem is printed), a failed or an interrupted one.
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("status", help="show a recording's per-camera status", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Show fps, stored/dropped frames, gaps, queue depth and disk MB/s per camera.")
    p.add_argument("session", help="session folder being (or already) recorded")
    p.add_argument("--watch", action="store_true", help="refresh every second")
    p.add_argument("--json", action="store_true", help="print capture.json as is")
    return p


def run(args: argparse.Namespace, host) -> int:
    import json

    from rich.console import Console
    from rich.markup import escape

    from capture.commands.record import _table
    from capture.report import LIVE, take_is_bad, take_problems, take_state
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
            console.print(_table({**rep, "state": take_state(rep)}))
            for p in take_problems(rep):
                console.print(f"[yellow]incomplete: {escape(p)}[/]")
            for e in rep.get("errors", []):
                console.print(f"[red]error: {escape(str(e))}[/]")
        bad = take_is_bad(rep)
        if not args.watch or rep.get("state") not in LIVE or bad:
            return 6 if bad else 0
        time.sleep(1.0)
