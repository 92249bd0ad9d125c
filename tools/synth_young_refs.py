"""Render "young reference stills" for a synthetic session (see :mod:`reconstruct.synth.young`).

Usage:
  .venv/bin/python tools/synth_young_refs.py SESSION OUT_DIR [--stills 4] [--seed 7] [--size 512]
then
  reconstruct run SESSION --method digital_human --young-refs OUT_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("session", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--stills", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    from reconstruct.synth.young import render_young_refs

    out = render_young_refs(args.session, args.out, stills=args.stills, seed=args.seed, size=args.size)
    print(f"young stills in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
