"""``capture import SESSION CAMERA=PHOTOS ...``: board photos into a session's ``calib/`` (the door to
``reconstruct calibrate`` for photos taken outside ``capture record``); the session is created from ``--rig``
when it does not exist yet. The work is :mod:`reconstruct.calibration.photos`."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP_EPILOG = """\
examples:
  capture import take/ --rig rigs/mine.toml left=photos/left right=photos/right
        create take/ from the rig file and import two folders of board photos as calibration views
  capture import take/ 'left=photos/left*.jpg' 'right=photos/right*.jpg'
        globs (quoted) into an existing session
  capture import take/ --rig rigs/mine.toml --match none left=lab/left right=lab/right
        photos the cameras did not take together: each camera is calibrated on its own
        (reconstruct calibrate take/ --intrinsics-only)
  capture import take/ --append 'left=shared/L*.jpg' 'right=shared/R*.jpg'
        a later capture added as new views (e.g. the cameras seeing the board together, after an
        intrinsics-only calibration)
  capture import take/ hero=take/calib/hero
        photos copied into calib/hero/ by hand: index them where they are
then:
  reconstruct calibrate take/

Photos with the same view index in different cameras are taken as simultaneous: that is what ties the cameras
together. --match name (the default when every file name has a number) takes the index from the last number in
the file name (left07.jpg and right07.jpg are view 7); --match order pairs the k-th photo of each camera, in
natural name order; --match none never pairs them (photos not taken together). Photos are checked against the rig's resolution of their camera before anything is written;
they are stored losslessly as calib/<camera>/NNNNNN.png (grey for IR cameras). Photos carry no capture time:
frames.csv gets t_capture_ns 0, tick -1 and the source path in its note column.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("import", help="import board photos as calibration views (calib/<camera>/)",
                       epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Import folders or globs of calibration board photos, one per camera, into a "
                                   "session's calib/<camera>/ with frames.csv.")
    p.add_argument("session", type=Path, help="session folder (created from --rig when it does not exist)")
    p.add_argument("photos", nargs="+", metavar="CAMERA=PHOTOS",
                   help="a rig camera and its photos: a folder, one image, or a quoted glob")
    p.add_argument("--rig", type=Path, help="rig file to create the session with (rigs/*.toml)")
    p.add_argument("--match", choices=("auto", "name", "order", "none"), default="auto",
                   help="pair views across cameras by the number in the file name, by sorted order, not at all "
                        "(none: photos not taken together), or auto (default: name when every file name has a "
                        "unique number, else order)")
    p.add_argument("--append", action="store_true",
                   help="add views to cameras that already have some (new indices after the existing ones)")
    return p


def _sources(args: argparse.Namespace) -> dict:
    from reconstruct.calibration.photos import find_photos
    from reconstruct.errors import ConfigError

    out = {}
    for item in args.photos:
        cam, sep, spec = item.partition("=")
        if not sep or not cam or not spec:
            raise ConfigError(f"{item!r}: expected CAMERA=PHOTOS (e.g. left=photos/left or 'left=photos/l*.jpg')")
        if cam in out:
            raise ConfigError(f"camera {cam!r} is given twice", hint="give one folder or glob per camera")
        out[cam] = find_photos(spec)
    return out


def _open_or_create(args: argparse.Namespace, sources: dict):
    """The session, created from ``--rig`` after the photos were checked against it."""
    from reconstruct.calibration.photos import plan_photo_import
    from reconstruct.errors import ConfigError
    from reconstruct.errors import NotASessionError
    from reconstruct.rig import load_rig, rig_to_toml
    from reconstruct.session import Session

    root = args.session
    try:
        session = Session.open(root)
    except NotASessionError:
        session = None
    if session is not None:
        if args.rig is not None and rig_to_toml(load_rig(args.rig)) != rig_to_toml(session.rig):
            raise ConfigError(f"{root} is a session of rig {session.rig.name!r} already; --rig {args.rig} differs",
                              hint="leave out --rig to import into this session, or give a new folder")
        return session, False
    if args.rig is None:
        raise ConfigError(f"{root} is not a session yet", hint="add --rig RIG.toml to create it from a rig file")
    rig = load_rig(args.rig)
    plan_photo_import(rig, sources, args.match)  # every check first: no empty session is left by a bad import
    return Session.create(root, rig), True


def run(args: argparse.Namespace, host) -> int:
    from reconstruct.calibration.photos import import_calibration_photos

    sources = _sources(args)
    session, created = _open_or_create(args, sources)
    if created:
        print(f"created session {session.root} from {args.rig}")
    plan = import_calibration_photos(session, sources, match=args.match, append=args.append)
    how = {"name": "paired across cameras by the number in each file name",
           "order": "paired across cameras by their sorted order",
           "none": "not paired across cameras (--match none)"}[plan.match]
    for cam, photos in plan.photos.items():
        where = "indexed in place" if all(p.in_place for p in photos) else f"into calib/{cam}/"
        print(f"  {cam:<10} {len(photos)} photo(s) {where}, views {photos[0].index}-{photos[-1].index}")
    print(f"views {how}")
    for pair, n in plan.shared.items():
        print(f"  {pair}: {n} view(s) seen together")
    isolated = len(plan.photos) > 1 and not any(plan.shared.values())
    if isolated and plan.match != "none":
        print("warning: no view is shared between cameras: fine for `reconstruct calibrate --intrinsics-only`; if "
              "the k-th photos of the cameras were taken together, import again with --match order")
    print(f"next: reconstruct calibrate {session.root}" + (" --intrinsics-only" if isolated else ""))
    return 0
