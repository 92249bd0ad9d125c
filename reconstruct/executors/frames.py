"""Helpers for stages that send per-frame work through ``ctx.executor.map`` (age, render, composite, detect).

- :func:`frame_chunks` cuts the output frames into work items of a fixed size (``--option frames.chunk=N``,
  default 8). The size never depends on the executor or ``--jobs``, so a method that carries state from one frame
  to the next inside a chunk gives the same files in process, in ``--jobs`` processes and on Ray.
- :func:`worker_components` is the plugin registry inside a worker: the driver's own one when the work runs in
  the driver's process (or a forked child), else one built from the installed entry points (a Ray worker).
- Importing this module lets the standard pickle copy ``MappingProxyType`` (as Ray's cloudpickle does).
- :func:`save_npz` writes an ``.npz`` whose bytes depend only on the arrays (fixed zip timestamps), so that reruns
  and distributed runs give byte-identical files.
"""

from __future__ import annotations

import copyreg
import io
import types
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError

# Frozen records keep their mappings as read-only ``MappingProxyType`` views, which the standard pickle refuses;
# Ray's cloudpickle copies them. Do the same here so prepared methods and records reach ``--jobs`` processes.
copyreg.pickle(types.MappingProxyType, lambda m: (types.MappingProxyType, (dict(m),)))

DEFAULT_CHUNK = 8
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_COMPONENTS: dict[str, Any] = {}  # per process: the registry the driver registered, or one built from entry points


def chunk_size(options: Mapping[str, Any]) -> int:
    """Frames per work item from ``--option frames.chunk=N`` (default :data:`DEFAULT_CHUNK`)."""
    raw = options.get("frames.chunk", DEFAULT_CHUNK)
    try:
        n = int(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--option frames.chunk={raw!r} is not a whole number",
                          hint="e.g. --option frames.chunk=8") from exc
    if n < 1:
        raise ConfigError(f"--option frames.chunk={n}: must be at least 1", hint="e.g. --option frames.chunk=8")
    return n


def frame_chunks(frames: Sequence[int], size: int) -> list[tuple[int, ...]]:
    """Consecutive runs of ``size`` frames (the last one shorter), in order."""
    frames = list(frames)
    return [tuple(frames[i:i + size]) for i in range(0, len(frames), max(1, size))]


def register_components(components: Any) -> None:
    """Driver side: make ``components`` what :func:`worker_components` returns in this process (and in forked
    children)."""
    _COMPONENTS["registry"] = components


def worker_components() -> Any:
    """The plugin registry for work running in this process (see module docstring)."""
    if "registry" not in _COMPONENTS:
        from ..plugins import make_plugin_manager

        _COMPONENTS["registry"] = make_plugin_manager().components()
    return _COMPONENTS["registry"]


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` with fixed entry timestamps (byte-identical files for identical arrays), written
    atomically."""
    from ..session import atomic_path

    with atomic_path(Path(path), suffix=".npz") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key, val in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asanyarray(val), allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o600 << 16
                zf.writestr(info, buf.getvalue())


def use_threads(device: str) -> bool:
    """``threads=`` for ``executor.map``: on a CUDA device the local executor's ``--jobs`` workers are threads,
    because a forked child cannot use the CUDA context the driver opened (``prepare()``, renderers). Ray ignores it."""
    return str(device).startswith("cuda")


def single_thread_blas():
    """Context manager: BLAS/LAPACK on one thread (threadpoolctl, when installed). A large matrix product summed
    by a different number of threads rounds differently in the last bits; Ray workers run with one thread and the
    driver with many, so work whose float64 results are written out (the render stage's lighting fit) runs
    single-threaded everywhere to give the same numbers under every executor."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scipy's usual installs
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
