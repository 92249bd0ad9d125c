"""The core works without the optional Ray extra, and asking for Ray without it says what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO

BLOCK_RAY = """
import sys, importlib.abc
class _NoRay(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("ray is blocked for this test")
sys.meta_path.insert(0, _NoRay())
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_RAY + textwrap.dedent(code)], cwd=REPO, capture_output=True,
                          text=True, timeout=180)


def test_core_imports_and_runs_without_ray(tmp_path):
    proc = _run(f"""
        import sys
        import reconstruct, reconstruct.engine, reconstruct.cli, reconstruct.provenance, reconstruct.report.sections
        import reconstruct.executors, reconstruct.executors.ray_executor   # importing the module must not import ray
        import deage_plugins.sync_stage, deage_plugins.report_stage
        from reconstruct.engine import run_pipeline
        from reconstruct.executors.local import make_executor
        from reconstruct.stage import RunConfig
        from reconstruct.errors import ConfigError
        from reconstruct.plugins import make_plugin_manager

        from tests.tiny_session import make_tiny_session
        root = make_tiny_session({str(tmp_path / 'shot')!r}, frames=3)
        host = make_plugin_manager(load_entry_points=False,
                                   extra_plugins=[("sync", deage_plugins.sync_stage), ("report", deage_plugins.report_stage)])
        names = [r.name for r in run_pipeline(RunConfig(session=root), host)]
        assert names == ["sync", "report"], names
        try:
            make_executor(RunConfig(session=root, executor="ray"))
        except ConfigError as exc:
            assert "pip install 'deage[ray]'" in exc.hint, exc.hint
        else:
            raise SystemExit("expected ConfigError for --executor ray without ray")
        assert not [m for m in sys.modules if m == "ray" or m.startswith("ray.")], "ray was imported"
        print("OK")
    """)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-3000:]


def test_cli_help_without_ray():
    proc = _run("""
        import sys
        from reconstruct.cli import main
        try:
            main(["run", "--help"])
        except SystemExit as e:
            assert e.code == 0
        assert "ray" not in sys.modules
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--executor {local,ray}" in proc.stdout and "--address ADDR" in proc.stdout


def test_executor_choice_errors(tmp_path):
    import pytest

    from reconstruct.executors.local import LocalExecutor, make_executor

    from reconstruct.stage import RunConfig
    from reconstruct.errors import ConfigError

    assert isinstance(make_executor(RunConfig(session=tmp_path, jobs=3)), LocalExecutor)
    with pytest.raises(ConfigError, match="--address needs a distributed executor"):
        make_executor(RunConfig(session=tmp_path, address="auto"))
    with pytest.raises(ConfigError, match="unknown; choose one of local, ray"):
        make_executor(RunConfig(session=tmp_path, executor="slurm"))
