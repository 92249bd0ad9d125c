"""FRAN training: settings, the training task (L1 + perceptual + adversarial) and model loading."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from reconstruct.errors import MethodError
from reconstruct.training.checkpoint import read_checkpoint, restore_checkpoint
from reconstruct.training.images import psnr, tile, to_image, to_tensor
from reconstruct.training.losses import PatchDiscriminator, RandomFeaturePerceptual, lsgan_loss
from reconstruct.training.loop import settings_from_mapping

from .data import AgePairs
from .net import FranUNet


@dataclass(frozen=True, slots=True)
class FranSettings:
    """Every FRAN setting (``--option fran.<name>=...`` in ``reconstruct run``; ``--<name>`` in ``train``).

    Attributes:
        size: training image size in pixels (square); aligned face crops at inference use it too.
        crop: training patch size (<= size; random crops when smaller); a multiple of 2**depth.
        width, depth: U-Net first-level channels and number of levels.
        lr: Adam learning rate (generator and discriminator).
        batch: pairs per step.
        steps: training steps.
        seed: network init and sampling seed.
        w_l1, w_perceptual, w_adversarial: loss weights.
        pairs: ``"synthetic"``, ``"plate"`` (the take's plates and digital_human's plate mode of them, needs ``young``),
            ``"digital_human"`` (renders of the session's fit, needs ``young``) or a folder
            ``DIR/<person>/<age>.png``.
        young: young reference stills folder (for ``pairs="digital_human"``).
        every: use every n-th fitted frame for digital-human pairs.
        persons: number of synthetic persons (5 ages each); the last ``holdout`` are validation.
        holdout: validation persons.
        coverage: template coverage of the aligned crop (>1: more context around the face).
        window, stride: sliding-window size and stride in pixels of the aligned crop at inference.
        input_age, target_age: the actor's age on the plate and the age to reach (years).
        temporal: blend weight of the previous frame's delta (0 = off; 0.3 damps flicker at some lag).
    """

    size: int = 256
    crop: int = 128
    width: int = 32
    depth: int = 4
    lr: float = 2e-4
    batch: int = 4
    steps: int = 20000
    seed: int = 0
    w_l1: float = 1.0
    w_perceptual: float = 0.1
    w_adversarial: float = 0.01
    pairs: str = "synthetic"
    young: str = ""
    every: int = 1
    persons: int = 100
    holdout: int = 8
    coverage: float = 1.6
    window: int = 512
    stride: int = 256
    input_age: float = 70.0
    target_age: float = 35.0
    temporal: float = 0.0

    def check(self) -> "FranSettings":
        m = 2 ** self.depth
        for name in ("size", "crop", "window"):
            v = getattr(self, name)
            if v <= 0 or v % m:
                raise MethodError(f"fran {name}={v} must be a positive multiple of {m} (2**depth)")
        if self.crop > self.size:
            raise MethodError(f"fran crop={self.crop} is larger than size={self.size}")
        if not 0 < self.stride <= self.window:
            raise MethodError(f"fran stride={self.stride} must be in (0, window={self.window}]")
        if min(self.w_l1, self.w_perceptual, self.w_adversarial) < 0:
            raise MethodError("fran loss weights must be >= 0")
        if not 0 <= self.temporal < 1:
            raise MethodError(f"fran temporal={self.temporal} must be in [0, 1)")
        return self

    def network_meta(self) -> dict[str, Any]:
        return {"width": self.width, "depth": self.depth, "size": self.size, "coverage": self.coverage}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "") -> "FranSettings":
        """Parse string or typed values (``fran.size=64`` style when ``prefix="fran."``), ignoring other keys."""
        return settings_from_mapping(cls, values, prefix)


def age_input(images: torch.Tensor, skin: torch.Tensor, age_in: torch.Tensor, age_out: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) RGB, (N,1,H,W) skin, (N,) ages in years -> (N,5,H,W) network input (age maps = age/100 on skin)."""
    a = skin * (age_in.view(-1, 1, 1, 1) / 100.0)
    b = skin * (age_out.view(-1, 1, 1, 1) / 100.0)
    return torch.cat([images, a, b], dim=1)


class FranTask:
    """The training problem (see :class:`reconstruct.training.loop.TrainTask`)."""

    def __init__(self, settings: FranSettings, train: AgePairs, val: AgePairs, device: str = "cpu") -> None:
        self.s = settings
        self.device = device
        torch.manual_seed(settings.seed)
        self.gen = FranUNet(settings.width, settings.depth).to(device)
        self.disc = PatchDiscriminator(3 + 1, width=max(8, settings.width)).to(device)
        self.perc = RandomFeaturePerceptual().to(device)
        self.modules = {"generator": self.gen, "discriminator": self.disc}
        self.optimizers = {"generator": torch.optim.Adam(self.gen.parameters(), lr=settings.lr, betas=(0.9, 0.999)),
                           "discriminator": torch.optim.Adam(self.disc.parameters(), lr=settings.lr,
                                                             betas=(0.5, 0.999))}
        self.train_groups = train.groups()
        if not self.train_groups:
            raise MethodError(f"no person in {train.source} has two different ages")
        # (N, 3, S, S) uint8 on the CPU (a quarter of float32's memory); batches are converted and moved
        self.images = (to_tensor(train.images) * 255.0).round().clamp(0, 255).to(torch.uint8)
        self.skin = torch.from_numpy(train.skin)[:, None]
        self.ages = torch.from_numpy(train.ages)
        self.val = val

    def _batch(self, rng: torch.Generator):
        s, B = self.s, self.s.batch
        g = torch.randint(len(self.train_groups), (B,), generator=rng)
        src, dst = [], []
        for k in g.tolist():
            idx = self.train_groups[k]
            pick = torch.randperm(len(idx), generator=rng)[:2].tolist()
            src.append(int(idx[pick[0]]))
            dst.append(int(idx[pick[1]]))
        S = self.images.shape[-1]
        oy, ox = torch.randint(S - s.crop + 1, (2,), generator=rng).tolist()
        flip = bool(torch.rand((), generator=rng) < 0.5)
        sl = (slice(None), slice(None), slice(oy, oy + s.crop), slice(ox, ox + s.crop))
        x, y, m = self.images[src][sl].float() / 255.0, self.images[dst][sl].float() / 255.0, self.skin[src][sl]
        if flip:
            x, y, m = x.flip(-1), y.flip(-1), m.flip(-1)
        d = self.device
        return x.to(d), y.to(d), m.to(d), self.ages[src].to(d), self.ages[dst].to(d)

    def train_step(self, step: int, rng: torch.Generator) -> dict[str, float]:
        s = self.s
        x, y, m, a_in, a_out = self._batch(rng)
        out = self.gen(age_input(x, m, a_in, a_out))
        tmap = m * (a_out.view(-1, 1, 1, 1) / 100.0)
        l1 = (out - y).abs().mean()
        perc = self.perc(out, y) if s.w_perceptual > 0 else out.new_zeros(())
        adv = lsgan_loss(self.disc(torch.cat([out, tmap], 1)), True) if s.w_adversarial > 0 else out.new_zeros(())
        loss = s.w_l1 * l1 + s.w_perceptual * perc + s.w_adversarial * adv
        og, od = self.optimizers["generator"], self.optimizers["discriminator"]
        og.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.gen.parameters(), 1.0)
        og.step()
        losses = {k: float(v.detach()) for k, v in
                  (("loss", loss), ("l1", l1), ("perceptual", perc), ("adversarial", adv))}
        if s.w_adversarial > 0:
            d_loss = 0.5 * (lsgan_loss(self.disc(torch.cat([y, tmap], 1)), True)
                            + lsgan_loss(self.disc(torch.cat([out.detach(), tmap], 1)), False))
            od.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(self.disc.parameters(), 1.0)
            od.step()
            losses["discriminator"] = float(d_loss.detach())
        return losses

    def _val_pairs(self):
        """Held-out de-ageing pairs: each validation person's oldest image -> youngest image."""
        xs, ys = [], []
        for idx in self.val.groups():
            xs.append(idx[-1])
            ys.append(idx[0])
        v = self.val
        return (to_tensor(v.images[xs], self.device), to_tensor(v.images[ys], self.device),
                torch.from_numpy(v.skin[xs])[:, None].to(self.device),
                torch.from_numpy(v.ages[xs]).to(self.device), torch.from_numpy(v.ages[ys]).to(self.device))

    def validate(self) -> dict[str, float]:
        x, y, m, a_in, a_out = self._val_pairs()
        out = self.gen(age_input(x, m, a_in, a_out)).clamp(0, 1)
        o, xi, yi = to_image(out), to_image(x), to_image(y)
        return {"val_l1": float(np.abs(o - yi).mean()), "val_l1_identity": float(np.abs(xi - yi).mean()),
                "val_psnr": psnr(o, yi), "val_psnr_identity": psnr(xi, yi)}

    def preview(self) -> np.ndarray:
        self.gen.eval()
        try:
            x, y, m, a_in, a_out = self._val_pairs()
            n = min(4, x.shape[0])
            out = self.gen(age_input(x[:n], m[:n], a_in[:n], a_out[:n])).clamp(0, 1)
            return tile([[a, b, c] for a, b, c in zip(to_image(x[:n]), to_image(out), to_image(y[:n]))])
        finally:
            self.gen.train()


def load_generator(path: Path, device: str = "cpu") -> tuple[FranUNet, dict]:
    """The trained U-Net from a checkpoint (eval mode) and the checkpoint's meta."""
    state = read_checkpoint(path)
    meta = dict(state.get("meta", {}))
    try:
        net = FranUNet(int(meta["width"]), int(meta["depth"]))
    except KeyError as exc:
        raise MethodError(f"checkpoint {path} has no FRAN network settings",
                          hint="train FRAN again with --fresh") from exc
    restore_checkpoint(state, modules={"generator": net}, optimizers=None, data_rng=None, path=path)
    return net.to(device).eval(), meta


def settings_meta(s: FranSettings, pairs: AgePairs) -> dict[str, Any]:
    return {"method": "fran", **asdict(s), "pairs_source": pairs.source}
