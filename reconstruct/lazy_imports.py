"""Start-up of processes that use open3d or MediaPipe for computing only: the plotting packages those two
libraries import at their top are loaded only if something touches them.

open3d's ``__init__`` imports ``open3d.visualization``, whose ``draw_plotly`` imports plotly and dash (0.25 of
open3d's 0.50 CPU-s); MediaPipe's ``solutions`` imports its drawing modules, which import matplotlib and
``matplotlib.pyplot`` (0.27 of MediaPipe's 0.37 CPU-s). A report worker needs open3d's ray casting and MediaPipe's
face mesh only, so :func:`defer_plotting_imports` makes those modules lazy (:class:`importlib.util.LazyLoader`: the
module object exists at once, its code runs at the first attribute access, so anything that does use them gets the
real module). Called at the start of the report's work items in the processes that run them, and by the fit
stage's overlay before it imports the ray-casting renderer (its forked workers of later stages inherit that); a
module already imported is left as it is.

:func:`extension_loads` answers "would this package's compiled extension import?" without importing the package:
the render stage's cache key asks whether open3d is usable on every run (0.55 CPU-s to import it, 0.04 to load its
extension with the dynamic loader). :func:`no_collection_at_exit` spares a process the interpreter's last garbage
collections at exit.
"""

from __future__ import annotations

import atexit
import gc
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading

#: modules imported at the top of open3d and MediaPipe for plotting, which the report's workers never call (MediaPipe's
#: drawing modules are the only ones that import matplotlib; ``matplotlib.pyplot`` for any other importer)
PLOTTING_MODULES = ("open3d.visualization", "mediapipe.python.solutions.drawing_styles",
                    "mediapipe.python.solutions.drawing_utils", "matplotlib.pyplot")

_LOCK = threading.Lock()


class _DeferFinder(importlib.abc.MetaPathFinder):
    """Finds each of ``names`` once, through the regular path finder, with its loader wrapped in a LazyLoader;
    leaves ``sys.meta_path`` when all are found."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path, target=None):
        with _LOCK:
            if fullname not in self.names:
                return None
            self.names.discard(fullname)
            if not self.names and self in sys.meta_path:
                sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # not a plain module file: import it the regular way
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def defer_plotting_imports(names: tuple[str, ...] = PLOTTING_MODULES) -> set[str]:
    """Make each of ``names`` not imported yet load lazily when it is imported (see the module docstring); returns
    the names deferred. Calling it again only adds names that are neither imported nor already deferred."""
    with _LOCK:
        pending = {n for f in sys.meta_path if isinstance(f, _DeferFinder) for n in f.names}
        todo = {n for n in names if n not in sys.modules and n not in pending}
        if todo:
            sys.meta_path.insert(0, _DeferFinder(set(todo)))
    return todo


def extension_loads(package: str, extension: str) -> bool | None:
    """Whether the compiled module ``package.extension`` (e.g. ``open3d``'s ``pybind``) loads in this process,
    decided without importing ``package``: False when the package is not installed or the dynamic loader refuses its
    extension file (a missing system library: the OSError its import would raise); True when it loads (the library
    stays mapped: a later import, here or in a forked worker, does not load it again). None where this cannot tell:
    the package is a single module, no such extension file is found beside its ``__init__``, or Windows (whose DLL
    folders the package's own ``__init__`` adds); ask the import then."""
    if sys.platform == "win32":
        return None
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    for folder in spec.submodule_search_locations or ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, extension + suffix)
            if os.path.isfile(path):
                import ctypes

                try:
                    ctypes.CDLL(path, mode=sys.getdlopenflags())  # the flags the import system dlopens with
                except OSError:
                    return False
                return True
    return None


_NO_COLLECTION_AT_EXIT: list[bool] = []


def no_collection_at_exit() -> None:
    """At this process's exit, freeze every object (:func:`gc.freeze`, an atexit handler) so that the interpreter's
    last garbage collections, after the atexit handlers, pass over them: with torch or MediaPipe, open3d and scipy
    loaded they cost 0.3-0.4 CPU-s and 0.4-0.9 s of wall a process (the driver of ``reconstruct run`` and the
    report's started workers, which the driver waits for). Everything else of the exit is unchanged: every atexit
    handler runs and the modules are torn down (objects they alone hold are finalized); only objects in reference
    cycles that are still alive at exit are not finalized, which CPython never promises anyway. Once per process."""
    if not _NO_COLLECTION_AT_EXIT:
        _NO_COLLECTION_AT_EXIT.append(True)
        atexit.register(gc.freeze)
