"""``reconstruct run SESSION``: run the stage graph."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import MappingProxyType

from ..executors.local import available_cores
from . import parse_options

HELP_EPILOG = """\
examples:
  reconstruct run session/                   run every stage that is not up to date
  reconstruct run session/ --from fit        rerun fit and everything after it
  reconstruct run session/ --only calibrate  run one stage (its inputs must exist)
  reconstruct run session/ --method digital_human --young-refs young/
  reconstruct run /shared/shot42 --executor ray --address auto     per-frame work on the Ray cluster
  reconstruct run session/ --executor ray --jobs 8                  a private local Ray with 8 CPUs

Results are cached under session/out/<stage>/ keyed by inputs and settings: an unchanged stage is skipped,
and a run that was killed resumes from the stage it was in.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    run = sub.add_parser("run", help="run the pipeline on a session", epilog=HELP_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("session", type=Path, help="session folder (made by `capture record` or `reconstruct synth`)")
    g = run.add_mutually_exclusive_group()
    g.add_argument("--from", dest="from_stage", metavar="STAGE", help="rerun STAGE and everything downstream")
    g.add_argument("--only", dest="only_stage", metavar="STAGE", help="run only STAGE")
    run.add_argument("--method", help="aging method (`reconstruct plugins` lists them); without: stop after fit")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="compute device (default auto)")
    run.add_argument("--jobs", type=jobs_arg, default="auto", metavar="N|auto",
                     help="parallel workers for per-frame work: a number, or auto (default): one per CPU core this "
                          "process may use")
    from ..executors.local import EXECUTORS

    run.add_argument("--executor", default="local", choices=tuple(EXECUTORS),
                     help="where per-frame work runs: local (default; --jobs processes) or ray (Ray tasks over "
                          "frame chunks; the optional extra deage[ray])")
    run.add_argument("--address", default=None, metavar="ADDR",
                     help="with --executor ray: cluster to join (auto, ray://head:10001); default: start a "
                          "local Ray with --jobs CPUs. The session must be on storage every node mounts")
    run.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="stage or method option (repeatable), e.g. --option fit.iterations=50")
    return run


def jobs_arg(text: str) -> int:
    """``--jobs``: ``auto`` (:func:`available_cores`) or a whole number >= 1."""
    from ..errors import ConfigError

    if str(text).strip().lower() == "auto":
        return available_cores()
    try:
        n = int(text)
    except ValueError:
        raise ConfigError(f"--jobs {text}: not a number", hint="pass a whole number of workers, or auto") from None
    if n < 1:
        raise ConfigError(f"--jobs {n}: must be at least 1", hint="pass a whole number of workers, or auto")
    return n


def run(args: argparse.Namespace, host) -> int:
    from ..device import resolve_device
    from ..engine import run_pipeline
    from ..errors import ConfigError
    from ..progress import RichProgress
    from ..stage import RunConfig

    jobs = jobs_arg(args.jobs) if isinstance(args.jobs, str) else int(args.jobs)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be at least 1")
    options = parse_options(args.option)
    options.update(plugin_flags(args))
    config = RunConfig(session=args.session, method=args.method, device=resolve_device(args.device),
                       jobs=jobs, from_stage=args.from_stage, only_stage=args.only_stage,
                       executor=args.executor, address=args.address, options=MappingProxyType(options))
    results = run_pipeline(config, host, progress=RichProgress())
    print_summary(results)
    return 0


def plugin_flags(args: argparse.Namespace) -> dict[str, str]:
    """The values of plugin flags (``register_cli_arguments``) whose ``dest`` is ``NAMESPACE.KEY``: they reach that
    stage's or method's Settings like ``--option NAMESPACE.KEY=VALUE`` (and win over it)."""
    return {k: str(v) for k, v in vars(args).items() if "." in k and v is not None}


def print_summary(results) -> None:
    from rich.console import Console

    con = Console(stderr=True)
    for r in results:
        con.print(f"  {r.name:<11} {'[dim]up to date[/dim]' if r.skipped else f'done in {r.seconds:.2f} s'}")
