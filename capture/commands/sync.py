"""``capture sync SESSION``: match the cameras' frames into frame sets; write sync.csv and sync_report.json."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  capture sync take-001/                       auto: by trigger tick, else timecode, else flash, else timestamps
  capture sync imported/ --method flash        independently recorded cameras with a flash/clap in view
  capture sync imported/ --method timecode     cameras jammed to one timecode source
  capture sync imported/ --method timestamps --max-offset 0.5

Writes <session>/sync.csv (one row per hero frame, one column per camera: its frame index, empty = no match) and
<session>/sync_report.json (method, clock offset, drift, jitter, missing and duplicated frames per camera).
Independently recorded files: describe them in a rig file with backend = "video" or "images" and
trigger mode = "free", ingest them with `capture record`, then sync (docs/capture.md shows a full example).
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from capture.sync import METHODS

    p = sub.add_parser("sync", help="match frames across cameras (sync.csv)", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Hero-led frame matching with clock offset, drift, drop and duplicate detection.")
    p.add_argument("session", help="session folder")
    p.add_argument("--method", choices=METHODS, default="auto", help="how frames are matched (default auto)")
    p.add_argument("--max-offset", type=float, default=2.0, metavar="S",
                   help="largest clock offset the timestamps method considers, seconds (default 2)")
    return p


def run(args: argparse.Namespace, host) -> int:
    from capture.sync_session import sync_session
    from reconstruct.progress import RichProgress
    from reconstruct.session import Session

    session = Session.open(args.session)
    framesets, rep = sync_session(session, args.method, args.max_offset, progress=RichProgress())
    print(f"{len(framesets)} frame sets (hero {rep.hero}), method {rep.method}")
    for cam, c in rep.cameras.items():
        if cam == rep.hero:
            continue
        print(f"  {cam}: matched {c.matched}, missing {c.unmatched_hero}, offset {c.offset_ns / 1e6:+.2f} ms, "
              f"drift {c.drift_ppm:+.1f} ppm ({c.drift_frames:+.3f} frames), jitter {c.jitter_ns / 1e6:.2f} ms, "
              f"{len(c.duplicates)} duplicates" + (", AMBIGUOUS" if c.ambiguous else ""))
    for w in rep.warnings:
        print(f"  warning: {w}")
    print(f"wrote {session.sync_path} and {session.sync_report_path}")
    return 0
