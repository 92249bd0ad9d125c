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
collections at exit, :func:`exit_after_handlers` the command's process its teardown of every module.
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
from typing import NoReturn

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


#: ``[(atexit handlers registered before this module's, logging imported by then)]`` once the handler is registered
_NO_COLLECTION_AT_EXIT: list[tuple[int, bool]] = []
#: the exit status :func:`exit_after_handlers` asked for (the command's process only)
_EXIT_CODE: list[int] = []


def no_collection_at_exit() -> None:
    """At this process's exit, freeze every object (:func:`gc.freeze`, an atexit handler) so that the interpreter's
    last garbage collections, after the atexit handlers, pass over them: with torch or MediaPipe, open3d and scipy
    loaded they cost 0.3-0.4 CPU-s and 0.4-0.9 s of wall a process (the driver of ``reconstruct run`` and the
    report's started workers, which the driver waits for). Everything else of the exit is unchanged: every atexit
    handler runs and the modules are torn down (objects they alone hold are finalized); only objects in reference
    cycles that are still alive at exit are not finalized, which CPython never promises anyway. Once per process.
    (:func:`exit_after_handlers` also skips the teardown, for the command's own process.)"""
    if not _NO_COLLECTION_AT_EXIT:
        count = getattr(atexit, "_ncallbacks", None)  # CPython's; elsewhere the exit stays the normal one
        _NO_COLLECTION_AT_EXIT.append((count() if count is not None else -1, "logging" in sys.modules))
        atexit.register(_at_exit)


def _only_logging_before() -> bool:
    """True when the atexit handlers registered before :func:`_at_exit` (which run after it) are at most
    logging's own (``logging.shutdown``, registered as :mod:`logging` is imported), which :func:`_at_exit` runs."""
    before, had_logging = _NO_COLLECTION_AT_EXIT[0]
    return before == 0 or (before == 1 and had_logging)


def _at_exit() -> None:
    gc.freeze()
    if not _EXIT_CODE or not _only_logging_before():
        return
    # every other atexit handler has run (they run last-registered first; the threads were joined before them):
    # what is left of a normal exit is logging's handler, the standard streams' flush and the interpreter's
    # teardown of every module, which only frees memory
    import logging

    logging.shutdown()
    code = _EXIT_CODE[-1]
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except OSError as exc:  # a reader gone, a full disk: what was written is cut short, as Python's own exit
            code = 120  # says with status 120 (Py_RunMain: "Py_FinalizeEx() < 0"), whatever the command returned
            try:
                os.write(2, f"reconstruct: could not write the last output to {stream.name}: {exc}\n".encode())
            except OSError:
                pass
    try:  # what native libraries printed through C's buffered stdio (exit() flushes it; _exit does not)
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library symbols to reach (not glibc/musl/macOS): nothing buffered there
        pass
    os._exit(code)


def exit_after_handlers(code: int | None) -> NoReturn:
    """End the command's process with exit status ``code`` (None: 0) like ``sys.exit``, but without the
    interpreter's teardown: the threads are joined and every atexit handler runs (logging's, multiprocessing's,
    the pools', torch's, ``weakref.finalize``'s) as in a normal exit, then the process ends (:func:`os._exit`)
    instead of tearing down every module object by object -- 0.15-0.2 s of wall after a ``reconstruct run`` that
    loaded torch, open3d and MediaPipe, about a quarter of a run's time outside its stages. Files are written and
    closed by the code that writes them (the stages' outputs atomically); only objects that nothing but a module
    still holds at exit are not finalized. Where an unknown atexit handler was registered before this module's (it
    would run after it), the exit is the normal one. For a process whose main program is the command only (the
    ``python -m reconstruct.cli`` entry), never for a library caller."""
    code = 0 if code is None else int(code)
    no_collection_at_exit()
    _EXIT_CODE.append(code)
    sys.exit(code)
