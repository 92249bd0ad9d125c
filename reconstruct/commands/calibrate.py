"""``reconstruct calibrate SESSION``: calibrate the rig from the session's ``calib/`` board images."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP_EPILOG = """\
examples:
  reconstruct calibrate session/                       detect the rig's board in calib/<camera>/, calibrate all
                                                       cameras jointly, write session/calibration.json
  reconstruct calibrate session/ --tangential fit      always fit p1, p2 (default: only where the data show them)
  reconstruct calibrate session/ --board-shape rigid   a precision (glass, aluminium) board: never estimate its shape
  reconstruct calibrate session/ --model fisheye       wide-angle lenses
  reconstruct calibrate session/ --fix-aspect-ratio    square pixels (fx = fy)
  reconstruct calibrate session/ --export cams.toml    also write an anipose camera file (--style caliscope)
  reconstruct calibrate session/ --intrinsics camera_array.toml
                                                       intrinsics calibrated elsewhere, solve the extrinsics
  reconstruct calibrate session/ --intrinsics-only     each camera's lens on its own, for cameras that never saw
                                                       the board together (the rig's geometry stays unknown)
  reconstruct calibrate session/ --intrinsics session/calibration.json
                                                       then, after `capture import session/ --append ...` of
                                                       views the cameras share: the extrinsics, intrinsics fixed
  reconstruct calibrate session/ --import camera_array.toml --translation-scale 1
                                                       use cameras calibrated elsewhere (anipose/caliscope TOML)

The board comes from the rig file's [board] table (ChArUco or chessboard, inverted prints included). Frames with
the same index in calib/<camera>/frames.csv are taken as simultaneous; `capture import` makes calib/ from board
photos. The command prints per-camera RMS, the board-corner error in mm, image coverage and parameter
uncertainty, and warns when views or coverage are too few to trust the result (exit code 0; errors exit with 7).

Model choice (recorded in calibration.json and the QC report): tangential distortion (p1, p2) is fitted only for
cameras whose lens shows it (a Wald test in the joint adjustment; fitting it to a lens without it doubles the
principal point's error), and the board's true shape (a print off scale, a sheet that is not flat) is estimated
only when it lowers the residuals beyond chance (an F-test); the board keeps its nominal mean size.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("calibrate", help="calibrate the rig from calib/ board images", epilog=HELP_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", type=Path, help="session folder with calib/<camera>/ images and frames.csv")
    p.add_argument("--model", choices=("pinhole", "fisheye"), default="pinhole", help="lens model (default pinhole)")
    p.add_argument("--fix-aspect-ratio", action="store_true", help="keep fx = fy (CALIB_FIX_ASPECT_RATIO)")
    p.add_argument("--tangential", choices=("auto", "fit", "zero"), default="auto",
                   help="tangential distortion p1, p2: auto (default: fitted per camera where significant), fit "
                        "(always), zero (never)")
    p.add_argument("--zero-tangent", action="store_const", const="zero", dest="tangential",
                   help="same as --tangential zero")
    p.add_argument("--board-shape", choices=("auto", "estimate", "rigid"), default="auto",
                   help="estimate the board's deviation from its nominal geometry: auto (default: when "
                        "significant), estimate (always), rigid (never: a precision board)")
    p.add_argument("--fix-k3", action="store_true", help="no k3 (views that do not reach the image corners)")
    p.add_argument("--rational", action="store_true", help="8-coefficient rational distortion model")
    p.add_argument("--no-refine-intrinsics", action="store_true",
                   help="bundle adjustment moves poses only, keeping each camera's own intrinsics")
    p.add_argument("--reference", metavar="CAMERA", help="camera whose frame is the world frame (default: hero)")
    p.add_argument("--step", type=int, default=1, metavar="N", help="use every N-th calibration image (default 1)")
    p.add_argument("--import", dest="import_toml", type=Path, metavar="TOML",
                   help="instead of calibrating, import cameras from an anipose/caliscope TOML (names must match "
                        "the rig's cameras, or cam_0.. are mapped to the rig's cameras in order)")
    p.add_argument("--intrinsics", type=Path, metavar="FILE",
                   help="take intrinsics from a calibration.json (e.g. of --intrinsics-only) or an anipose/caliscope "
                        "TOML and solve the rig's extrinsics only (add --refine-intrinsics to let the bundle "
                        "adjustment move them too)")
    p.add_argument("--intrinsics-only", action="store_true",
                   help="calibrate every camera on its own (no shared views needed); calibration.json then holds "
                        "intrinsics only, and later stages refuse it until the extrinsics are solved")
    p.add_argument("--refine-intrinsics", action="store_true", help="with --intrinsics: refine them as well")
    p.add_argument("--translation-scale", type=float, default=1.0,
                   help="factor from the TOML's translation unit to metres (0.001 for millimetres)")
    p.add_argument("--export", dest="export_toml", type=Path, metavar="TOML", help="also write a camera TOML")
    p.add_argument("--style", choices=("anipose", "caliscope"), default="anipose", help="style of --export")
    return p


def _import(session, path: Path, scale: float, what: str = "cameras"):
    from ..calibration.result import RigCalibration
    from ..calibration.toml_io import read_camera_toml
    from ..errors import CalibrationError

    cams = read_camera_toml(path, translation_scale=scale)
    names = list(session.rig.camera_names)
    if set(names) <= set(cams):
        chosen = {n: cams[n] for n in names}
    elif len(cams) == len(names):
        chosen = {n: c for n, c in zip(names, cams.values())}
    else:
        raise CalibrationError(f"{path} has {what} for {sorted(cams)}; the rig has {names}",
                               hint="name the TOML's cameras like the rig's, or give one camera per rig camera")
    from dataclasses import replace

    chosen = {n: replace(c, name=n) for n, c in chosen.items()}
    for n, c in chosen.items():
        want = session.rig.camera(n).resolution
        if tuple(c.image_size) != tuple(want):
            raise CalibrationError(f"camera {n!r}: {path} says {c.image_size} pixels, the rig says {want}",
                                   hint="import a calibration made at the resolution the camera records with")
    return RigCalibration(cameras=chosen, quality={"imported_from": str(path), "warnings": []})


def _intrinsics_from(session, path: Path) -> dict:
    """Camera -> model with the intrinsics of ``path``: a calibration.json (full or intrinsics-only) or a TOML."""
    from ..calibration.result import RigCalibration
    from ..errors import CalibrationError

    if path.suffix.lower() != ".json":
        return dict(_import(session, path, 1.0, "intrinsics").cameras)
    cal = RigCalibration.from_dict(session.read_calibration(path), str(path), require_extrinsics=False)
    missing = [c for c in session.rig.camera_names if c not in cal.cameras]
    if missing:
        raise CalibrationError(f"{path} has no intrinsics for camera(s) {', '.join(missing)}",
                               hint="calibrate those cameras too (`reconstruct calibrate <session> --intrinsics-only`)")
    for c in session.rig.camera_names:
        want, got = tuple(session.rig.camera(c).resolution), tuple(cal.cameras[c].image_size)
        if got != want:
            raise CalibrationError(f"camera {c!r}: {path} says {got} pixels, the rig says {want}",
                                   hint="use intrinsics calibrated at the resolution the camera records with")
    return {c: cal.cameras[c] for c in session.rig.camera_names}


def run(args: argparse.Namespace, host) -> int:
    from ..calibration.rig_solve import CalibrationOptions, calibrate_session
    from ..calibration.toml_io import write_camera_toml
    from ..errors import ConfigError
    from ..progress import RichProgress
    from ..session import Session

    if args.step < 1:
        raise ConfigError(f"--step {args.step}: must be at least 1")
    if args.intrinsics_only and (args.intrinsics or args.import_toml):
        raise ConfigError("--intrinsics-only calibrates the intrinsics; it cannot be combined with --intrinsics or "
                          "--import")
    session = Session.open(args.session)
    if args.import_toml:
        cal = _import(session, args.import_toml, args.translation_scale)
    else:
        opts = CalibrationOptions(model=args.model, fix_aspect_ratio=args.fix_aspect_ratio,
                                  zero_tangent={"auto": None, "fit": False, "zero": True}[args.tangential],
                                  refine_board={"auto": None, "estimate": True, "rigid": False}[args.board_shape],
                                  fix_k3=args.fix_k3, rational=args.rational,
                                  refine_intrinsics=not args.no_refine_intrinsics,
                                  reference=args.reference or session.rig.hero.name,
                                  intrinsics_only=args.intrinsics_only)
        intr = None
        if args.intrinsics:
            intr = _intrinsics_from(session, args.intrinsics)
            from dataclasses import replace

            opts = replace(opts, refine_intrinsics=args.refine_intrinsics)
        cal = calibrate_session(session, opts, progress=RichProgress(), step=args.step, intrinsics=intr)
    record = cal.to_dict()
    if not args.import_toml:  # what `reconstruct run` checks before keeping this calibration instead of redoing it
        record["source"] = {"made_by": "reconstruct calibrate", "calib": session.frames_digest(kind="calib"),
                            "board": repr(session.rig.board)}
    session.write_calibration(record)
    print(f"wrote {session.calibration_path}")
    for name, cam in cal.cameras.items():
        q = cal.camera_quality.get(name, {})
        std = q.get("std", {})
        line = f"  {name:<10} f=({cam.K[0, 0]:.1f}, {cam.K[1, 1]:.1f}) c=({cam.K[0, 2]:.1f}, {cam.K[1, 2]:.1f})"
        if q:
            line += (f"  RMS {q['rms_px']:.3f} px  board {q['board_error_mm']:.2f} mm  views {q['views']}"
                     f"  coverage {q['coverage']:.0%}  sigma f {std.get('fx', float('nan')):.2f} px")
        c = cam.center
        if cal.extrinsics:
            line += f"  centre ({c[0]:.3f}, {c[1]:.3f}, {c[2]:.3f}) m"
        if q.get("lens_model", {}).get("tangential"):
            line += f"  tangential {q['lens_model']['tangential']}"
        print(line)
    shape = cal.quality.get("board_shape", {})
    if shape.get("refined"):
        print(f"  board shape estimated: corners up to {shape['max_offset_mm']:.2f} mm from the nominal print "
              f"(RMS {shape['rms_offset_mm']:.2f} mm)")
    elif shape.get("test", {}).get("held_rigid"):
        print(f"  board shape: held rigid ({shape['test']['held_rigid']})")
    elif "test" in shape:
        print("  board shape: no deviation from the nominal print beyond noise (held rigid)")
    for w in cal.warnings:
        print(f"warning: {w}")
    if not cal.extrinsics:
        print("intrinsics only: the cameras' positions in the rig are not solved. Capture views the cameras see "
              f"together, add them with `capture import {session.root} --append CAMERA=PHOTOS ...`, then run "
              f"`reconstruct calibrate {session.root} --intrinsics {session.calibration_path}`")
    if args.export_toml:
        write_camera_toml(dict(cal.cameras), args.export_toml, style=args.style)
        print(f"wrote {args.export_toml} ({args.style})")
    return 0
