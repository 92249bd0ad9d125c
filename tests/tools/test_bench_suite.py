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
