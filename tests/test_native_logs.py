"""Native log noise (absl, TensorFlow Lite, OpenCV) is dropped by default and shown at DEBUG (``-vv``); every other
line written meanwhile reaches the user."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from reconstruct.native_logs import quiet_native_stderr

NOISE_LINES = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
               b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
               b"W0000 00:00:1796496694.772213   25842 inference_feedback_manager.cc:114] Feedback manager requires "
               b"a model with a single signature inference. Disabling support for feedback tensors.\n")
NOISE = ("setPreferableTarget", "inference_feedback_manager", "absl::InitializeLog", "TensorFlow Lite",
         "landmark_projection_calculator")


def test_noise_is_dropped_and_everything_else_kept(capfd):
    log = logging.getLogger("test.native_logs.quiet")
    log.setLevel(logging.WARNING)
    with quiet_native_stderr(log):
        os.write(2, NOISE_LINES)
        with quiet_native_stderr(log):  # nested (a detector inside a detector's call): caught once
            os.write(2, b"E0000 00:00:1.0 1 graph.cc:1] a native error stays\n")
        print("a Python line stays", file=sys.stderr, flush=True)
    err = capfd.readouterr().err
    assert "a native error stays" in err and "a Python line stays" in err
    assert not [n for n in NOISE if n in err], err


def test_debug_shows_the_noise(capfd):
    log = logging.getLogger("test.native_logs.debug")
    log.setLevel(logging.DEBUG)
    with quiet_native_stderr(log):
        os.write(2, NOISE_LINES)
    assert capfd.readouterr().err.encode() == NOISE_LINES


DETECT = """
import logging, sys
import numpy as np
if sys.argv[1] == "debug":
    logging.basicConfig(level=logging.DEBUG)
from deage_plugins.landmarks import MediaPipeFaceMesh
d = MediaPipeFaceMesh()  # YuNet (OpenCV DNN) + MediaPipe (TensorFlow Lite, absl)
d.detect(np.full((240, 320, 3), 128, np.uint8))
d.close()
print("ok")
"""


def test_mediapipe_and_yunet_are_quiet_unless_debug(repo_root):
    """The real libraries: silent by default; at DEBUG their lines show (so the quiet run proves something)."""
    def run(level):
        r = subprocess.run([sys.executable, "-c", DETECT, level], cwd=repo_root, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]
        return r.stderr

    quiet, loud = run("default"), run("debug")
    assert not [n for n in NOISE if n in quiet], quiet
    assert "setPreferableTarget" in loud and "TensorFlow Lite" in loud, loud
