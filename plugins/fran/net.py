"""FRAN's network: a U-Net on RGB + input-age map + target-age map (5 channels) predicting an RGB delta.

After Zoss et al., "Production-Ready Face Re-Aging for Visual Effects" (SIGGRAPH Asia 2022): the output is
``input + delta``; age maps are per-pixel ages / 100 on skin and 0 elsewhere. Down- and up-sampling are
anti-aliased (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again"): a [1, 2, 1] binomial blur before
every stride-2 subsampling and after every nearest-neighbour upsampling, so the output does not shimmer when the
face moves by sub-pixel amounts (temporal stability).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Blur(nn.Module):
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 blur with reflect padding."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :]) / 16.0
        self.register_buffer("kernel", k.expand(channels, 1, 3, 3).clone(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel, groups=self.channels)


class BlurDown(nn.Module):
    """Anti-aliased 2x downsampling: blur, then take every other pixel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.blur = Blur(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(x)[..., ::2, ::2]


class BlurUp(nn.Module):
    """Anti-aliased 2x upsampling: nearest-neighbour, then blur."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.blur = Blur(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))


class FranUNet(nn.Module):
    """U-Net. ``forward(x)``: (N, 5, H, W) = RGB [0, 1] + input-age + target-age maps (age/100) -> (N, 3, H, W)
    re-aged RGB (= input RGB + predicted delta; not clamped). H and W must be multiples of ``2**depth``.

    Args:
        width: channels of the first level (doubles per level, capped at 8x).
        depth: number of down/up sampling levels.
    """

    def __init__(self, width: int = 32, depth: int = 4) -> None:
        super().__init__()
        self.depth = depth
        chans = [min(width * 2 ** i, width * 8) for i in range(depth + 1)]
        self.inc = _block(5, chans[0])
        self.downs = nn.ModuleList(BlurDown(chans[i]) for i in range(depth))
        self.enc = nn.ModuleList(_block(chans[i], chans[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(BlurUp(chans[i + 1]) for i in range(depth))
        self.dec = nn.ModuleList(_block(chans[i + 1] + chans[i], chans[i]) for i in range(depth))
        self.out = nn.Conv2d(chans[0], 3, 1)
        nn.init.zeros_(self.out.weight)  # start as the identity (delta = 0): training improves on "do nothing"
        nn.init.zeros_(self.out.bias)

    @property
    def multiple(self) -> int:
        return 2 ** self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 5:
            raise ValueError(f"FRAN input must be (N, 5, H, W), got {tuple(x.shape)}")
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(f"FRAN input size {tuple(x.shape[-2:])} is not a multiple of {self.multiple}")
        skips = [self.inc(x)]  # (N, c0, H, W)
        h = skips[0]
        for down, enc in zip(self.downs, self.enc):
            h = enc(down(h))  # (N, c_{i+1}, H/2^{i+1}, W/2^{i+1})
            skips.append(h)
        for i in reversed(range(self.depth)):
            h = self.dec[i](torch.cat([self.ups[i](h), skips[i]], dim=1))
        return x[:, :3] + self.out(h)
