"""``--device auto|cpu|cuda`` resolution, in one place."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

from .errors import DeviceError

log = logging.getLogger(__name__)


def resolve_device(requested: str = "auto") -> str:
    """Return ``"cpu"`` or ``"cuda"`` for a ``--device`` value. ``auto`` picks CUDA when torch sees a GPU.

    Torch (1.3-1.7 s to import) is imported only where a GPU can exist: on Linux without the NVIDIA driver's
    ``libcuda.so.1`` (and without ROCm's ``/dev/kfd``) torch cannot see one, so the answer is ``cpu`` without it."""
    if requested not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"unknown device {requested!r}", hint="use --device auto, cpu or cuda")
    if requested == "cpu":
        return "cpu"
    has_cuda = gpu_driver_present() and _torch_sees_cuda()
    if requested == "cuda" and not has_cuda:
        raise DeviceError("--device cuda was requested but torch sees no CUDA GPU",
                          hint="use --device cpu (or auto), or install a CUDA build of torch on a GPU machine")
    return "cuda" if has_cuda else "cpu"


def gpu_driver_present() -> bool:
    """False only when no GPU driver is there for torch to use (Linux: ``libcuda.so.1`` does not load and there is
    no ``/dev/kfd``); True otherwise, and on other systems, where torch itself is asked."""
    if not sys.platform.startswith("linux") or os.path.exists("/dev/kfd"):
        return True
    try:
        ctypes.CDLL("libcuda.so.1")  # what torch's CUDA runtime loads; without it cudaGetDeviceCount finds none
    except OSError:
        log.debug("no libcuda.so.1: no CUDA GPU, torch not asked")
        return False
    return True


def _torch_sees_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception as exc:  # torch missing or broken CUDA runtime
        log.debug("torch CUDA probe failed: %s", exc)
        return False
