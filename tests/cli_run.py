"""Run the installed ``reconstruct`` command as a user would (a subprocess beside this Python), for end-to-end
tests; a failure shows the tail of its output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def reconstruct_cli(*args, cwd, timeout: float = 900) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("reconstruct")
    r = subprocess.run([str(exe), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"reconstruct {' '.join(map(str, args))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r
