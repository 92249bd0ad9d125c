"""tools/bench.py: the row convention of bench scripts, legacy scripts that only print, and the merged table."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BENCH = REPO / "tools" / "bench.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_suite", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _child(script: Path, *argv: str) -> tuple[object, str]:
    proc = subprocess.run([sys.executable, str(BENCH), "--one", str(script), *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    mark = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@BENCH-ROWS@@")]
    return json.loads(mark[-1][len("@@BENCH-ROWS@@"):]), proc.stdout


def test_convention_script_rows_and_argv(tmp_path):
    script = tmp_path / "bench_fake.py"
    script.write_text(
        "def main(argv):\n"
        "    assert argv == ['--session', '/s', '--quick'], argv\n"
        "    return [{'stage': 'fake', 'metric': 'frames/s', 'value': 10.0, 'baseline': 5.0, 'ratio': 2.0,"
        " 'notes': 'n'}]\n")
    rows, _ = _child(script, "--session", "/s", "--quick")
    assert rows == [{"stage": "fake", "metric": "frames/s", "value": 10.0, "baseline": 5.0, "ratio": 2.0, "notes": "n"}]


def test_legacy_script_output_is_kept(tmp_path):
    script = tmp_path / "bench_old.py"
    script.write_text("import sys\ndef main():\n    assert sys.argv[1:] == []\n    print('old table 42 ms')\n    return 0\n")
    rows, out = _child(script, "--session", "/s")
    assert rows is None and "old table 42 ms" in out


def test_table_and_markdown(capsys):
    b = _load_bench()
    rows = [{"script": "bench_x", "stage": "x", "metric": "fps", "value": 12.3456, "baseline": 6.0, "ratio": 2.0576,
             "notes": "a|b"}]
    text = b.print_table(rows, [("bench_y.py", "exit 1: boom")], [("bench_z.py", "raw output")], "header")
    assert "12.35" in text and "FAILED bench_y.py: exit 1: boom" in text and "raw output" in text
    md = b.markdown(rows, "on test machine")
    assert "| x | fps | 12.35 | 6 | 2.058 | a/b |" in md and md.startswith("Measured on test machine")
    assert "logical CPUs" in b.machine()


def test_script_with_strict_argparse_runs_with_defaults(tmp_path):
    script = tmp_path / "bench_strict.py"
    script.write_text(
        "import argparse\n"
        "def main(argv=None):\n"
        "    ap = argparse.ArgumentParser(); ap.add_argument('--frames', type=int, default=3)\n"
        "    a = ap.parse_args(argv)\n"
        "    print('frames', a.frames)\n"
        "    return 0\n")
    rows, out = _child(script, "--session", "/s")
    assert rows is None and "frames 3" in out


def test_a_script_may_ask_for_a_longer_time_limit(tmp_path):
    b = _load_bench()
    long = tmp_path / "bench_long.py"
    long.write_text("TIMEOUT_S = 3600  # minutes of work\ndef main(argv):\n    return []\n")
    plain = tmp_path / "bench_plain.py"
    plain.write_text("def main(argv):\n    return []\n")
    assert b.script_timeout(long, 900) == 3600 and b.script_timeout(plain, 900) == 900
    assert b.script_timeout(long, 7200) == 7200  # never shorter than asked on the command line
    assert b.script_timeout(REPO / "tools" / "bench_e2e.py", 900) >= 3600


def test_e2e_helpers_io_floor_and_peak_memory(tmp_path):
    """The end-to-end benchmark's own parts on a tiny take: the I/O floor writes what the composite stage writes
    (a 16-bit PNG and an EXR per frame, with provenance) and the memory sampler sees a child's memory."""
    import numpy as np

    from tests.tiny_session import make_tiny_session

    sys.path.insert(0, str(REPO / "tools"))
    import bench_e2e

    from reconstruct.engine import run_pipeline
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.stage import RunConfig

    root = make_tiny_session(tmp_path / "take", frames=3)
    run_pipeline(RunConfig(session=root, only_stage="sync"), make_plugin_manager())
    out = tmp_path / "floor"
    assert bench_e2e._floor_chunk((str(root), str(out), (0, 1, 2))) == 3
    assert len(list((out / "hero").glob("*.png"))) == 3 and len(list((out / "hero").glob("*.exr"))) == 3
    from reconstruct.provenance import read_png_provenance

    assert read_png_provenance(out / "hero" / "000000.png").stage == "composite"
    assert bench_e2e.io_floor(root, tmp_path / "w", 1) > 0
    proc = subprocess.Popen([sys.executable, "-c", "import numpy as np, time; a = np.ones(60_000_000 // 8); "
                             "time.sleep(1.0)"])
    mem = bench_e2e.PeakMemory(proc.pid, every=0.05)
    proc.wait()
    assert mem.stop() > 50  # MiB: the child's 60 MB array


def test_bench_e2e_compiles_the_trees_it_times(tmp_path, monkeypatch):
    """Every package of a tree gets its bytecode before the timed runs, also where the environment says not to
    write any (``PYTHONDONTWRITEBYTECODE``): the runs then do not compile the tree's modules in every process."""
    sys.path.insert(0, str(REPO / "tools"))
    import bench_e2e

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    for pkg in ("reconstruct", "plugins"):
        (tmp_path / pkg / "sub").mkdir(parents=True)
        (tmp_path / pkg / "__init__.py").write_text("")
        (tmp_path / pkg / "sub" / "mod.py").write_text("X = 1\n")
    bench_e2e.compile_tree(tmp_path)
    for pkg in ("reconstruct", "plugins"):
        assert [p.name.split(".")[0] for p in (tmp_path / pkg / "__pycache__").glob("*.pyc")] == ["__init__"]
        assert [p.name.split(".")[0] for p in (tmp_path / pkg / "sub" / "__pycache__").glob("*.pyc")] == ["mod"]


def test_bench_e2e_samples_memory_only_in_runs_that_are_not_timed(tmp_path, monkeypatch):
    """A timed run has no memory sampler beside it (its reads of every process's ``smaps_rollup`` slowed a
    24-frame run by 1.9-3.3 s on 2 cores); a memory run has one and returns its peak."""
    sys.path.insert(0, str(REPO / "tools"))
    import bench_e2e

    started = []

    class Sampler:
        def __init__(self, pid, every=0.1):
            started.append(pid)

        def stop(self):
            return 123.0

    class Proc:
        pid, returncode = 4242, 0

        def __init__(self, cmd, **kw):
            assert cmd[1:4] == ["-m", "reconstruct.cli", "run"]

        def communicate(self):
            return "", ""

    monkeypatch.setattr(bench_e2e, "PeakMemory", Sampler)
    monkeypatch.setattr(bench_e2e, "model_cache", lambda src, work: work / "models")
    monkeypatch.setattr(bench_e2e, "compile_tree", lambda src: None)
    monkeypatch.setattr(bench_e2e.subprocess, "Popen", Proc)
    (tmp_path / "take").mkdir()
    timed = bench_e2e.run_pipeline(REPO, tmp_path / "take", tmp_path, "timed", "2")
    assert started == [] and timed["peak_mb"] is None
    sampled = bench_e2e.run_pipeline(REPO, tmp_path / "take", tmp_path, "mem", "2", memory=True)
    assert started == [4242] and sampled["peak_mb"] == 123.0


def test_bench_e2e_later_take_reuses_the_first_runs_calibration(tmp_path, monkeypatch):
    """Every run gets an empty calibration cache of its own, except a later take of the same rig session, which
    reads the one the named earlier run filled."""
    sys.path.insert(0, str(REPO / "tools"))
    import bench_e2e

    caches = []

    class Proc:
        pid, returncode = 4242, 0

        def __init__(self, cmd, env=None, **kw):
            caches.append(env["DEAGE_CALIBRATION_CACHE_DIR"])

        def communicate(self):
            return "", ""

    monkeypatch.setattr(bench_e2e, "model_cache", lambda src, work: work / "models")
    monkeypatch.setattr(bench_e2e, "compile_tree", lambda src: None)
    monkeypatch.setattr(bench_e2e.subprocess, "Popen", Proc)
    (tmp_path / "take").mkdir()
    (tmp_path / "new-0-calibration-cache").mkdir()
    (tmp_path / "new-0-calibration-cache" / "solved.json").write_text("{}")
    bench_e2e.run_pipeline(REPO, tmp_path / "take", tmp_path, "new-0", "2")
    assert not (tmp_path / "new-0-calibration-cache").exists()  # a cold run starts from an empty cache
    (tmp_path / "new-0-calibration-cache").mkdir()
    (tmp_path / "new-0-calibration-cache" / "solved.json").write_text("{}")
    bench_e2e.run_pipeline(REPO, tmp_path / "take", tmp_path, "later", "2", calibration_of="new-0")
    assert caches == [str(tmp_path / "new-0-calibration-cache")] * 2
    assert (tmp_path / "new-0-calibration-cache" / "solved.json").exists()  # the later take reads it as it is
