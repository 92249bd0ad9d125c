"""``reconstruct consent add|list SESSION``: the performer consent records of a session (``[[consent]]`` in
session.toml). Identity-changing methods (deepfake, fran, digital_human, ...) refuse to run without one."""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

HELP_EPILOG = """\
examples:
  reconstruct consent add shot42/ --performer "Ann Actor" --reference "stills and film 1985-1992" \\
      --granted-by "Ann Actor" --date 2026-03-01 --scope fran,deepfake --document legal/ann-consent.pdf
  reconstruct consent add shot42/ --performer "Ann Actor" --reference "young stills" \\
      --granted-by "B. Agent (representative)" --date 2026-03-01 --scope '*'
  reconstruct consent list shot42/

A record covers the methods named in --scope ('*' = every method). Methods that change how the performer looks
(identity_changing: the built-in deepfake, fran and digital_human) stop with exit code 11 until a covering record
exists.
Records are appended to session.toml; nothing else in the session changes.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("consent", help="add or list performer consent records of a session", epilog=HELP_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="consent_action", metavar="ACTION")
    add = actions.add_parser("add", help="append a consent record to session.toml", epilog=HELP_EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    add.add_argument("session", type=Path, help="session folder")
    add.add_argument("--performer", required=True, help="the person whose face is changed")
    add.add_argument("--reference", required=True, help="the reference material the consent covers (e.g. 'stills 1985-1992')")
    add.add_argument("--granted-by", required=True, help="who signed: the performer or their representative")
    add.add_argument("--date", required=True, help="date of the signature, YYYY-MM-DD")
    add.add_argument("--scope", required=True, help="comma-separated methods covered, e.g. fran,deepfake; '*' = all")
    add.add_argument("--document", default="", help="where the signed document is kept (path or archive reference)")
    lst = actions.add_parser("list", help="show the consent records of a session")
    lst.add_argument("session", type=Path, help="session folder")
    return p


def parse_scope(text: str) -> tuple[str, ...]:
    from ..errors import ConfigError

    scope = tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    if not scope:
        raise ConfigError(f"--scope {text!r} names no method", hint="e.g. --scope fran,deepfake or --scope '*'")
    return scope


def parse_date(text: str) -> str:
    from ..errors import ConfigError

    try:
        return _dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError as exc:
        raise ConfigError(f"--date {text!r} is not a date", hint="write it as YYYY-MM-DD, e.g. 2026-03-01") from exc


def run(args: argparse.Namespace, host) -> int:
    from ..errors import ConfigError
    from ..session import ConsentRecord, Session

    if args.consent_action is None:
        raise ConfigError("consent needs an action: add or list", hint="see `reconstruct consent --help`")
    session = Session.open(args.session)
    if args.consent_action == "list":
        return _list(session)
    for opt in ("performer", "reference", "granted_by"):
        if not getattr(args, opt).strip():
            raise ConfigError(f"--{opt.replace('_', '-')} is empty", hint="name a person or the material covered")
    record = ConsentRecord(performer=args.performer.strip(), reference=args.reference.strip(),
                           granted_by=args.granted_by.strip(), date=parse_date(args.date),
                           scope=parse_scope(args.scope), document=args.document.strip())
    known = set(host.components().all("aging_method"))
    unknown = [m for m in record.scope if m != "*" and m not in known]
    if unknown:
        raise ConfigError(f"--scope names {', '.join(unknown)}: no such method; nothing was recorded",
                          hint=f"methods: {', '.join(sorted(known)) or 'none'} (or '*' for every method)")
    session.add_consent(record)
    print(f"consent recorded in {session.root / 'session.toml'}: {record.performer} for "
          f"{', '.join(record.scope)} (granted by {record.granted_by}, {record.date})")
    return 0


def _list(session) -> int:
    for c in session.meta.consent:
        for problem in c.problems:
            print(f"invalid (covers nothing): {problem}")
    if not session.meta.consent:
        print(f"{session.root}: no consent records (identity-changing methods will refuse to run)")
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"consent records of {session.meta.name}")
    for col in ("performer", "reference", "granted by", "date", "scope", "document"):
        t.add_column(col, overflow="fold")
    for c in session.meta.consent:
        t.add_row(c.performer, c.reference, c.granted_by, c.date, ", ".join(c.scope), c.document or "-")
    Console(width=160).print(t)
    return 0
