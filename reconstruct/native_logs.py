"""Third-party native log noise: MediaPipe's absl logging, TensorFlow Lite and OpenCV's DNN backend.

Native libraries write diagnostics that a user cannot act on straight to file descriptor 2::

    INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    W0000 00:00:1796496694.772213   25842 inference_feedback_manager.cc:114] Feedback manager requires a model ...
    [ WARN:0@7.029] global net_impl_backend.cpp:388 setPreferableTarget Targets are not supported by the new ...

* OpenCV's level is lowered at its source (``cv2.utils.logging``) by :func:`quiet_opencv`.
* MediaPipe 0.10.21's bundled absl and TensorFlow Lite have no run-time switch (``GLOG_minloglevel``,
  ``TF_CPP_MIN_LOG_LEVEL`` and ``ABSL_*`` variables are not read by that build: checked), so
  :func:`quiet_native_stderr` catches fd 2 while a native call runs, then writes back every line that is not such
  noise (nothing else written meanwhile, by any thread, is lost; it is only held until the call returns).

Both step aside when the caller's logger is enabled for DEBUG (``-vv``): the noise then shows as it is.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

# One native noise line: an absl INFO/WARNING record ("W0000 00:00:1796496694.772213   25842 file.cc:114] ..."),
# TensorFlow Lite's INFO lines, absl's pre-initialisation banner. Errors (E/F records) are kept.
NOISE = re.compile(rb"(?:[IW]\d{4} [\d:.]+ +\d+ [\w./+-]+:\d+\] "
                   rb"|INFO: Created TensorFlow Lite "
                   rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")

_lock = threading.Lock()
_state: dict = {"depth": 0, "saved": None, "capture": None}


@contextmanager
def quiet_opencv(logger: logging.Logger) -> Iterator[None]:
    """OpenCV's own log level at ERROR inside the block (unless ``logger`` is enabled for DEBUG)."""
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    from cv2.utils import logging as cvlog

    previous = cvlog.getLogLevel()
    cvlog.setLogLevel(cvlog.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cvlog.setLogLevel(previous)


@contextmanager
def quiet_native_stderr(logger: logging.Logger) -> Iterator[None]:
    """Drop native log noise (:data:`NOISE`) written to fd 2 inside the block; every other line written meanwhile
    is written back when the block ends. Nests and is thread-safe (fd 2 is caught once, by the outermost block).
    Does nothing when ``logger`` is enabled for DEBUG."""
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    _begin()
    try:
        yield
    finally:
        _end()


def _flush_python_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # no stderr, or a closed one
        pass


def _begin() -> None:
    with _lock:
        _state["depth"] += 1
        if _state["depth"] > 1:
            return
        _flush_python_stderr()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 to catch (a detached process): nothing to filter
            return
        capture = tempfile.TemporaryFile()
        os.dup2(capture.fileno(), 2)
        _state["saved"], _state["capture"] = saved, capture


def _end() -> None:
    with _lock:
        _state["depth"] -= 1
        if _state["depth"] or _state["saved"] is None:
            return
        _flush_python_stderr()
        saved, capture = _state["saved"], _state["capture"]
        _state["saved"] = _state["capture"] = None
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        data = capture.read()
        capture.close()
    kept = memoryview(b"".join(line for line in data.splitlines(keepends=True) if not NOISE.match(line)))
    while kept:
        kept = kept[os.write(2, kept):]
