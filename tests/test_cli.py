"""The reconstruct CLI: help that teaches, exit codes scripts can use, clear errors."""

from __future__ import annotations

import subprocess
import sys

from reconstruct.cli import main


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconstruct.cli", *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"}, **kw)


def test_help_lists_commands_with_examples():
    r = run_cli("--help")
    assert r.returncode == 0
    for word in ("run", "plugins", "demo", "examples:"):
        assert word in r.stdout
    r = run_cli("run", "--help")
    assert r.returncode == 0 and "--from" in r.stdout and "--only" in r.stdout and "--device" in r.stdout


def test_not_a_session_exits_3_with_a_hint(tmp_path):
    r = run_cli("run", str(tmp_path))
    assert r.returncode == 3
    assert "not a session" in r.stderr and "capture record" in r.stderr


def test_unknown_method_exits_4_and_lists_methods(tmp_path, repo_root):
    from tests.test_engine import make_session

    s = make_session(tmp_path / "s", repo_root)
    assert main(["run", str(s), "--method", "no_such_method", "--device", "cpu"]) == 4


def test_bad_option_and_device(tmp_path, repo_root):
    from tests.test_engine import make_session

    s = make_session(tmp_path / "s", repo_root)
    assert main(["run", str(s), "--option", "novalue"]) == 2
    assert main(["run", str(s), "--jobs", "0"]) == 2
    import torch

    if not torch.cuda.is_available():
        assert main(["run", str(s), "--device", "cuda"]) == 2


def test_no_command_prints_help_and_exits_2():
    r = run_cli()
    assert r.returncode == 2 and "COMMAND" in r.stdout


def test_errors_print_on_one_line_on_a_narrow_terminal(tmp_path):
    """A 40-column terminal (or CI's 80) must not wrap an error into several lines (before: rich wrapped it)."""
    missing = tmp_path / ("a-session-folder-with-a-long-name-" * 3)
    r = subprocess.run([sys.executable, "-m", "reconstruct.cli", "run", str(missing)], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "COLUMNS": "40"})
    assert r.returncode == 3
    lines = r.stderr.splitlines()
    assert [line for line in lines if "ERROR" in line and f"{missing} is not a folder" in line], r.stderr
    assert [line for line in lines if "ERROR" in line and "hint: pass a session folder made by `capture record`" in
            line], r.stderr
    assert len(lines) == 2, r.stderr  # the error and its hint


def test_jobs_defaults_to_the_cores_and_takes_auto_or_a_number(tmp_path, monkeypatch):
    """Per-frame stages keep every core busy by default (``--jobs auto``); a number still works."""
    import argparse

    from reconstruct.commands import run as run_cmd
    from reconstruct.errors import ConfigError

    monkeypatch.setattr(run_cmd, "available_cores", lambda: 6)
    p = argparse.ArgumentParser()
    run_cmd.add_parser(p.add_subparsers())
    assert p.parse_args(["run", "s"]).jobs == 6
    assert p.parse_args(["run", "s", "--jobs", "auto"]).jobs == 6
    assert p.parse_args(["run", "s", "--jobs", "3"]).jobs == 3
    for bad in ("0", "two"):
        try:
            p.parse_args(["run", "s", "--jobs", bad])
        except ConfigError as exc:
            assert "--jobs" in str(exc) and "auto" in (exc.hint or "")
        else:
            raise AssertionError(f"--jobs {bad} was accepted")


def test_the_command_process_skips_the_last_garbage_collections_at_exit(repo_root):
    # before (main e919757) the driver ran the interpreter's last collections at exit (0.3-0.4 CPU-s with torch or
    # open3d loaded) -> "collected" printed by the cycle's finalizer after the command's own output
    from tests.subproc import run_python

    code = ("import gc, sys\n"
            "class Cycle:\n"
            "    def __init__(self): self.me = self\n"
            "    def __del__(self): print('collected', flush=True)\n"
            "from reconstruct.cli import main\n"
            "rc = main(['plugins'])\n"
            "gc.disable(); Cycle()\n"
            "print('returned', rc, flush=True)\n")
    assert run_python(code, cwd=repo_root).split()[-2:] == ["returned", "0"]
