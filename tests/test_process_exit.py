"""The command's process ends after its atexit handlers, without the interpreter's teardown
(:func:`reconstruct.lazy_imports.exit_after_handlers`), and with the normal exit where that would skip a handler."""

from __future__ import annotations

import subprocess
import sys

from tests.subproc import ROOT

#: an object whose finalizer shows whether the interpreter's teardown ran; an atexit handler registered
#: after the command's (it runs before it); output without a newline, flushed only by the exit
_SCRIPT = """
import atexit, builtins, os, sys
{before}
from reconstruct.lazy_imports import exit_after_handlers, no_collection_at_exit

class Noisy:
    def __del__(self, write=os.write):  # the streams and the module's names may be gone by then
        write(1, b" finalized")

builtins.exit_probe = Noisy()  # freed by the teardown (gc.freeze or not), in no cycle
no_collection_at_exit()  # as run_cli does, before any plugin or stage registers handlers
atexit.register(lambda: sys.stdout.write(" late-handler"))
sys.stdout.write("buffered")
{exit}(3)
"""


def _run(before: str = "", exit: str = "exit_after_handlers", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _SCRIPT.format(before=before, exit=exit)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)


def test_exit_after_handlers_runs_the_handlers_and_skips_the_teardown():
    normal = _run(exit="sys.exit")  # the premise: a normal exit finalizes the module-held object
    assert normal.returncode == 3 and normal.stdout.split() == ["buffered", "late-handler", "finalized"]
    fast = _run()
    assert fast.returncode == 3, fast.stderr[-2000:]
    assert fast.stdout.split() == ["buffered", "late-handler"]  # flushed, handler run, no teardown


def test_an_earlier_unknown_handler_keeps_the_normal_exit():
    # registered before the command's handler, so it would run after it: the exit must not skip it
    r = _run(before="atexit.register(lambda: sys.stdout.write(' early-handler'))")
    assert r.returncode == 3, r.stderr[-2000:]
    assert r.stdout.split() == ["buffered", "late-handler", "early-handler", "finalized"]


def test_the_cli_entry_keeps_its_exit_status_and_messages(tmp_path):
    r = subprocess.run([sys.executable, "-m", "reconstruct.cli", "run", str(tmp_path / "missing")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "is not a folder" in r.stderr and "hint:" in r.stderr


def test_what_native_code_printed_is_flushed_too():
    """C's stdio buffers a pipe's output (``exit()`` flushes it, ``os._exit`` alone does not): what a native
    library printed still comes out of the fast exit (it flushes C's streams too)."""
    import os

    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # else C's stdout is unbuffered
    r = _run(before="import ctypes; ctypes.CDLL(None).printf(b'native ')", env=buffered)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "native" in r.stdout.split(), r.stdout


def test_the_console_script_ends_the_fast_way():
    """pyproject's ``reconstruct`` script is :func:`reconstruct.cli.console_main` (the same exit as ``-m``)."""
    import tomllib

    from reconstruct import cli

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["reconstruct"] == "reconstruct.cli:console_main" and callable(cli.console_main)


def test_output_that_cannot_be_written_ends_with_status_120_as_pythons_exit():
    """stdout's reader gone before the last output is flushed: Python's own exit says so with status 120; the fast
    exit must not report success (it said 0 before)."""
    import os

    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # "buffered" flushed at exit
    for exit in ("sys.exit", "exit_after_handlers"):
        script = _SCRIPT.format(before="", exit=exit).replace(
            'sys.stdout.write("buffered")', 'sys.stdout.write("buffered"); import time; time.sleep(0.5)')
        p = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=buffered)
        p.stdout.close()  # the reader is gone before the process writes anything
        _, err = p.communicate(timeout=120)
        assert p.returncode == 120, (exit, p.returncode, err[-2000:])
