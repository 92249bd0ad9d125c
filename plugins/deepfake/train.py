"""Deepfake training: settings and the training task (shared encoder, ``now`` and ``young`` decoders)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from reconstruct.errors import MethodError
from reconstruct.training.checkpoint import read_checkpoint, restore_checkpoint
from reconstruct.training.images import psnr, tile, to_image, to_tensor
from reconstruct.training.losses import RandomFeaturePerceptual
from reconstruct.training.loop import settings_from_mapping

from .data import FaceCrops
from .merge import COLOUR_MODES
from .net import FaceSwapAE


@dataclass(frozen=True, slots=True)
class DeepfakeSettings:
    """Every deepfake setting (``--option deepfake.<name>=...`` in ``reconstruct run``; ``--<name>`` in ``train``).

    Attributes:
        size: aligned crop size in pixels (multiple of 16; 64 for tests, 256+ for production).
        coverage: template coverage (>1: more context around the face in the crop).
        width, latent: encoder/decoder first-level channels and bottleneck units.
        lr, batch, steps, seed: optimisation (batch = crops per identity per step).
        w_mask: weight of the learned mask's L1 to the landmark face mask.
        w_perceptual: weight of the random-feature perceptual loss (0 = off).
        warp: strength of random affine warps of the input (0 = off; 1 = +-10 deg, +-6 % scale and shift).
        holdout: crops per identity held out for validation.
        young: folder of young stills/footage (``--young-refs`` in ``reconstruct run``).
        every: use every n-th plate frame / video frame.
        colour: colour transfer at merge: none | mean-std | histogram.
        erode, blur: mask erosion and blur at merge, crop pixels.
        hull_margin: at merge the learned mask is limited to the convex hull of the 68 landmarks grown by this
            fraction of the inter-ocular distance, so the swap never paints outside the face (< 0: no limit).
    """

    size: int = 128
    coverage: float = 1.4
    width: int = 32
    latent: int = 256
    lr: float = 5e-4
    batch: int = 8
    steps: int = 20000
    seed: int = 0
    w_mask: float = 1.0
    w_perceptual: float = 0.1
    warp: float = 0.5
    holdout: int = 4
    young: str = ""
    every: int = 1
    colour: str = "mean-std"
    erode: float = 1.0
    blur: float = 2.0
    hull_margin: float = 0.25

    def check(self) -> "DeepfakeSettings":
        if self.size < 16 or self.size % 16:
            raise MethodError(f"deepfake size={self.size} must be a multiple of 16 (64 for tests, 256+ for production)")
        if self.colour not in COLOUR_MODES:
            raise MethodError(f"deepfake colour={self.colour!r}", hint=f"use one of {', '.join(COLOUR_MODES)}")
        if self.batch < 1 or self.steps < 0 or self.lr <= 0:
            raise MethodError("deepfake batch, steps and lr must be positive")
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "") -> "DeepfakeSettings":
        return settings_from_mapping(cls, values, prefix)

    def meta(self) -> dict[str, Any]:
        return {"method": "deepfake", **asdict(self)}


def random_affine(n: int, amount: float, rng: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) random similarity transforms for ``F.affine_grid`` (identity when amount = 0)."""
    r = torch.rand((n, 4), generator=rng) * 2 - 1
    ang = r[:, 0] * math.radians(10) * amount
    sc = 1 + r[:, 1] * 0.06 * amount
    c, s = torch.cos(ang) * sc, torch.sin(ang) * sc
    return torch.stack([torch.stack([c, -s, r[:, 2] * 0.06 * amount], 1),
                        torch.stack([s, c, r[:, 3] * 0.06 * amount], 1)], 1)


class DeepfakeTask:
    """The training problem (see :class:`reconstruct.training.loop.TrainTask`)."""

    def __init__(self, settings: DeepfakeSettings, now: FaceCrops, young: FaceCrops, device: str = "cpu",
                 val_now: FaceCrops | None = None, val_young: FaceCrops | None = None) -> None:
        self.s = settings
        self.device = device
        torch.manual_seed(settings.seed)
        self.model = FaceSwapAE(settings.size, settings.width, settings.latent).to(device)
        self.perc = RandomFeaturePerceptual().to(device) if settings.w_perceptual > 0 else None
        self.modules = {"model": self.model}
        self.optimizers = {"model": torch.optim.Adam(self.model.parameters(), lr=settings.lr, betas=(0.5, 0.999))}
        for c in (now, young):
            if c.images.shape[1] != settings.size:
                raise MethodError(f"crops of {c.source} are {c.images.shape[1]} px but size={settings.size}")
        self.data = {"now": (to_tensor(now.images), torch.from_numpy(now.masks)[:, None]),
                     "young": (to_tensor(young.images), torch.from_numpy(young.masks)[:, None])}
        self.val = {"now": val_now, "young": val_young}

    def _side_loss(self, which: str, rng: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.s
        imgs, masks = self.data[which]
        idx = torch.randint(imgs.shape[0], (s.batch,), generator=rng)
        y, m = imgs[idx], masks[idx]
        flip = torch.rand(s.batch, generator=rng) < 0.5
        y = torch.where(flip.view(-1, 1, 1, 1), y.flip(-1), y)
        m = torch.where(flip.view(-1, 1, 1, 1), m.flip(-1), m)
        theta = random_affine(s.batch, s.warp, rng)
        y, m = y.to(self.device), m.to(self.device)
        x = y
        if s.warp > 0:
            grid = F.affine_grid(theta.to(self.device), list(y.shape), align_corners=False)
            x = F.grid_sample(y, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        rgb, mask = self.model(x, which)
        rec = ((rgb - y).abs() * (0.25 + m)).mean() / 1.25
        mloss = (mask - m).abs().mean()
        perc = self.perc(rgb, y) if self.perc is not None else rgb.new_zeros(())
        loss = rec + s.w_mask * mloss + s.w_perceptual * perc
        return loss, {f"rec_{which}": float(rec.detach()), f"mask_{which}": float(mloss.detach())}

    def train_step(self, step: int, rng: torch.Generator) -> dict[str, float]:
        la, ia = self._side_loss("now", rng)
        lb, ib = self._side_loss("young", rng)
        loss = la + lb
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        opt.step()
        return {"loss": float(loss.detach()), **ia, **ib}

    def reconstruct(self, crops: FaceCrops, which: str) -> np.ndarray:
        out = []
        for i in range(0, len(crops), 32):
            rgb, _ = self.model(to_tensor(crops.images[i:i + 32], self.device), which)
            out.append(to_image(rgb))
        return np.concatenate(out)

    def validate(self) -> dict[str, float]:
        res = {}
        for which, crops in self.val.items():
            if crops is not None and len(crops):
                res[f"val_psnr_{which}"] = psnr(self.reconstruct(crops, which), crops.images)
        return res

    def preview(self) -> np.ndarray:
        self.model.eval()
        try:
            rows = []
            for which, other in (("now", "young"), ("young", "now")):
                crops = self.val[which]
                if crops is None or not len(crops):
                    imgs = to_image(self.data[which][0][:4])
                else:
                    imgs = crops.images[:4]
                t = to_tensor(imgs, self.device)
                rows += [[a, b, c] for a, b, c in zip(imgs, to_image(self.model(t, which)[0]),
                                                      to_image(self.model(t, other)[0]))]
            return tile(rows)
        finally:
            self.model.train()


def load_model(path: Path, device: str = "cpu") -> tuple[FaceSwapAE, dict]:
    state = read_checkpoint(path)
    meta = dict(state.get("meta", {}))
    try:
        net = FaceSwapAE(int(meta["size"]), int(meta["width"]), int(meta["latent"]))
    except KeyError as exc:
        raise MethodError(f"checkpoint {path} has no deepfake network settings",
                          hint="train the deepfake method again with --fresh") from exc
    restore_checkpoint(state, modules={"model": net}, optimizers=None, data_rng=None, path=path)
    return net.to(device).eval(), meta
