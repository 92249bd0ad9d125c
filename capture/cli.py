"""The ``capture`` command line (on set). Sub-commands live in :mod:`capture.commands`, one module each.

Exit codes as for ``reconstruct`` (see :mod:`reconstruct.errors`): 0 ok, 2 usage/config, 3 session, 6 capture,
7 calibration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from reconstruct.commands import common_options

log = logging.getLogger("capture")

# The whole CLI: a new command is a module with add_parser(subparsers) and run(args, host), plus a line here.
COMMAND_MODULES: tuple[str, ...] = (
    "capture.commands.record",
    "capture.commands.status",
    "capture.commands.sync",
    "capture.commands.keys",
    "capture.commands.board",
    "capture.commands.import_photos",
)

EPILOG = """\
examples:
  capture record rigs/hero-2ir.toml take-001/ --seconds 20   record a session from the rig
  capture board rigs/hero-2ir.toml board.pdf                  print the rig's calibration board at size
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capture", description="Run a multi-camera capture rig on set.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        mod = importlib.import_module(name)
        p = mod.add_parser(sub)
        common_options(p)
        p.set_defaults(_handler=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from reconstruct.cli import run_cli

    return run_cli(argv, build_parser, log, "interrupted")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
