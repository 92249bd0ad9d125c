"""Sub-commands of ``reconstruct``: one module each, with ``add_parser(subparsers)`` and ``run(args, host)``.

The list below is the whole CLI; a new command is a new module plus one line here.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

COMMAND_MODULES = (
    "reconstruct.commands.run",
    "reconstruct.commands.calibrate",
    "reconstruct.commands.demo",
    "reconstruct.commands.plugins",
    "reconstruct.commands.options",
    "reconstruct.commands.models",
    "reconstruct.commands.synth",
    "reconstruct.commands.consent",
    "reconstruct.commands.report",
    "reconstruct.commands.train",
)


def command_modules() -> list[ModuleType]:
    return [importlib.import_module(m) for m in COMMAND_MODULES]


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    p.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                   help="do not load plugin NAME (repeatable); also $RECONSTRUCT_DISABLE_PLUGINS=a,b")


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parse_options(items: list[str]) -> dict[str, str]:
    """``--option KEY=VALUE`` items -> dict."""
    from ..errors import ConfigError

    out = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"--option {it!r} is not KEY=VALUE", hint="e.g. --option fit.iterations=50")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out
