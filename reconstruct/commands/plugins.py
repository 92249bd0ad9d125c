"""``reconstruct plugins``: list plugins with distribution, version, status and hooks."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    return sub.add_parser("plugins", help="list plugins, their distribution, version and hooks")


def run(args: argparse.Namespace, host) -> int:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="reconstruct plugins")
    for col in ("plugin", "distribution", "version", "status", "hooks"):
        t.add_column(col, overflow="fold")
    for info in sorted(host.infos.values(), key=lambda i: (not i.builtin, i.name)):
        t.add_row(info.name, info.distribution, info.version, info.status, ", ".join(info.hooks))
    Console(width=160).print(t)
    return 0
