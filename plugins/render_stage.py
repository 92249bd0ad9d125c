"""Built-in plugin ``render``: the render stage. Draws every "mesh" face edit of the age stage through the hero
camera, lit like the plate, into an image and a coverage mask; passes "image" edits through unchanged.

Output per frame ``out/render/<frame:06d>.npz``: ``image`` (H, W, 3) float32 sRGB in [0, 1], ``coverage`` (H, W)
float32 in [0, 1] (where the edit defines the face), ``exclude`` (H, W) bool (pixels the plate must keep: the
performance's eyes), optional ``skin`` (H, W) bool; plus ``out/render/render.json`` (renderer, per-frame lighting
coefficients and fit residual). Options: ``--renderer NAME`` (default auto), ``--option render.lighting=plate|key``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from reconstruct import hookimpl
from reconstruct.engine import StageContext
from reconstruct.errors import ConfigError, RenderError
from reconstruct.render.edits import LIGHTING_MODES
from reconstruct.session import atomic_path, atomic_write_json

log = logging.getLogger(__name__)



def save_render(path: Path, image: np.ndarray, coverage: np.ndarray, exclude: np.ndarray | None = None,
                skin: np.ndarray | None = None) -> None:
    arrays = {"image": np.asarray(image, np.float32), "coverage": np.asarray(coverage, np.float32)}
    if exclude is not None:
        arrays["exclude"] = np.asarray(exclude, bool)
    if skin is not None:
        arrays["skin"] = np.asarray(skin, bool)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def load_render(path: Path) -> dict[str, np.ndarray]:
    d = np.load(path, allow_pickle=False)
    return {k: d[k] for k in d.files}


def _render_settings(ctx: StageContext) -> dict:
    opts = ctx.config.options
    s = {"renderer": str(opts.get("renderer") or opts.get("render.renderer") or "auto"),
         "lighting": str(opts.get("render.lighting", "plate"))}
    if s["lighting"] not in LIGHTING_MODES:
        raise ConfigError(f"--option render.lighting={s['lighting']}: unknown", hint="use plate or key")
    unknown = [k for k in opts if k.startswith("render.") and k not in ("render.lighting", "render.renderer")]
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]}", hint="render options: render.lighting, render.renderer")
    return s


class RenderStage:
    name = "render"
    requires: tuple[str, ...] = ("age",)
    version = "1"
    needs_method = True

    def fingerprint(self, ctx: StageContext):
        return _render_settings(ctx)

    def run(self, ctx: StageContext, out: Path) -> None:
        from plugins.age_stage import iter_frames, load_edit, method_context
        from reconstruct.render import get_renderer
        from reconstruct.render.edits import MeshEditDrawer

        settings = _render_settings(ctx)
        age_dir = ctx.stage_dir("age")
        mctx = method_context(ctx)
        renderer = None
        drawer = None
        infos: dict[int, dict] = {}
        frames = list(ctx.session.read_sync())
        with ctx.progress.task("render", total=len(frames)) as task:
            for fin in iter_frames(ctx, mctx):
                task.advance()
                p = age_dir / f"{fin.frame:06d}.npz"
                if not p.exists():
                    continue
                edit = load_edit(p)
                if edit.kind == "image":
                    save_render(out / f"{fin.frame:06d}.npz", edit.image, edit.mask)
                    infos[fin.frame] = {"kind": "image"}
                    continue
                if renderer is None:
                    renderer = get_renderer(ctx.components, settings["renderer"], ctx.device)
                    if mctx.fits is None:
                        raise RenderError("mesh edits need the fit stage's out/fit/fits.npz",
                                          hint="run the fit stage first")
                    model = ctx.components.get("face_model", mctx.fits.model_name).load()
                    drawer = MeshEditDrawer(model, renderer, settings["lighting"])
                    log.info("render: %s backend on %s", renderer.name, ctx.device)
                if fin.hero is None or fin.fit is None:
                    raise RenderError(f"frame {fin.frame}: a mesh edit needs the calibrated hero camera and the "
                                      "frame's fit", hint="run calibrate and fit before the age stage")
                d = drawer.draw(fin.plate, fin.fit.vertices, fin.hero, edit)
                save_render(out / f"{fin.frame:06d}.npz", d.image, d.coverage, d.exclude, d.skin)
                infos[fin.frame] = {"kind": "mesh", **d.info}
        atomic_write_json(out / "render.json", {"renderer": renderer.name if renderer else None,
                                                "requested_renderer": settings["renderer"],
                                                "lighting": settings["lighting"], "frames": infos})


@hookimpl
def register_stages():
    return [RenderStage()]


@hookimpl
def register_cli_arguments(command, parser):
    if command == "run":
        parser.add_argument("--renderer", default=None, metavar="NAME",
                            help="renderer backend for the render stage: auto (default: pytorch3d on a CUDA GPU, "
                                 "else raycast), raycast or pytorch3d")
