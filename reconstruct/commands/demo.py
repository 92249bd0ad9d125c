"""``reconstruct demo [FOLDER]``: synthesise a small session and run the pipeline on it."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    demo = sub.add_parser("demo", help="generate a small synthetic session and run the pipeline on it")
    demo.add_argument("folder", nargs="?", type=Path, default=Path("demo-session"),
                      help="where to write the demo session (default ./demo-session; an old demo there is replaced)")
    demo.add_argument("--frames", type=int, default=12, help="frames to synthesise (default 12)")
    demo.add_argument("--method", default="digital_human",
                      help="aging method to run on the demo (default digital_human; 'none' stops after the fit)")
    demo.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    return demo


def run(args: argparse.Namespace, host) -> int:
    from ..demo import run_demo
    from ..device import resolve_device
    from ..progress import RichProgress
    from .run import print_summary

    method = None if args.method in (None, "none") else args.method
    results = run_demo(args.folder, host, frames=args.frames, method=method,
                       device=resolve_device(args.device), progress=RichProgress())
    print_summary(results)
    return 0
