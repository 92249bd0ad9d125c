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
from reconstruct.errors import DeageError
from reconstruct.plugins import make_plugin_manager

log = logging.getLogger("capture")

# The whole CLI: a new command is a module with add_parser(subparsers) and run(args, host), plus a line here.
COMMAND_MODULES: tuple[str, ...] = (
    "capture.commands.record",
    "capture.commands.status",
    "capture.commands.sync",
    "capture.commands.keys",
    "capture.commands.board",
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
    from reconstruct.cli import _setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--disable-plugin", action="append", default=[])
    pre.add_argument("-v", "--verbose", action="count", default=0)
    known, _ = pre.parse_known_args(argv)
    _setup_logging(known.verbose)
    try:
        host = make_plugin_manager(disable=known.disable_plugin)
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return 2
        return args._handler(args, host)
    except DeageError as exc:
        log.error("%s", exc.message)
        if exc.hint:
            log.error("hint: %s", exc.hint)
        if known.verbose > 1:
            log.exception("details")
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
