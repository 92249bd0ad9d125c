"""Built-in plugin ``render``: the render stage. Draws every "mesh" face edit of the age stage through the hero
camera, lit like the plate, into an image and a coverage mask; passes "image" edits through unchanged.

Output per frame ``out/render/<frame:06d>.npz``: ``image`` (H, W, 3) float32 sRGB in [0, 1], ``coverage`` (H, W)
float32 in [0, 1] (where the edit defines the face), ``exclude`` (H, W) bool (pixels the plate must keep: the
performance's eyes), optional ``skin`` (H, W) bool; plus ``out/render/render.json`` (renderer, per-frame lighting
coefficients and fit residual). Options: ``--renderer NAME`` (default auto), ``--option render.lighting=plate|key``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reconstruct import hookimpl
from reconstruct.engine import StageContext
from reconstruct.errors import ConfigError, RenderError
from reconstruct.executors.frames import chunk_size, frame_chunks, register_components, save_npz, use_threads
from reconstruct.render.edits import LIGHTING_MODES
from reconstruct.session import atomic_write_json

log = logging.getLogger(__name__)



def save_render(path: Path, image: np.ndarray, coverage: np.ndarray, exclude: np.ndarray | None = None,
                skin: np.ndarray | None = None) -> None:
    arrays = {"image": np.asarray(image, np.float32), "coverage": np.asarray(coverage, np.float32)}
    if exclude is not None:
        arrays["exclude"] = np.asarray(exclude, bool)
    if skin is not None:
        arrays["skin"] = np.asarray(skin, bool)
    save_npz(path, **arrays)


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


@dataclass(frozen=True, slots=True)
class RenderChunk:
    """One work item of the render stage (picklable). ``root``: session folder; ``out``: the stage folder being
    written; ``frames``: output frame numbers; ``settings``: :func:`_render_settings`; ``method``: the run's
    method name (its work dir); ``options``: ``--option`` values; ``device``: ``"cpu"`` or ``"cuda"``."""

    root: str
    out: str
    frames: tuple[int, ...]
    settings: dict
    method: str
    options: dict
    device: str


_DRAWERS: dict = {}  # per process: (renderer, device, model, lighting) -> MeshEditDrawer, built once


def _drawer(components, settings: dict, device: str, model_name: str):
    from reconstruct.render import get_renderer
    from reconstruct.render.edits import MeshEditDrawer

    key = (settings["renderer"], device, model_name, settings["lighting"])
    if key not in _DRAWERS:
        renderer = get_renderer(components, settings["renderer"], device)
        model = components.get("face_model", model_name).load()
        _DRAWERS[key] = MeshEditDrawer(model, renderer, settings["lighting"])
        log.info("render: %s backend on %s", renderer.name, device)
    return _DRAWERS[key]


def render_chunk(job: RenderChunk) -> dict[int, dict]:
    """Draw the age stage's edits of one chunk of frames into ``<frame>.npz``; returns per-frame info (with the
    renderer's name under ``"renderer"`` for mesh edits). Module-level so that ``ctx.executor.map`` can ship it."""
    from reconstruct.executors.frames import single_thread_blas

    with single_thread_blas():  # the lighting fit's float64 numbers in render.json: the same in every worker
        return _render_chunk(job)


def _render_chunk(job: RenderChunk) -> dict[int, dict]:
    from deage_plugins.age_stage import build_method_context, frame_inputs, load_edit
    from reconstruct.executors.frames import worker_components
    from reconstruct.progress import NullProgress
    from reconstruct.session import Session

    session = Session.open(job.root)
    components = worker_components()
    mctx = build_method_context(session, job.options, job.device, job.method, NullProgress(), components)
    age_dir = session.stage_dir("age")
    out = Path(job.out)
    infos: dict[int, dict] = {}
    for fin in frame_inputs(session, mctx, job.frames):
        p = age_dir / f"{fin.frame:06d}.npz"
        if not p.exists():
            continue
        edit = load_edit(p)
        if edit.kind == "image":
            save_render(out / f"{fin.frame:06d}.npz", edit.image, edit.mask)
            infos[fin.frame] = {"kind": "image"}
            continue
        if mctx.fits is None:
            raise RenderError("mesh edits need the fit stage's out/fit/fits.npz", hint="run the fit stage first")
        if fin.hero is None or fin.fit is None:
            raise RenderError(f"frame {fin.frame}: a mesh edit needs the calibrated hero camera and the "
                              "frame's fit", hint="run calibrate and fit before the age stage")
        drawer = _drawer(components, job.settings, job.device, mctx.fits.model_name)
        d = drawer.draw(fin.plate, fin.fit.vertices, fin.hero, edit)
        save_render(out / f"{fin.frame:06d}.npz", d.image, d.coverage, d.exclude, d.skin)
        infos[fin.frame] = {"kind": "mesh", **d.info, "renderer": drawer.renderer.name}
    return infos


class RenderStage:
    name = "render"
    requires: tuple[str, ...] = ("age",)
    version = "2"
    needs_method = True

    def fingerprint(self, ctx: StageContext):
        return {**_render_settings(ctx), "chunk": chunk_size(ctx.config.options)}

    def run(self, ctx: StageContext, out: Path) -> None:
        settings = _render_settings(ctx)
        ctx.stage_dir("age")  # fails with a clear message when the age stage has not run
        frames = [fs.frame for fs in ctx.session.read_sync()]
        register_components(ctx.components)
        jobs = [RenderChunk(str(ctx.session.root), str(out), c, settings, ctx.config.method,
                            dict(ctx.config.options), ctx.device)
                for c in frame_chunks(frames, chunk_size(ctx.config.options))]
        infos: dict[int, dict] = {}
        for part in ctx.executor.map(render_chunk, jobs, ctx.progress, f"render ({len(frames)} frames)",
                                     threads=use_threads(ctx.device)):
            infos.update(part)
        names = {i.pop("renderer") for i in infos.values() if "renderer" in i}
        atomic_write_json(out / "render.json", {"renderer": names.pop() if len(names) == 1 else
                                                (sorted(names) if names else None),
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
