"""``reconstruct synth RIG SESSION``: render a synthetic session with ground truth beside it."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  reconstruct synth rigs/test-small.toml /tmp/take1
  reconstruct synth rigs/hero-2ir.toml /tmp/take2 --frames 48 --model ict --seed 3
  reconstruct synth rigs/test-small.toml /tmp/take3 --model demo --drop-rate 0.1 --jitter 0.3 --offset-ms 40
  reconstruct synth rigs/test-small.toml /tmp/take4 --young-stills 3    + young reference stills in take4/young-refs
  reconstruct synth rigs/test-small.toml /tmp/take5 --frames 96 --expressions all --gaze-deg 15 --gaze-style saccades

Writes a normal session (cams/, calib/, frames.csv) and, beside it in SESSION.truth/, the ground truth:
cameras.json, params.npz (identity, expression, head pose per tick), vertices.npz, timeline.json.
The pipeline never reads the .truth folder. See docs/synthetic.md.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("synth", help="render a synthetic session (face performance + calibration) with ground truth",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rig", type=Path, help="rig file (rigs/*.toml)")
    p.add_argument("session", type=Path, help="new session folder to create (must not exist or be empty)")
    p.add_argument("--frames", type=int, default=24, help="ticks of the performance (default 24)")
    p.add_argument("--model", default="auto",
                   help="face model: ict, demo, or an imported model name (default auto: ict, built in)")
    p.add_argument("--seed", type=int, default=0, help="random seed (identity, motion, cameras, noise, timeline)")
    p.add_argument("--gaze-deg", type=float, default=0.0, metavar="DEG",
                   help="eyes look around by up to DEG degrees of yaw (0.6x in pitch) relative to the head; truth "
                        "in <session>.truth/params.npz 'gaze' (default 0: straight ahead; ICT model only)")
    p.add_argument("--gaze-style", choices=("smooth", "saccades"), default="smooth",
                   help="with --gaze-deg: smooth drifts (default) or fixations joined by fast 3-frame saccades")
    p.add_argument("--expressions", default="", metavar="LIST",
                   help="extreme expressions acted one after the other over the talking take, comma-separated from "
                        "scream, pucker, smile, squint, smirk (one-sided smile), blink, brows, or 'all'; each gets an "
                        "equal share of the frames (ramp in, hold, ramp out); truth: params.npz 'segment', "
                        "meta.json 'segments' (blendshape models only)")
    p.add_argument("--calib-poses", type=int, default=30, help="ChArUco calibration poses to render (default 30; 0 = none)")
    p.add_argument("--jitter", type=float, default=0.1, help="timestamp jitter, fraction of a frame period")
    p.add_argument("--drop-rate", type=float, default=0.03, help="probability a witness frame is dropped")
    p.add_argument("--young-stills", type=int, default=0, metavar="N",
                   help="also render N young reference stills (another identity) into SESSION/young-refs, for "
                        "`reconstruct run SESSION --method digital_human --young-refs SESSION/young-refs`")
    p.add_argument("--offset-ms", type=float, default=25.0,
                   help="clock offset of the first witness (the others get -0.4x, 0.7x ...), milliseconds")
    return p


def run(args: argparse.Namespace, host) -> int:
    from ..errors import ConfigError
    from ..progress import RichProgress
    from ..rig import load_rig
    from ..synth import SynthSpec, TimelineSpec, generate_session, truth_dir

    if args.frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {args.frames}")
    if args.young_stills < 0:
        raise ConfigError(f"--young-stills must be 0 or more, got {args.young_stills}")
    rig = load_rig(args.rig)
    witnesses = [c.name for c in rig.cameras if c.role != "hero"]
    factors = [1.0, -0.4, 0.7, -0.9]
    offsets = {c: int(args.offset_ms * 1e6 * factors[i % len(factors)]) for i, c in enumerate(witnesses)}
    if args.gaze_deg < 0:
        raise ConfigError(f"--gaze-deg must be 0 or more, got {args.gaze_deg}")
    from ..synth.expressions import parse_extremes

    try:
        extremes = parse_extremes(args.expressions) if args.expressions else ()
    except ValueError as exc:
        raise ConfigError(f"--expressions: {exc}") from exc
    spec = SynthSpec(frames=args.frames, seed=args.seed, model=args.model, calib_poses=args.calib_poses,
                     gaze_deg=args.gaze_deg, gaze_style=args.gaze_style, extremes=extremes, timeline=TimelineSpec(offset_ns=offsets, jitter_frac=args.jitter, drop_rate=args.drop_rate))
    session = generate_session(rig, args.session, spec, progress=RichProgress())
    n = {c: len(session.frames(c)) for c in rig.camera_names}
    print(f"synthetic session {args.session}: " + ", ".join(f"{c} {k} frames" for c, k in n.items()))
    print(f"ground truth (never read by the pipeline): {truth_dir(args.session)}")
    if args.young_stills:
        from ..synth.young import render_young_refs

        refs = render_young_refs(args.session, args.session / "young-refs", stills=args.young_stills, host=host)
        print(f"young reference stills: {refs} (--method digital_human --young-refs {refs})")
    return 0
