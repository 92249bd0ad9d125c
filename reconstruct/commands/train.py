"""``reconstruct train METHOD SESSION [options]``: train a learned aging method's assets for a session.

Method options come from the method class (``add_train_arguments(parser)``); training itself is the method's
``train(ctx, args)`` and writes into ``SESSION/out/methods/METHOD/`` (checkpoint.pt, loss.csv, previews/*.png,
validation.json), where ``reconstruct run --method METHOD`` finds it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP_EPILOG = """\
examples:
  reconstruct train fran session/ --steps 20000                    train FRAN (procedural pairs by default)
  reconstruct train fran session/ --pairs pairs/                   ... on external pairs pairs/<person>/<age>.png
  reconstruct train fran session/ --resume                         continue an interrupted training
  reconstruct train deepfake session/ --young young/ --size 256    train the face-swap autoencoder
  reconstruct train deepfake session/ --young young/ --device cuda
  reconstruct train fran --help                                    the method's own options

Ctrl-C saves a checkpoint; --resume continues it with the same loss curve as an uninterrupted run.
Outputs: SESSION/out/methods/METHOD/{checkpoint.pt, loss.csv, validation.json, previews/step_*.png}.
Identity-changing methods need a consent record in session.toml (`reconstruct consent add`).
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a learned aging method (fran, deepfake) for a session",
                       epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a learned aging method. Options after METHOD belong to that method: "
                                   "see `reconstruct train METHOD --help`.")
    p.add_argument("method", help="aging method to train (`reconstruct plugins` lists them)")
    p.add_argument("method_args", nargs=argparse.REMAINDER, metavar="SESSION [OPTIONS]",
                   help="the session folder and the method's options")
    return p


def method_parser(method_cls, name: str) -> argparse.ArgumentParser:
    from . import common_options

    p = argparse.ArgumentParser(prog=f"reconstruct train {name}", epilog=HELP_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description=method_cls().describe())
    p.add_argument("session", type=Path, help="session folder (the checkpoint goes to out/methods/<method>/)")
    g = p.add_argument_group("training loop")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="compute device (default auto)")
    g.add_argument("--resume", action="store_true", help="continue from the method's checkpoint.pt")
    g.add_argument("--fresh", action="store_true", help="discard an existing checkpoint and start over")
    g.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's)")
    g.add_argument("--checkpoint-every", type=int, default=200, metavar="N", help="steps between checkpoints")
    g.add_argument("--preview-every", type=int, default=200, metavar="N", help="steps between preview PNGs")
    g.add_argument("--log-every", type=int, default=20, metavar="N", help="steps between loss lines")
    common_options(p)
    method_cls.add_train_arguments(p)
    return p


def method_context(session_root: Path, name: str, host, device: str, progress):
    """The MethodContext a method sees when it trains (same work_dir, fits and cameras as the age stage)."""
    from ..methods import method_context as build
    from ..session import Session

    return build(Session.open(session_root), name, device=device, progress=progress, components=host.components())


def run(args: argparse.Namespace, host) -> int:
    from ..device import resolve_device
    from ..errors import ConfigError
    from ..methods import check_consent
    from ..progress import RichProgress

    cls = host.components().get("aging_method", args.method)
    if not (hasattr(cls, "train") and hasattr(cls, "add_train_arguments")):
        raise ConfigError(f"method {args.method!r} has nothing to train",
                          hint="only learned methods (fran, deepfake) are trained; run it with `reconstruct run`")
    margs = method_parser(cls, args.method).parse_args(args.method_args)
    if margs.resume and margs.fresh:
        raise ConfigError("--resume and --fresh exclude each other")
    if margs.threads is not None:
        import torch

        torch.set_num_threads(max(1, margs.threads))
    logging.getLogger("reconstruct.training").setLevel(logging.INFO)  # loss lines
    method = cls()
    ctx = method_context(margs.session, args.method, host, resolve_device(margs.device), RichProgress())
    check_consent(ctx.session, method)
    result = method.train(ctx, margs)
    last = result.history[-1] if result.history else {}
    print(f"{args.method}: step {result.step} ({result.steps_per_second:.2f} steps/s on {ctx.device}); "
          + " ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "step"))
    if result.validation:
        print("validation: " + " ".join(f"{k}={v:.4g}" for k, v in result.validation.items()))
    print(f"checkpoint: {result.checkpoint}")
    print(f"previews:   {result.checkpoint.parent / 'previews'}")
    return 0
