"""``reconstruct report SESSION``: (re)build the QC report page of a session from whatever stages have run."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP_EPILOG = """\
examples:
  reconstruct report shot42/                      write shot42/out/report/report.html
  reconstruct report shot42/ --copy-to qc/shot42.html
  reconstruct report shot42/ --option report.seams=6 --option report.stiff_expression=0.05

The page is self-contained (inline CSS, images as data URIs): mail it, archive it, open it offline. It needs only
the sync stage; rig, calibration residuals, sync timeline, fit residuals and jitter, before/after plates and the
frames flagged for an artist (stiff expression, unnatural eyes, flicker, seams) appear as their stages complete.
`reconstruct run` also builds it, as its last stage. Thresholds (option: default): report.stiff_expression: 0.04
IOD, report.unnatural_eyes: 0.03 IOD, report.seams: 5 grey levels, report.flicker_k: 5 (robust sigmas),
report.flicker_levels: 2 grey levels.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="build the self-contained HTML QC report of a session", epilog=HELP_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", type=Path, help="session folder")
    p.add_argument("--copy-to", type=Path, metavar="FILE", help="also copy the page to FILE")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="report threshold (repeatable), e.g. --option report.seams=6")
    return p


def run(args: argparse.Namespace, host) -> int:
    import shutil
    from types import MappingProxyType

    from ..engine import run_pipeline
    from ..stage import RunConfig
    from ..errors import SessionError
    from ..progress import RichProgress
    from . import parse_options

    config = RunConfig(session=args.session, only_stage="report", options=MappingProxyType(parse_options(args.option)))
    run_pipeline(config, host, progress=RichProgress())
    page = Path(args.session) / "out" / "report" / "report.html"
    if args.copy_to:
        try:
            args.copy_to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, args.copy_to)
        except OSError as exc:
            raise SessionError(f"cannot copy the report to {args.copy_to}: {exc.strerror}") from exc
    print(page if not args.copy_to else f"{page}\n{args.copy_to}")
    return 0
