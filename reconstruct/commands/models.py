"""``reconstruct models list|import``: the face models the pipeline can use."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  reconstruct models list
  reconstruct models import ict ~/src/ICT-FaceKit/FaceXModel --name ict-full
  reconstruct models import flame ~/Downloads/FLAME2020/generic_model.pkl
  reconstruct models import bfm ~/Downloads/model2017-1_bfm_nomouth.h5

The ICT-FaceKit light model is built in (`ict`). Imported models are stored as npz in $DEAGE_MODELS_DIR
(default ~/.local/share/deage/models); one imported as `ict` replaces the built-in one.
Models are never downloaded: FLAME and BFM need a registration with their authors. See docs/face-models.md.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list face models or import one (ICT-FaceKit, FLAME, BFM 2017)",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    msub = p.add_subparsers(dest="models_command", metavar="{list,import}")
    msub.required = True
    msub.add_parser("list", help="list the face models available (built-in and imported)")
    imp = msub.add_parser("import", help="convert a model file/folder into the user models dir",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("kind", choices=("ict", "flame", "bfm"),
                     help="ict: light npz or FaceXModel OBJ folder; flame: generic_model.pkl/npz; bfm: 2017 h5")
    imp.add_argument("path", type=Path, help="the model file or folder")
    imp.add_argument("--name", default=None, help="store under this name (default: the model's own: ict, flame, ...)")
    imp.add_argument("--force", action="store_true", help="replace an imported model of the same name")
    imp.add_argument("--no-correspondences", action="store_true",
                     help="skip computing the MediaPipe landmark correspondence (can take a minute)")
    return p


def run(args: argparse.Namespace, host) -> int:
    from ..face.store import import_model, models_dir

    if args.models_command == "import":
        out = import_model(args.kind, args.path, name=args.name, force=args.force,
                           correspondences=not args.no_correspondences)
        print(f"imported {args.kind} model -> {out}")
        return 0
    comps = host.components().all("face_model")
    print(f"face models (imported ones live in {models_dir()}):")
    for name, src in comps.items():
        print(f"  {name:16s} {getattr(src, 'description', '')}")
    return 0
