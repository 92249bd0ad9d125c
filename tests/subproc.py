"""Running a snippet of Python in a fresh interpreter, for tests about what a process imports or does at exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, *args: str, cwd: Path = ROOT, timeout: float = 300) -> str:
    """Run ``code`` with ``python -c`` (``args`` after it) in ``cwd``; its stdout. Fails the test, with the end of its
    stderr, when the process exits with an error."""
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout
