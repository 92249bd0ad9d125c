"""The deepfake autoencoder: one shared encoder, two decoders (``now``: the actor today, ``young``: the actor
young), each decoding RGB plus a learned face mask (the classic "faceswap"/DeepFaceLab SAE layout, reduced).

Shapes: input (N, 3, S, S) RGB in [0, 1], S = ``size`` (a multiple of 16). The encoder halves the resolution
``levels`` times down to 4x4 (levels = log2(S / 4)), a dense bottleneck of ``latent`` units is shared, and each
decoder doubles back up to S. Outputs: (N, 3, S, S) RGB in [0, 1] and (N, 1, S, S) mask in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.1, inplace=True))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1),
                         nn.LeakyReLU(0.1, inplace=True))


def _chans(width: int, levels: int) -> list[int]:
    return [min(width * 2 ** i, width * 8) for i in range(levels + 1)]


class Encoder(nn.Module):
    def __init__(self, size: int, width: int, latent: int) -> None:
        super().__init__()
        if size % 16 or size < 16:
            raise ValueError(f"deepfake crop size {size} must be a multiple of 16")
        self.levels = int(math.log2(size // 4))
        ch = _chans(width, self.levels)
        self.convs = nn.Sequential(*[_down(3 if i == 0 else ch[i], ch[i + 1]) for i in range(self.levels)])
        self.flat = ch[-1] * 16
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(self.flat, latent), nn.Linear(latent, self.flat))
        self.out_channels = ch[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x * 2.0 - 1.0)  # (N, C, 4, 4)
        return self.dense(h).view(-1, self.out_channels, 4, 4)


class Decoder(nn.Module):
    def __init__(self, size: int, width: int) -> None:
        super().__init__()
        levels = int(math.log2(size // 4))
        ch = _chans(width, levels)
        self.ups = nn.Sequential(*[_up(ch[i + 1], ch[i]) for i in reversed(range(levels))])
        self.rgb = nn.Conv2d(ch[0], 3, 3, padding=1)
        self.mask = nn.Conv2d(ch[0], 1, 3, padding=1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.ups(z)
        return torch.sigmoid(self.rgb(h)), torch.sigmoid(self.mask(h))


class FaceSwapAE(nn.Module):
    """``forward(x, which)`` with ``which`` in {"now", "young"} -> (rgb, mask)."""

    def __init__(self, size: int = 64, width: int = 32, latent: int = 256) -> None:
        super().__init__()
        self.size = size
        self.encoder = Encoder(size, width, latent)
        self.decoders = nn.ModuleDict({"now": Decoder(size, width), "young": Decoder(size, width)})

    def forward(self, x: torch.Tensor, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] != self.size or x.shape[-2] != self.size:
            raise ValueError(f"deepfake input must be (N, 3, {self.size}, {self.size}), got {tuple(x.shape)}")
        return self.decoders[which](self.encoder(x))
