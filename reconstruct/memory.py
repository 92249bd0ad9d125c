"""Freed memory kept for the next frame in a ``--jobs`` worker process (glibc's malloc thresholds).

Every worker of the per-frame stages calls :func:`keep_freed_memory` as it starts (the pool initializer of
:class:`reconstruct.executors.local.LocalExecutor`): detect, age, render, composite and the QC report all make and
free large arrays per frame; the composite also calls it itself (``--jobs 1``, Ray).

Every composited 1080p frame allocates and frees about 60 MB of large arrays and byte strings (the plate's 16-bit
and half-float copies, the PNG rows being filtered, the deflated files, the decoded frame). glibc serves each
block over its mmap threshold (128 KiB at first, rising to at most 32 MiB as blocks are freed) from fresh pages and
hands them back to the kernel when it is freed, and gives the top of the heap back once more than twice that is
free: the next frame touches new pages again, and the kernel zeroes every one of them. On the bench's 1080p take
that was 3,700-15,000 page faults and 20-60 ms of system time per frame, against 8-12 ms once the freed memory is
kept (docs/render-composite.md "Memory kept between frames"). :func:`keep_freed_memory` fixes the mmap threshold at
glibc's own upper bound (32 MiB: blocks up to that size come from the heap) and lets up to
:data:`TRIM_THRESHOLD` bytes of free heap stay with the process, so a worker's memory stays at the high-water mark
of one frame (bounded, independent of take length) instead of going back and forth. The kept free heap is 256 MiB,
not less: a digital_human age worker's plate edits (~110-150 MB of arrays a 1080p frame) left 137-154 MB free at the
heap's top at the end of each chunk of frames, which a 128 MiB threshold gave back, and the next chunk's first
frames faulted in again (transparent huge pages, zeroed by the kernel: 0.15-0.65 CPU-s of the stage's workers).
Only glibc has ``mallopt``; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: what its dynamic threshold can reach
TRIM_THRESHOLD = 256 << 20  # free heap a process may keep (an age worker's chunk of plate edits frees ~150 MB)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # malloc.h
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Set this process's malloc thresholds once (later calls do nothing); True when they are set (glibc)."""
    global _done
    if _done is None:
        _done = False
        try:
            mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols (not find_library: it runs ldconfig)
        except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): their allocators are left alone
            log.debug("no mallopt here: malloc thresholds left as they are")
            return False
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
