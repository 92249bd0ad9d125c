"""Render "young reference stills" for a synthetic session: another identity of the session's face model (the
young actor B), a few head poses, the synthetic scene's eyeballs, mouth interior and key light, so that the
landmark detector finds the face. Writes PNGs, ``cameras.json`` and, beside the folder, the ground truth
(``<out>.truth.npz``: identity of B).

Usage:
  .venv/bin/python tools/synth_young_refs.py SESSION OUT_DIR [--stills 4] [--seed 7] [--size 512]
then
  reconstruct run SESSION --method digital_human --young-refs OUT_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("session", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--stills", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    import cv2

    from reconstruct.camera import CameraModel
    from reconstruct.conventions import rodrigues
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.render import linear_to_srgb
    from reconstruct.render.base import render_meshes
    from reconstruct.render.raycast import RaycastRenderer
    from reconstruct.synth.scene import HeadState, key_light, posed_meshes
    from reconstruct.synth.session import load_truth

    truth = load_truth(args.session)
    model = make_plugin_manager().components().get("face_model", truth.meta["model"]).load()
    rng = np.random.default_rng(args.seed)
    ki = model.n_identity
    a = np.zeros(ki)
    a[: truth.identity.size] = truth.identity[:ki]
    identity = 0.5 * a + 0.7 * rng.normal(size=ki)  # the young actor: related to, not equal to, the performer
    args.out.mkdir(parents=True, exist_ok=True)
    s = args.size
    f = 2.2 * s
    cams = {}
    yaws = np.linspace(-25, 25, args.stills) if args.stills > 1 else [0.0]
    for k, yaw in enumerate(yaws):
        name = f"young_{k:02d}.png"
        cam = CameraModel(name, K=np.array([[f, 0, (s - 1) / 2], [0, f, (s - 1) / 2], [0, 0, 1]]), image_size=(s, s))
        R = rodrigues(np.radians([rng.uniform(-6, 6), yaw, 0.0])) @ np.diag([1.0, -1.0, -1.0])
        state = HeadState(identity=identity, expression=np.zeros(model.n_expression), R=R,
                          t=np.array([0.0, 0.01, 0.55]))
        _, meshes = posed_meshes(model, state)
        out = render_meshes(RaycastRenderer(), meshes, cam, key_light(k), background=0.25)
        img = np.round(linear_to_srgb(out.image) * 255).astype(np.uint8)
        cv2.imwrite(str(args.out / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cams[name] = {"K": cam.K.tolist()}
    (args.out / "cameras.json").write_text(json.dumps(cams, indent=1))
    np.savez(args.out.with_name(args.out.name + ".truth.npz"), identity=identity)
    print(f"{len(cams)} young stills of model {model.name!r} in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
