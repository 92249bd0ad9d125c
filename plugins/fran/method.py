"""The ``fran`` aging method: train (``reconstruct train fran``), prepare (load the checkpoint), apply per frame."""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from reconstruct.errors import MethodError
from reconstruct.methods import BaseMethod, FaceEdit, FrameInput, MethodContext
from reconstruct.options import option

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FranRunSettings:
    """``--option fran.KEY=VALUE`` of ``reconstruct run`` (training has its own flags: ``reconstruct train fran
    --help``); defaults equal :class:`.train.FranSettings`'s."""

    input_age: float = option(70.0, "the actor's age on the plate, years")
    target_age: float = option(35.0, "the age to reach, years")
    window: int = option(512, "sliding-window size over the aligned face crop, pixels")
    stride: int = option(256, "sliding-window stride, pixels")
    temporal: float = option(0.0, "blend weight of the previous frame's delta, in [0, 1) (0 = off)")

    def __post_init__(self) -> None:
        if not 0 <= self.temporal < 1:
            raise ValueError(f"fran.temporal={self.temporal} must be in [0, 1)")
        if self.window < 16 or self.stride < 1:
            raise ValueError("fran.window must be at least 16 and fran.stride at least 1")


class FranMethod(BaseMethod):
    """FRAN re-aging network: a U-Net predicts an RGB delta from the plate and per-pixel input/target age maps."""

    name = "fran"
    identity_changing = True
    Settings = FranRunSettings

    def __init__(self) -> None:
        self._net = None
        self._meta: dict[str, Any] = {}
        self._run: dict[str, Any] = {}
        self._prev: tuple[int, np.ndarray] | None = None  # (frame, plate-space delta) for temporal smoothing
        self._prev_io: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- training ----------------------------------------------------------------------------------------------
    @staticmethod
    def add_train_arguments(parser: argparse.ArgumentParser) -> None:
        from .train import FranSettings

        d = FranSettings()
        g = parser.add_argument_group("FRAN")
        g.add_argument("--pairs", default=d.pairs, help="'synthetic' (procedural faces; default), 'plate' (the "
                       "take's own plates and the same plates made young by digital_human's plate mode: real "
                       "faces in, real faces out; needs --young), 'digital_human' (renders of the session's fit "
                       "now/young; needs --young) or a folder DIR/<person>/<age>.png of aligned external pairs")
        g.add_argument("--young", "--young-refs", dest="young", default="",
                       help="young reference stills (for --pairs digital_human)")
        g.add_argument("--every", type=int, default=d.every, help="every n-th fitted frame (digital_human pairs)")
        g.add_argument("--input-age", type=float, default=d.input_age,
                       help="age label of the 'now' renders (digital_human pairs; default %(default)s)")
        g.add_argument("--target-age", type=float, default=d.target_age,
                       help="age label of the 'young' renders (digital_human pairs; default %(default)s)")
        g.add_argument("--size", type=int, default=d.size, help=f"training image size, px (default {d.size})")
        g.add_argument("--crop", type=int, default=d.crop, help=f"training patch size, px (default {d.crop})")
        g.add_argument("--width", type=int, default=d.width, help=f"U-Net first-level channels (default {d.width})")
        g.add_argument("--depth", type=int, default=d.depth, help=f"U-Net levels (default {d.depth})")
        g.add_argument("--steps", type=int, default=d.steps, help=f"training steps (default {d.steps})")
        g.add_argument("--batch", type=int, default=d.batch, help=f"pairs per step (default {d.batch})")
        g.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
        g.add_argument("--seed", type=int, default=d.seed, help="seed of init and sampling (default 0)")
        g.add_argument("--w-l1", type=float, default=d.w_l1, help=f"L1 loss weight (default {d.w_l1})")
        g.add_argument("--w-perceptual", type=float, default=d.w_perceptual,
                       help=f"random-feature perceptual loss weight (default {d.w_perceptual})")
        g.add_argument("--w-adversarial", type=float, default=d.w_adversarial,
                       help=f"PatchGAN loss weight (default {d.w_adversarial}; 0 = off)")
        g.add_argument("--persons", type=int, default=d.persons, help="synthetic persons (default %(default)s)")
        g.add_argument("--holdout", type=int, default=d.holdout, help="validation persons (default %(default)s)")
        g.add_argument("--coverage", type=float, default=d.coverage,
                       help="face template coverage of the aligned crop (default %(default)s)")

    def train(self, ctx: MethodContext, args: argparse.Namespace):
        from reconstruct.training import TrainSettings, run_training

        from .data import folder_pairs, synthetic_pairs
        from .train import FranSettings, FranTask, settings_meta

        s = FranSettings.from_mapping(vars(args))
        if s.pairs == "synthetic":
            log.info("training FRAN on %d procedural synthetic persons (not the session's actor)", s.persons)
            pairs = synthetic_pairs(s.persons, s.size, seed=s.seed, coverage=s.coverage)
        elif s.pairs == "digital_human":
            from .dh_pairs import digital_human_pairs

            pairs = digital_human_pairs(ctx, s.young, s.size, s.coverage, s.input_age, s.target_age, s.every)
        elif s.pairs == "plate":
            from .dh_pairs import plate_pairs

            pairs = plate_pairs(ctx, s.young, s.size, s.coverage, s.input_age, s.target_age, s.every)
        else:
            pairs = folder_pairs(s.pairs, s.size)
        train, val = pairs.split(s.holdout)
        task = FranTask(s, train, val, device=ctx.device)
        loop = TrainSettings.from_args(args, steps=s.steps, seed=s.seed)
        return run_training(task, loop, ctx.work_dir, resume=getattr(args, "resume", False),
                            fresh=getattr(args, "fresh", False), meta=settings_meta(s, pairs), progress=ctx.progress)

    # -- the age stage -----------------------------------------------------------------------------------------
    def sequential(self, ctx: MethodContext) -> bool:
        """Temporal smoothing (``fran.temporal > 0``) carries state from frame to frame: apply them in order."""
        return self.run_settings(ctx)["temporal"] > 0

    def run_settings(self, ctx: MethodContext) -> dict[str, Any]:
        return asdict(self.own_settings(ctx))

    def settings(self, ctx: MethodContext) -> Mapping[str, Any]:
        from reconstruct.training.checkpoint import checkpoint_digest

        return {**self.run_settings(ctx), "checkpoint": checkpoint_digest(ctx.work_dir)}

    def prepare(self, ctx: MethodContext) -> None:
        from reconstruct.training.checkpoint import trained_checkpoint

        from .train import load_generator

        ckpt = trained_checkpoint(ctx, "FRAN", "reconstruct train fran {session}")
        self._net, self._meta = load_generator(ckpt, ctx.device)
        self._run = self.run_settings(ctx)
        self._prev = self._prev_io = None

    def apply(self, ctx: MethodContext, frame: FrameInput) -> FaceEdit:
        from reconstruct.training.align import skin_mask_from_68
        from reconstruct.training.facepoints import fit_landmarks

        if self._net is None:
            raise MethodError("FRAN apply() called before prepare()")
        model_name = ctx.fits.model_name if ctx.fits is not None else ""
        points = fit_landmarks(ctx.components, frame.fit, frame.hero, model_name)
        plate = frame.plate.astype(np.float32) / 255.0
        skin = skin_mask_from_68(points, plate.shape[:2])
        return self.edit(frame.frame, plate, points, skin, ctx.device)

    def edit(self, frame: int, plate: np.ndarray, points: np.ndarray, skin: np.ndarray,
             device: str = "cpu") -> FaceEdit:
        """Re-age one (H, W, 3) float plate given its landmarks and skin mask (the part of ``apply`` after the fit)."""
        from .infer import reage_face

        if self._net is None:
            raise MethodError("FRAN edit() called before prepare()")
        r, m = self._run, self._meta
        delta, mask = reage_face(self._net, plate, points, skin, r["input_age"], r["target_age"], size=int(m["size"]),
                                 coverage=float(m["coverage"]), window=r["window"], stride=r["stride"], device=device)
        if r["temporal"] > 0 and self._prev is not None and self._prev[0] == frame - 1:
            delta = (1 - r["temporal"]) * delta + r["temporal"] * self._prev[1]
        self._prev = (frame, delta)
        image = np.clip(plate + delta, 0, 1).astype(np.float32)
        info: dict[str, Any] = {"input_age": r["input_age"], "target_age": r["target_age"]}
        if self._prev_io is not None and self._prev_io[0] == frame - 1:
            _, p_in, p_out, p_mask = self._prev_io
            sel = (mask > 0.5) & (p_mask > 0.5)
            if sel.any():
                fin = float(np.abs(plate - p_in)[sel].mean())
                fout = float(np.abs(image - p_out)[sel].mean())
                info.update(flicker_in=fin, flicker_out=fout, flicker_excess=fout - fin)
        self._prev_io = (frame, plate, image, mask)
        return FaceEdit(frame=frame, kind="image", image=image, mask=mask, info=info)
