"""Helpers for stages that send per-frame work through ``ctx.executor.map`` (age, render, composite, detect).

- :func:`frame_chunks` cuts the output frames into work items of a fixed size (``--option frames.chunk=N``,
  default 4, :class:`FrameSettings`). The size never depends on the executor or ``--jobs``, so a method that
  carries state from one frame to the next inside a chunk gives the same files in process, in ``--jobs``
  processes and on Ray.
- Importing this module lets the standard pickle copy ``MappingProxyType`` (as Ray's cloudpickle does).
- :func:`save_npz` writes an ``.npz`` whose bytes depend only on the arrays (fixed zip timestamps), so that reruns
  and distributed runs give byte-identical files; ``compress=False`` stores the arrays as they are (for the
  per-frame intermediates the next stage reads once: zlib cost 0.14 s per 1080p frame and saved nothing worth it);
  it returns the file's sha256 and size, which the worker hands back for the session manifest.
"""

from __future__ import annotations

import copyreg
import io
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..options import option

# Frozen records keep their mappings as read-only ``MappingProxyType`` views, which the standard pickle refuses;
# Ray's cloudpickle copies them. Do the same here so prepared methods and records reach ``--jobs`` processes.
copyreg.pickle(types.MappingProxyType, lambda m: (types.MappingProxyType, (dict(m),)))

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class FrameSettings:
    """``--option frames.KEY=VALUE``: how per-frame stages cut their work."""

    # 4, not 8: a 24-frame take in chunks of 8 is 3 items for 2 workers, one core idle for a third of each
    # per-frame stage; a work item's own cost (the prepared method unpickled, a writer) is about 20 ms
    chunk: int = option(4, "output frames per work item of the per-frame stages (age, render, composite)")

    def __post_init__(self) -> None:
        if self.chunk < 1:
            raise ValueError(f"frames.chunk={self.chunk}: must be at least 1")


def frame_chunks(frames: Sequence[int], size: int) -> list[tuple[int, ...]]:
    """Consecutive runs of ``size`` frames (the last one shorter), in order."""
    frames = list(frames)
    return [tuple(frames[i:i + size]) for i in range(0, len(frames), max(1, size))]


def save_npz(path: Path, compress: bool = True, sync: bool = True, **arrays: np.ndarray) -> tuple[str, int]:
    """``np.savez_compressed`` (``compress=False``: ``np.savez``, stored) with fixed entry timestamps
    (byte-identical files for identical arrays), written atomically (``sync=False``: without fsync, for a file in a
    stage's temporary folder: :func:`reconstruct.session.atomic_path`). Returns ``(sha256 hex, size in bytes)`` of
    the file's bytes, hashed in memory as they are written (the session manifest's entry, without reading the file
    again: :func:`reconstruct.provenance.hand_over_digests`)."""
    import hashlib

    from ..session import atomic_path

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    whole = io.BytesIO()  # the zip is built in memory (zipfile rewrites each entry's header after its data)
    with zipfile.ZipFile(whole, "w", compression=method) as zf:
        for key, val in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(val), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.compress_type = method
            info.external_attr = 0o600 << 16
            zf.writestr(info, buf.getbuffer())
    data = whole.getbuffer()
    try:
        # atomic_path, not atomic_write_bytes: a folder that cannot be written raises OSError as it always did
        # (the face-model cache takes a read-only home as fine), not SessionError
        with atomic_path(Path(path), suffix=".npz", sync=sync) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data)
        return hashlib.sha256(data).hexdigest(), data.nbytes
    finally:
        data.release()


def use_threads(device: str) -> bool:
    """``threads=`` for ``executor.map``: on a CUDA device the local executor's ``--jobs`` workers are threads,
    because a forked child cannot use the CUDA context the driver opened (``prepare()``, renderers). Ray ignores it."""
    return str(device).startswith("cuda")


def single_thread_blas():
    """Context manager: BLAS/LAPACK on one thread (threadpoolctl). A large matrix product summed
    by a different number of threads rounds differently in the last bits; Ray workers run with one thread and the
    driver with many, so work whose float64 results are written out (the render stage's lighting fit) runs
    single-threaded everywhere to give the same numbers under every executor."""
    from threadpoolctl import threadpool_limits  # a declared dependency

    return threadpool_limits(limits=1, user_api="blas")
