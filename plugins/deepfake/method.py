"""The ``deepfake`` aging method: train on the session plate (now) and young references, swap at merge."""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

import numpy as np

from reconstruct.errors import MethodError
from reconstruct.methods import BaseMethod, FaceEdit, FrameInput, MethodContext
from reconstruct.options import option

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeepfakeRunSettings:
    """``--option deepfake.KEY=VALUE`` of ``reconstruct run`` (the merge; training has its own flags:
    ``reconstruct train deepfake --help``); defaults equal :class:`.train.DeepfakeSettings`'s."""

    colour: Literal["none", "mean-std", "histogram"] = option("mean-std", "colour transfer at merge")
    erode: float = option(1.0, "mask erosion at merge, crop pixels")
    blur: float = option(2.0, "mask blur at merge, crop pixels")
    hull_margin: float = option(0.25, "the learned mask is limited to the landmarks' convex hull grown by this "
                                      "fraction")

    def __post_init__(self) -> None:
        if self.erode < 0 or self.blur < 0 or self.hull_margin < 0:
            raise ValueError("deepfake.erode, deepfake.blur and deepfake.hull_margin must be >= 0")


class DeepfakeMethod(BaseMethod):
    """Deepfake autoencoder: shared encoder, actor-now and actor-young decoders with learned masks."""

    name = "deepfake"
    identity_changing = True
    Settings = DeepfakeRunSettings

    def __init__(self) -> None:
        self._model = None
        self._meta: dict[str, Any] = {}

    @staticmethod
    def add_train_arguments(parser: argparse.ArgumentParser) -> None:
        from .train import DeepfakeSettings

        d = DeepfakeSettings()
        g = parser.add_argument_group("deepfake")
        g.add_argument("--young", "--young-refs", dest="young", required=False, default="",
                       help="folder of young stills/footage of the actor (+ optional points.json landmarks)")
        g.add_argument("--size", type=int, default=d.size, help="aligned crop size, px, multiple of 16 "
                       f"(default {d.size}; 64 for tests, 256+ for production)")
        g.add_argument("--coverage", type=float, default=d.coverage, help="template coverage (default %(default)s)")
        g.add_argument("--width", type=int, default=d.width, help="first-level channels (default %(default)s)")
        g.add_argument("--latent", type=int, default=d.latent, help="bottleneck units (default %(default)s)")
        g.add_argument("--steps", type=int, default=d.steps, help="training steps (default %(default)s)")
        g.add_argument("--batch", type=int, default=d.batch, help="crops per identity per step (default %(default)s)")
        g.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default %(default)s)")
        g.add_argument("--seed", type=int, default=d.seed, help="seed (default 0)")
        g.add_argument("--w-mask", type=float, default=d.w_mask, help="mask loss weight (default %(default)s)")
        g.add_argument("--w-perceptual", type=float, default=d.w_perceptual,
                       help="random-feature perceptual loss weight (default %(default)s)")
        g.add_argument("--warp", type=float, default=d.warp, help="random warp augmentation (default %(default)s)")
        g.add_argument("--holdout", type=int, default=d.holdout, help="validation crops per side (default %(default)s)")
        g.add_argument("--every", type=int, default=d.every, help="use every n-th frame (default %(default)s)")

    def train(self, ctx: MethodContext, args: argparse.Namespace):
        from reconstruct.training import TrainSettings, run_training
        from reconstruct.training.facepoints import iter_folder_faces, iter_session_faces

        from .data import extract_crops
        from .train import DeepfakeSettings, DeepfakeTask

        s = DeepfakeSettings.from_mapping(vars(args))
        if not s.young:
            raise MethodError("the deepfake method needs young reference footage or stills",
                              hint="pass --young DIR (a folder of images/videos, optional points.json)")
        now = extract_crops(((str(f), p, pts) for f, p, pts in
                             iter_session_faces(ctx.session, ctx.components, ctx.fits, ctx.cameras, s.every)),
                            s.size, s.coverage, f"{ctx.session.root} hero plate")
        young = extract_crops(iter_folder_faces(s.young, ctx.components, s.every), s.size, s.coverage, s.young)
        log.info("deepfake crops: %d now (plate), %d young (%s)", len(now), len(young), s.young)
        (n_tr, n_va), (y_tr, y_va) = now.split(s.holdout), young.split(s.holdout)
        task = DeepfakeTask(s, n_tr, y_tr, device=ctx.device, val_now=n_va, val_young=y_va)
        loop = TrainSettings.from_args(args, steps=s.steps, seed=s.seed)
        return run_training(task, loop, ctx.work_dir, resume=getattr(args, "resume", False),
                            fresh=getattr(args, "fresh", False), meta=s.meta(), progress=ctx.progress)

    def merge_settings(self, ctx: MethodContext) -> dict[str, Any]:
        return asdict(self.own_settings(ctx))

    def settings(self, ctx: MethodContext) -> Mapping[str, Any]:
        from reconstruct.training.checkpoint import checkpoint_digest

        return {**self.merge_settings(ctx), "checkpoint": checkpoint_digest(ctx.work_dir)}

    def prepare(self, ctx: MethodContext) -> None:
        from reconstruct.training.checkpoint import trained_checkpoint

        from .train import load_model

        ckpt = trained_checkpoint(ctx, "the deepfake model", "reconstruct train deepfake {session} --young DIR")
        self._model, self._meta = load_model(ckpt, ctx.device)
        self._merge = self.merge_settings(ctx)

    def apply(self, ctx: MethodContext, frame: FrameInput) -> FaceEdit:
        from reconstruct.training.facepoints import fit_landmarks

        model_name = ctx.fits.model_name if ctx.fits is not None else ""
        points = fit_landmarks(ctx.components, frame.fit, frame.hero, model_name)
        return self.edit(frame.frame, frame.plate, points, ctx.device)

    def edit(self, frame: int, plate: np.ndarray, points: np.ndarray, device: str = "cpu") -> FaceEdit:
        """Swap one plate given its landmarks (the part of ``apply`` after the fit)."""
        from .merge import merge_face

        if self._model is None:
            raise MethodError("deepfake apply() called before prepare()")
        m = self._merge
        image, mask, _ = merge_face(self._model, plate, points, coverage=float(self._meta["coverage"]),
                                    colour=m["colour"], erode=m["erode"], blur=m["blur"],
                                    hull_margin=m["hull_margin"], device=device)
        return FaceEdit(frame=frame, kind="image", image=image, mask=mask,
                        info={"colour": m["colour"], "crop_px": int(self._meta["size"])})
