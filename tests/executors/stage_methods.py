"""Cheap test-only aging methods and a stub fit stage for the per-frame stage tests (importable by worker
processes and Ray workers as ``tests.executors.stage_methods``)."""

from __future__ import annotations

import os

import numpy as np

from reconstruct import hookimpl
from reconstruct.methods import BaseMethod, FaceEdit, SideWork
from tests.stage_plugins import NoFitStage


def _note_pid(ctx) -> None:
    with open(ctx.work_dir / "pids.txt", "a") as fh:  # which processes did the work (the test reads it)
        fh.write(f"{os.getpid()}\n")


class Speckle(BaseMethod):
    """Per-frame image edit: plate + noise seeded by the frame number, inside a centred ellipse mask. ``prepare``
    sets state that ``apply`` needs (so the workers must get the prepared object)."""

    name = "speckle"

    def __init__(self) -> None:
        self.gain = None

    def settings(self, ctx):
        return {"gain": float(ctx.option("speckle.gain", 0.05, float))}

    def prepare(self, ctx):
        self.gain = np.float32(self.settings(ctx)["gain"])

    def apply(self, ctx, frame):
        if self.gain is None:
            raise RuntimeError("apply before prepare")
        _note_pid(ctx)
        h, w = frame.plate.shape[:2]
        rng = np.random.default_rng(100 + frame.frame)  # seeded by the frame, not the process
        img = np.clip(frame.plate.astype(np.float32) / 255 + self.gain * rng.normal(size=(h, w, 3)), 0, 1)
        yy, xx = np.mgrid[0:h, 0:w]
        mask = (((xx - w / 2) / (w / 4)) ** 2 + ((yy - h / 2) / (h / 3)) ** 2 < 1).astype(np.float32)
        return FaceEdit(frame=frame.frame, kind="image", image=img.astype(np.float32), mask=mask,
                        info={"mean": round(float(img.mean()), 6)})


class Trail(Speckle):
    """Sequential edit: each frame blends in the previous frame's output (state kept on the instance)."""

    name = "trail"
    sequential = True

    def prepare(self, ctx):
        super().prepare(ctx)
        self.prev = None

    def apply(self, ctx, frame):
        edit = super().apply(ctx, frame)
        img = edit.image if self.prev is None else 0.5 * edit.image + 0.5 * self.prev
        self.prev = img.astype(np.float32)
        return FaceEdit(frame=frame.frame, kind="image", image=self.prev, mask=edit.mask,
                        info={"mean": round(float(self.prev.mean()), 6)})


class Locked(Speckle):
    """A prepared method that cannot be pickled (holds a lock): each work item builds and prepares its own."""

    name = "locked"

    def prepare(self, ctx):
        import threading

        super().prepare(ctx)
        self.lock = threading.Lock()




def side_square(item, res) -> list:
    """A side work item: its square, and the process that made it."""
    return [item * item, os.getpid()]


class Sided(Speckle):
    """Leaves two items of its preparation to the age stage's workers (``prepare_for_frames``) and writes what came
    back to ``side.json`` in its work dir (``finish_side_work``)."""

    name = "sided"

    def prepare_for_frames(self, ctx):
        self.prepare(ctx)
        return [SideWork(side_square, 3), SideWork(side_square, 4)]

    def finish_side_work(self, ctx, results):
        import json

        (ctx.work_dir / "side.json").write_text(json.dumps(results))


class Early(Speckle):
    """Has preparation that needs no fit (``early_work``: :func:`side_square` of 5, for the fit's face model) and
    writes what the age stage handed it (``self.early``: that item's result, or None) to ``early.json``."""

    name = "early"
    early = None  # set by the age stage: the future of early_work()'s item

    def early_work(self, ctx, model):
        return SideWork(side_square, 5)

    def prepare(self, ctx):
        import json

        super().prepare(ctx)
        got = None if self.early is None else self.early.result()
        self.early = None  # a future does not travel to the workers
        (ctx.work_dir / "early.json").write_text(json.dumps(got))


class TestPlugin:
    @hookimpl
    def register_aging_methods(self):
        return [Speckle, Trail, Locked, Sided, Early]

    @hookimpl
    def register_stages(self):
        return [NoFitStage()]
