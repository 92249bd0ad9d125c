"""``reconstruct options [NAMESPACE ...]``: every ``--option NAMESPACE.KEY=VALUE`` of the loaded plugins, with its
type, default and meaning (read from the Settings each stage, method and executor declares)."""

from __future__ import annotations

import argparse

HELP_EPILOG = """\
examples:
  reconstruct options                 every option of every stage, method and executor
  reconstruct options fit composite   the fit and composite options only

Use them as `reconstruct run SESSION --option fit.iterations=20 --option composite.feather_px=12`. A misspelled
namespace, key or value stops the run before any stage runs (exit 2) and names what exists.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("options", help="list every --option of the loaded stages, methods and executors",
                       epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("namespace", nargs="*", help="only these namespaces (stage, method or executor names)")
    return p


def run(args: argparse.Namespace, host) -> int:
    from ..engine import declared_settings
    from ..errors import ConfigError
    from ..options import describe_field, settings_fields

    declared = declared_settings(host.components())
    unknown = [n for n in args.namespace if n not in declared]
    if unknown:
        raise ConfigError(f"no stage, method or executor is named {', '.join(unknown)}",
                          hint=f"namespaces: {', '.join(sorted(declared))}")
    for ns in args.namespace or sorted(declared):
        cls = declared[ns]
        if cls is None:
            print(f"{ns}: declares no Settings (its options are passed on unchecked)")
            continue
        fields = settings_fields(cls)
        print(f"{ns}:" + ("" if fields else " no options"))
        for key, (hint, default, help_) in fields.items():
            print("  " + describe_field(ns, key, hint, default, help_))
    return 0
