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
from reconstruct.session import atomic_path, atomic_write_json

log = logging.getLogger(__name__)

LIGHTING_MODES = ("plate", "key")


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
    s = {"renderer": str(opts.get("renderer", opts.get("render.renderer", "auto"))),
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
                    drawer = MeshEditDrawer(ctx, renderer, settings["lighting"])
                    log.info("render: %s backend on %s", renderer.name, ctx.device)
                img, cov, excl, skin, info = drawer.draw(fin, edit)
                save_render(out / f"{fin.frame:06d}.npz", img, cov, excl, skin)
                infos[fin.frame] = {"kind": "mesh", **info}
        atomic_write_json(out / "render.json", {"renderer": renderer.name if renderer else None, **settings,
                                                "frames": infos})


class MeshEditDrawer:
    """Draws "mesh" edits: estimate the plate lighting on the fitted face, render the edit with it."""

    def __init__(self, ctx: StageContext, renderer, lighting_mode: str = "plate") -> None:
        from plugins.age_stage import method_context

        self.renderer = renderer
        self.mode = lighting_mode
        mctx = method_context(ctx)
        if mctx.fits is None:
            raise RenderError("mesh edits need the fit stage's out/fit/fits.npz", hint="run the fit stage first")
        self.model = ctx.components.get("face_model", mctx.fits.model_name).load()

    def _region_tris(self, name: str) -> np.ndarray | None:
        reg = self.model.regions.get(name)
        if reg is None:
            return None
        return np.asarray(reg, bool)[self.model.triangles].all(axis=1)

    def mesh(self, vertices: np.ndarray, edit):
        from reconstruct.render import Mesh

        m = self.model
        if edit.albedo_texture is not None:
            if not len(m.uvs):
                raise RenderError(f"frame {edit.frame}: the edit has a UV texture but model {m.name!r} has no UVs")
            return Mesh(vertices, m.triangles, uvs=m.uvs, triangle_uvs=m.triangle_uvs, texture=edit.albedo_texture)
        albedo = edit.vertex_albedo if edit.vertex_albedo is not None else m.albedo_mean
        return Mesh(vertices, m.triangles, vertex_colors=albedo)

    def draw(self, fin, edit):
        from reconstruct.render import Lighting, linear_to_srgb, srgb_to_linear
        from reconstruct.render.lighting import estimate_sh_lighting

        if fin.hero is None or fin.fit is None:
            raise RenderError(f"frame {fin.frame}: a mesh edit needs the calibrated hero camera and the frame's fit",
                              hint="run calibrate and fit before the age stage")
        if edit.vertices.shape != (self.model.n_vertices, 3):
            raise RenderError(f"frame {fin.frame}: edit has {edit.vertices.shape[0]} vertices, model "
                              f"{self.model.name!r} has {self.model.n_vertices}")
        cam = fin.hero
        info: dict = {}
        if self.mode == "plate":
            fit_out = self.renderer.render(self.mesh(fin.fit.vertices, edit), cam, Lighting(ambient=np.ones(3)))
            m = fit_out.mask
            w = self._weights(fit_out)
            lin = srgb_to_linear(fin.plate.astype(np.float32) / 255.0)
            est = estimate_sh_lighting(lin[m], fit_out.albedo[m], fit_out.normals[m], None if w is None else w[m])
            lighting = est.lighting
            info["lighting"] = est.to_dict()
            fit_eyes = self._mask_of(fit_out.fragments, "eyes")
        else:
            lighting, fit_eyes = Lighting.key_light(), None
        out = self.renderer.render(self.mesh(edit.vertices, edit), cam, lighting)
        face_tris = self._region_tris("face")
        cov = out.mask if face_tris is None else self._mask_of(out.fragments, "face")
        eyes = self._mask_of(out.fragments, "eyes")
        exclude = None
        if eyes is not None:
            exclude = eyes if fit_eyes is None else (eyes | fit_eyes)
        skin = self._mask_of(out.fragments, "skin")
        return linear_to_srgb(out.image), cov.astype(np.float32), exclude, skin, info

    def _mask_of(self, frags, region: str) -> np.ndarray | None:
        tris = self._region_tris(region)
        if tris is None:
            return None
        m = frags.mask
        out = np.zeros(m.shape, bool)
        out[m] = tris[frags.triangle[m]]
        return out

    def _weights(self, fit_out) -> np.ndarray | None:
        """Per-pixel weight of the lighting fit: skin if the model knows it, else the face minus eyes/lips."""
        for name in ("skin", "face"):
            w = self._mask_of(fit_out.fragments, name)
            if w is not None:
                for bad in ("eyes", "lips"):
                    b = self._mask_of(fit_out.fragments, bad)
                    if b is not None and name == "face":
                        w &= ~b
                return w.astype(np.float64)
        return None


@hookimpl
def register_stages():
    return [RenderStage()]


@hookimpl
def register_cli_arguments(command, parser):
    if command == "run":
        parser.add_argument("--renderer", default=None, metavar="NAME",
                            help="renderer backend for the render stage: auto (default: pytorch3d on a CUDA GPU, "
                                 "else raycast), raycast or pytorch3d")
