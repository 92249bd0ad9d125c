"""``--device auto|cpu|cuda`` resolution, in one place."""

from __future__ import annotations

import logging

from .errors import DeviceError

log = logging.getLogger(__name__)


def resolve_device(requested: str = "auto") -> str:
    """Return ``"cpu"`` or ``"cuda"`` for a ``--device`` value. ``auto`` picks CUDA when torch sees a GPU."""
    if requested not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"unknown device {requested!r}", hint="use --device auto, cpu or cuda")
    if requested == "cpu":
        return "cpu"
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception as exc:  # torch missing or broken CUDA runtime
        log.debug("torch CUDA probe failed: %s", exc)
        has_cuda = False
    if requested == "cuda" and not has_cuda:
        raise DeviceError("--device cuda was requested but torch sees no CUDA GPU",
                          hint="use --device cpu (or auto), or install a CUDA build of torch on a GPU machine")
    return "cuda" if has_cuda else "cpu"
