"""Built-in plugin ``render``: the render stage. Draws every "mesh" face edit of the age stage through the hero
camera, lit like the plate, into an image and a coverage mask of the face's region (rendered once; the lighting is
estimated from that render); passes "image" edits (crops of the plate) through unchanged.

Output per frame ``out/render/<frame:06d>.npz`` (:class:`reconstruct.artifacts.RenderedFace`) plus
``out/render/render.json`` (renderer, per-frame lighting coefficients and fit residual). Options:
``--renderer NAME`` (= ``--option render.renderer=NAME``; default auto), ``--option render.lighting=plate|key``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconstruct import hookimpl
from reconstruct.artifacts import RenderedFace, edit_path, load_edit
from reconstruct.errors import RenderError
from reconstruct.executors.frames import frame_chunks, single_thread_blas, use_threads
from reconstruct.methods import frame_inputs, method_context
from reconstruct.options import option
from reconstruct.progress import NullProgress
from reconstruct.provenance import hand_over_digests
from reconstruct.session import atomic_write_json
from reconstruct.stage import StageContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RenderSettings:
    """``--option render.KEY=VALUE``."""

    renderer: str = option("auto", "renderer backend: auto (pytorch3d on a CUDA GPU, else raycast), raycast or "
                                   "pytorch3d (also --renderer)")
    lighting: Literal["plate", "key"] = option("plate", "light the face like the plate (estimated per frame) or "
                                                        "with a fixed key light")


@dataclass(frozen=True, slots=True)
class RenderChunk:
    """One work item of the render stage (picklable). ``root``: session folder; ``out``: the stage folder being
    written; ``frames``: output frame numbers; ``settings``: the render settings; ``device``: ``"cpu"`` or
    ``"cuda"``."""

    root: str
    out: str
    frames: tuple[int, ...]
    settings: RenderSettings
    device: str


def _drawer(res, settings: RenderSettings, device: str, model_name: str):
    """The worker's mesh drawer (renderer + face model), built once per run and process."""
    from reconstruct.render import get_renderer
    from reconstruct.render.edits import MeshEditDrawer

    def make():
        renderer = get_renderer(res.components, settings.renderer, device)
        log.info("render: %s backend on %s", renderer.name, device)
        return MeshEditDrawer(res.face_model(model_name), renderer, settings.lighting)

    return res.get(("mesh-drawer", settings.renderer, device, model_name, settings.lighting), make)


def render_chunk(job: RenderChunk, res) -> tuple[dict[int, dict], dict[str, tuple[str, int]]]:
    """Draw the age stage's edits of one chunk of frames into ``<frame>.npz``; returns per-frame info (with the
    renderer's name under ``"renderer"`` for mesh edits) and ``{str(path): (sha256, bytes)}`` of the files written
    (for the session manifest). Module-level so that ``ctx.executor.map`` can ship it."""
    with single_thread_blas():  # the lighting fit's float64 numbers in render.json: the same in every worker
        return _render_chunk(job, res)


def _render_chunk(job: RenderChunk, res) -> tuple[dict[int, dict], dict[str, tuple[str, int]]]:
    session = res.session(job.root)
    mctx = method_context(session, None, device=job.device, progress=NullProgress(), components=res.components)
    age_dir = session.stage_dir("age")
    out = Path(job.out)
    infos: dict[int, dict] = {}
    digests: dict[str, tuple[str, int]] = {}
    for fin in frame_inputs(session, mctx, job.frames):
        p = edit_path(age_dir, fin.frame)
        if not p.exists():
            continue
        edit = load_edit(p)
        if edit.kind == "image":  # passed through: the same crop of the plate
            edit.check_fits(fin.plate.shape)
            path = RenderedFace.path(out, fin.frame)
            digests[str(path)] = RenderedFace(edit.image, edit.mask, exclude=edit.keep, exact=edit.blend == "exact",
                                              origin=edit.origin).save(path, sync=False)
            infos[fin.frame] = {"kind": "image"}
            continue
        if mctx.fits is None:
            raise RenderError("mesh edits need the fit stage's out/fit/fits.npz", hint="run the fit stage first")
        if fin.hero is None or fin.fit is None:
            raise RenderError(f"frame {fin.frame}: a mesh edit needs the calibrated hero camera and the "
                              "frame's fit", hint="run calibrate and fit before the age stage")
        drawer = _drawer(res, job.settings, job.device, mctx.fits.model_name)
        d = drawer.draw(fin.plate, fin.fit.vertices, fin.hero, edit)
        # ``out`` is the stage's temporary folder: no fsync per file, the stage's commit flushes it
        path = RenderedFace.path(out, fin.frame)
        digests[str(path)] = RenderedFace(d.image, d.coverage, d.exclude, d.skin, origin=d.origin).save(path,
                                                                                                        sync=False)
        infos[fin.frame] = {"kind": "mesh", **d.info, "renderer": drawer.renderer.name}
    return infos, digests


class RenderStage:
    name = "render"
    requires: tuple[str, ...] = ("age",)
    version = "5"  # 5: crops of the plate (origin), one render per mesh edit; 4: render mode keeps the plate off its skin and at its holes; 3: image edits carry keep and exact
    needs_method = True
    Settings = RenderSettings

    def fingerprint(self, ctx: StageContext):
        """The renderer ``auto`` resolves to (None when none is available: image-space edits need none)."""
        from reconstruct.errors import DeageError
        from reconstruct.render import renderer_class

        try:
            renderer = renderer_class(ctx.components, ctx.settings[self.name].renderer, ctx.device).name
        except DeageError:
            renderer = None
        return {"renderer": renderer, "chunk": ctx.settings["frames"].chunk}

    def run(self, ctx: StageContext, out: Path) -> None:
        settings = ctx.settings[self.name]
        ctx.stage_dir("age")  # fails with a clear message when the age stage has not run
        frames = [fs.frame for fs in ctx.session.read_sync()]
        jobs = [RenderChunk(str(ctx.session.root), str(out), c, settings, ctx.device)
                for c in frame_chunks(frames, ctx.settings["frames"].chunk)]
        infos: dict[int, dict] = {}
        digests: dict[str, tuple[str, int]] = {}
        for part, written in ctx.executor.map(render_chunk, jobs, ctx.progress, f"render ({len(frames)} frames)",
                                              threads=use_threads(ctx.device), resources=True):
            infos.update(part)
            digests.update(written)
        hand_over_digests(ctx, self.name, out, digests)  # the manifest's entries without reading the files again
        names = {i.pop("renderer") for i in infos.values() if "renderer" in i}
        atomic_write_json(out / "render.json", {"renderer": names.pop() if len(names) == 1 else
                                                (sorted(names) if names else None),
                                                "requested_renderer": settings.renderer,
                                                "lighting": settings.lighting, "frames": infos})


@hookimpl
def register_stages():
    return [RenderStage()]


@hookimpl
def register_cli_arguments(command, parser):
    if command == "run":
        parser.add_argument("--renderer", dest="render.renderer", default=None, metavar="NAME",
                            help="renderer backend for the render stage: auto (default: pytorch3d on a CUDA GPU, "
                                 "else raycast), raycast or pytorch3d")
