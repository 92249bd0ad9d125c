"""The ``reconstruct`` command line.

Exit codes: 0 success; 1 unexpected error (a bug: please report with -v output); 2 bad usage or configuration;
3 session problem; 4 plugin problem; 5 a stage failed; 6 capture; 7 calibration; 8 face model or fit;
9 render; 10 method; 11 consent missing; 130 interrupted (Ctrl-C). See :mod:`reconstruct.errors`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from typing import Any, Callable, NoReturn

from .commands import command_modules, common_options, subcommand_parsers
from .errors import DeageError
from .plugins import make_plugin_manager

log = logging.getLogger("reconstruct")

EPILOG = """\
examples:
  reconstruct demo                           make a synthetic session in ./demo-session and run it end to end
  reconstruct run session/                   run every stage that is not up to date
  reconstruct run session/ --from fit        rerun fit and everything after it
  reconstruct run session/ --only calibrate  run one stage (its inputs must exist)
  reconstruct plugins                        list plugins, their versions and hooks

Stages cache their results under session/out/<stage>/; an unchanged stage is skipped and an interrupted run
resumes where it stopped. Exit codes: 0 ok, 2 usage, 3 session, 4 plugin, 5 stage failed, 11 consent missing.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconstruct", description="Reconstruct, de-age and composite faces from a multi-camera session.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in command_modules():
        p = mod.add_parser(sub)
        common_options(p)
        p.set_defaults(_handler=mod.run)
    return parser


class OneLineHandler(logging.Handler):
    """Log records on stderr as ``[HH:MM:SS] LEVEL    message``, each message on one line whatever the terminal
    width (rich colours the level on a terminal and prints above a live progress bar; it never wraps the text, so
    logs and CI output keep one line per record)."""

    STYLES = {"DEBUG": "dim", "INFO": "blue", "WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}

    def __init__(self, console=None) -> None:
        super().__init__()
        from rich.console import Console

        self.console = console or Console(stderr=True)

    def emit(self, record: logging.LogRecord) -> None:
        from rich.text import Text

        try:
            when = time.strftime("%H:%M:%S", time.localtime(record.created))
            text = Text.assemble((f"[{when}] ", "dim"),
                                 (f"{record.levelname:<8} ", self.STYLES.get(record.levelname, "")),
                                 self.format(record))
            self.console.print(text, soft_wrap=True, highlight=False, markup=False, emoji=False)
        except Exception:  # logging must never raise
            self.handleError(record)


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    root.handlers[:] = [OneLineHandler()]
    root.setLevel(level)
    if verbosity == 0:
        for name in ("reconstruct", "capture", "deage_plugins"):
            logging.getLogger(name).setLevel(logging.WARNING)


def parse_command_line(argv: list[str], host, build: Callable[[], argparse.ArgumentParser] = build_parser
                       ) -> argparse.Namespace:
    """Parse ``argv`` after the plugins added their flags to the sub-command being run (``register_cli_arguments``;
    plugins may add options, so the host is built before the full parse)."""
    parser = build()
    command = next((a for a in argv if not a.startswith("-")), None)
    subparsers = subcommand_parsers(parser)
    if command in subparsers:
        host.hook.register_cli_arguments(command=command, parser=subparsers[command])
    return parser.parse_args(argv)


class _CtrlC:
    """Remembers a Ctrl-C (SIGINT) while a command runs, so that an error it caused still exits 130: a library
    interrupted inside an import or a C call may turn the KeyboardInterrupt into an error of its own (seen: an
    interrupted ``import open3d`` read as "no renderer is available", exit 9)."""

    def __init__(self) -> None:
        self.seen = False
        self._old = None

    def _handler(self, signum, frame) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def __enter__(self) -> "_CtrlC":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def run_cli(argv: list[str] | None, build: Callable[[], argparse.ArgumentParser], logger: logging.Logger,
            interrupted: str, host_factory: Callable[..., Any] = make_plugin_manager) -> int:
    """Shared ``main`` of ``reconstruct`` and ``capture``: logging, plugin host, plugin CLI options, error -> exit
    code translation (see :mod:`reconstruct.errors`). ``host_factory(disable=...)`` builds the plugin host."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Plugins may add options, so the plugin manager is built before the full parse. --disable-plugin is read
    # by a first, partial parse.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--disable-plugin", action="append", default=[])
    pre.add_argument("-v", "--verbose", action="count", default=0)
    known, _ = pre.parse_known_args(argv)
    _setup_logging(known.verbose)
    from .lazy_imports import no_collection_at_exit

    no_collection_at_exit()  # the command's process: its exit without the last garbage collections (0.3-0.4 CPU-s)
    ctrl_c = _CtrlC()
    try:
        with ctrl_c:
            host = host_factory(disable=known.disable_plugin)
            args = parse_command_line(argv, host, build)
            if not args.command:
                build().print_help()
                return 2
            return args._handler(args, host)
    except KeyboardInterrupt:
        logger.error("%s", interrupted)
        return 130
    except DeageError as exc:
        if ctrl_c.seen:  # the error is the interrupt's doing: report the interrupt
            logger.error("%s (%s)", interrupted, exc.message)
            return 130
        logger.error("%s", exc.message)
        if exc.hint:
            logger.error("hint: %s", exc.hint)
        if known.verbose > 1:
            logger.exception("details")
        return exc.exit_code
    except OSError as exc:  # a file the command could not read or write (permissions, disk full)
        if ctrl_c.seen:
            logger.error("%s", interrupted)
            return 130
        where = f" {exc.filename}" if exc.filename else ""
        logger.error("cannot access%s: %s", where, exc.strerror or exc)
        logger.error("hint: check that the folder exists, is writable by you and has free space")
        if known.verbose > 1:
            logger.exception("details")
        return 3


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, build_parser, log,
                   "interrupted; completed stages are kept and a rerun resumes from the interrupted one")


def console_main() -> NoReturn:
    """The ``reconstruct`` command (the console script) and ``python -m reconstruct.cli``: :func:`main`, then the
    process ends after its atexit handlers without the interpreter's teardown (0.15-0.2 s;
    :func:`reconstruct.lazy_imports.exit_after_handlers`)."""
    from reconstruct.lazy_imports import exit_after_handlers

    exit_after_handlers(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
