"""Losses shared by the learned methods: a perceptual loss that needs no downloaded weights, and a PatchGAN.

Perceptual loss (:class:`RandomFeaturePerceptual`). We may not download VGG weights, so the "perceptual"
term compares images in the feature space of a *fixed, randomly initialised* 3-level conv net (seeded, never
trained, ReLU + average pooling), plus L1 of image gradients at three scales. Random conv features are known to
carry much of the structure that makes deep-feature losses useful (Ulyanov et al., "Deep Image Prior", 2018;
Gatys-style texture statistics with random filters, He et al. 2016 "A Powerful Generative Model Using Random
Weights"), but they are *not* equivalent to a trained VGG/LPIPS: they emphasise edges and local texture (which is
what wrinkles are) and know nothing about faces. The gradient term makes fine lines count even where their L1
contribution is tiny.

Adversarial loss: a conditional PatchGAN discriminator (Isola et al. 2017, "pix2pix") with least-squares
targets (Mao et al. 2017), judging 16x16-ish patches.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences of (N, C, H, W) along x and y."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


class RandomFeaturePerceptual(nn.Module):
    """Perceptual distance from a fixed random conv net + multi-scale gradients (see the module docstring).

    ``forward(a, b)``: (N, 3, H, W) images in [0, 1] -> scalar loss. Weights are frozen and seeded by ``seed``,
    so the loss is the same function in every run and every process.
    """

    def __init__(self, seed: int = 1234, widths: tuple[int, ...] = (16, 32, 64), scales: int = 3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        layers = []
        cin = 3
        for w in widths:
            conv = nn.Conv2d(cin, w, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / (cin * 9)) ** 0.5)
                conv.bias.zero_()
            conv.weight.requires_grad_(False)
            conv.bias.requires_grad_(False)
            layers.append(conv)
            cin = w
        self.convs = nn.ModuleList(layers)
        self.scales = scales

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = x * 2.0 - 1.0
        for i, conv in enumerate(self.convs):
            h = F.relu(conv(h))
            out.append(h)
            if i < len(self.convs) - 1:
                h = F.avg_pool2d(h, 2)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        loss = a.new_zeros(())
        for fa, fb in zip(self.features(a), self.features(b)):
            loss = loss + (fa - fb).abs().mean()
        xa, xb = a, b
        for _ in range(self.scales):
            for ga, gb in zip(image_gradients(xa), image_gradients(xb)):
                loss = loss + (ga - gb).abs().mean()
            if min(xa.shape[-2:]) < 8:
                break
            xa, xb = F.avg_pool2d(xa, 2), F.avg_pool2d(xb, 2)
        return loss


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: (N, C_in, H, W) -> (N, 1, H/8, W/8) realness scores (least-squares targets)."""

    def __init__(self, in_channels: int, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c = in_channels
        for i in range(layers):
            w = width * 2 ** i
            mods += [nn.Conv2d(c, w, 4, stride=2, padding=1)]
            if i > 0:
                mods += [nn.InstanceNorm2d(w, affine=True)]
            mods += [nn.LeakyReLU(0.2, inplace=True)]
            c = w
        mods += [nn.Conv2d(c, 1, 3, padding=1)]
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    return ((scores - (1.0 if real else 0.0)) ** 2).mean()
