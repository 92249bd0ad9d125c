"""Synthetic "young reference stills" for a synthetic session: another identity of the session's face model
(the young actor), a few head poses, rendered with the synthetic scene's eyeballs, mouth interior and key light so
that the landmark detector finds the face. The digital-human method fits its young identity and albedo to them.

Ground truth (the young identity) is written beside the folder as ``<out>.truth.npz``; the pipeline never reads it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def render_young_refs(session_root: Path, out: Path, stills: int = 4, seed: int = 7, size: int = 512,
                      host=None, identity: np.ndarray | None = None) -> Path:
    """Render ``stills`` young reference images of a synthetic session's face model into ``out``; returns ``out``.
    ``identity``: the young actor's identity coefficients (default: related to, not equal to, the performer's);
    it is written to ``<out>.truth.npz``."""
    import cv2

    from ..camera import CameraModel
    from ..conventions import rodrigues
    from ..plugins import make_plugin_manager
    from ..render import linear_to_srgb
    from ..render.base import render_meshes
    from ..render.raycast import RaycastRenderer
    from .scene import HeadState, key_light, posed_meshes
    from .session import load_truth

    truth = load_truth(session_root)
    host = host or make_plugin_manager()
    model = host.components().get("face_model", truth.meta["model"]).load()
    rng = np.random.default_rng(seed)
    ki = model.n_identity
    a = np.zeros(ki)
    a[: truth.identity.size] = truth.identity[:ki]
    noise = 0.7 * rng.normal(size=ki)
    if identity is None:
        identity = 0.5 * a + noise  # the young actor: related to, not equal to, the performer
    else:
        given = np.zeros(ki)
        given[: np.asarray(identity).size] = np.asarray(identity, np.float64).ravel()[:ki]
        identity = given
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    f = 2.2 * size
    cams = {}
    yaws = np.linspace(-25, 25, stills) if stills > 1 else [0.0]
    for k, yaw in enumerate(yaws):
        name = f"young_{k:02d}.png"
        c = (size - 1) / 2
        cam = CameraModel(name, K=np.array([[f, 0, c], [0, f, c], [0, 0, 1]]), image_size=(size, size))
        R = rodrigues(np.radians([rng.uniform(-6, 6), yaw, 0.0])) @ np.diag([1.0, -1.0, -1.0])
        state = HeadState(identity=identity, expression=np.zeros(model.n_expression), R=R,
                          t=np.array([0.0, 0.01, 0.55]))
        _, meshes = posed_meshes(model, state)
        img = render_meshes(RaycastRenderer(), meshes, cam, key_light(k), background=0.25).image
        img = np.round(linear_to_srgb(img) * 255).astype(np.uint8)
        cv2.imwrite(str(out / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cams[name] = {"K": cam.K.tolist()}
    (out / "cameras.json").write_text(json.dumps(cams, indent=1))
    np.savez(out.with_name(out.name + ".truth.npz"), identity=identity)
    log.info("%d young stills of model %r in %s", len(cams), model.name, out)
    return out
