"""``capture keys DIR --rig RIG``: create ZeroMQ CURVE key pairs for a networked rig."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  capture keys keys/ --rig rigs/hero-2ir.toml     server pair + one pair per camera of the rig
  capture record rigs/hero-2ir.toml take/ --curve-keys keys/ --data-endpoint tcp://10.0.0.5:5551

Copy keys/server.key and keys/clients/<camera>.key_secret to each camera machine; keep keys/server.key_secret on the
recorder machine. Existing keys are kept (run again to add cameras).
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("keys", help="create CURVE keys for an encrypted, authenticated rig network", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Write a server key pair and one client key pair per camera.")
    p.add_argument("folder", help="key folder to create or extend")
    p.add_argument("--rig", required=True, help="rig file (its cameras get a key pair each)")
    return p


def run(args: argparse.Namespace, host) -> int:
    from capture.security import make_keys
    from reconstruct.rig import load_rig

    rig = load_rig(args.rig)
    folder = make_keys(args.folder, rig.camera_names)
    print(f"keys for {', '.join(rig.camera_names)} in {folder}")
    return 0
