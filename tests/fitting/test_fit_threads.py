"""The fit stage's thread limit reaches the BLAS libraries the fit loads lazily (OpenCV's and scipy.linalg's own
OpenBLAS copies): threadpoolctl limits only the libraries loaded when the limit is set."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from deage_plugins.fit_stage import limited_threads
from threadpoolctl import threadpool_info
with limited_threads(1):
    import cv2, scipy.linalg  # what the fit imports inside the block
    print(json.dumps({i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}))
"""


def test_blas_loaded_by_the_fit_runs_on_the_limited_threads():
    # a fresh interpreter (this one has long loaded them); 4 threads by default, whatever the machine's cores
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "4"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT)], capture_output=True, text=True, env=env,
                         check=True, cwd=ROOT).stdout
    threads = json.loads(out.strip().splitlines()[-1])
    assert any("scipy_openblas-" in p for p in threads), threads  # scipy.linalg's own copy is among them
    assert set(threads.values()) == {1}, threads
