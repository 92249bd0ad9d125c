"""The benchmark suite: run every ``tools/bench_*.py`` on one synthetic session and print one table.

    ./dev bench                         all benchmarks (or: .venv/bin/python tools/bench.py)
    ./dev bench --only raycast,report   those whose name contains one of the words
    ./dev bench --markdown bench.md     also write the table + machine as Markdown (for the README)
    ./dev bench --list                  list the benchmark scripts

Convention (docs/benchmarks.md): a bench script has ``main(argv) -> list[dict]``; each dict is one row with keys
``stage, metric, value, baseline, ratio, notes`` (``baseline`` measured in the same run, ``ratio`` =
value / baseline, either may be None for accuracy rows that state their reference in ``notes``). ``argv`` holds
``--session PATH`` (a synthetic session this suite made; use it or ignore it) and ``--quick`` when asked for.
A script whose ``main`` takes no argument or returns no rows still runs: its printed output is shown under the
table as it is. Every script runs in its own process (a crash or a hang is reported, not fatal to the suite).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
MARK = "@@BENCH-ROWS@@"
KEYS = ("stage", "metric", "value", "baseline", "ratio", "notes")


def bench_scripts() -> list[Path]:
    return sorted(p for p in TOOLS.glob("bench_*.py") if p.is_file())


def script_timeout(script: Path, default: float) -> float:
    """The script's own limit (a module-level ``TIMEOUT_S = <seconds>`` line) when longer than ``default``."""
    import re

    m = re.search(r"^TIMEOUT_S\s*=\s*([0-9.]+)", script.read_text(), re.M)
    return max(default, float(m.group(1))) if m else default


def machine() -> str:
    """One line: CPU model and cores, RAM, GPU, Python, torch."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
        tv = f", torch {torch.__version__}"
    except Exception:
        tv = ""
    return f"{cpu} ({os.cpu_count()} logical CPUs{mem}), {gpu}, Python {platform.python_version()}{tv}, {platform.system()}"


def run_one(script: Path, argv: list[str]) -> None:
    """Child process: import the script, call its main, print the rows after MARK."""
    import importlib.util

    sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location(script.stem, script)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = mod
    spec.loader.exec_module(mod)
    main = getattr(mod, "main", None)
    if main is None:
        raise SystemExit(f"{script.name} has no main()")
    takes_args = len(inspect.signature(main).parameters) > 0
    if not takes_args:
        sys.argv = [str(script)]
    if takes_args:
        try:
            result = main(argv)
        except SystemExit as exc:  # an argparse that rejects --session/--quick: run it with its defaults
            if exc.code != 2 or not argv:
                raise
            print(f"[bench] {script.name} does not accept {' '.join(argv)}; running it with its defaults",
                  file=sys.stderr)
            result = main([])
    else:
        result = main()
    rows = result if isinstance(result, list) and all(isinstance(r, dict) for r in result) else None
    sys.stdout.flush()
    print(MARK + json.dumps(rows, default=float))


def _make_session(folder: Path, frames: int) -> Path:
    sys.path.insert(0, str(REPO))
    from reconstruct.demo import demo_rig_path
    from reconstruct.rig import load_rig
    from reconstruct.synth import SynthSpec, TimelineSpec, generate_session

    root = folder / "bench-session"
    spec = SynthSpec(frames=frames, seed=1, timeline=TimelineSpec(jitter_frac=0.2, drop_rate=0.05))
    generate_session(load_rig(demo_rig_path()), root, spec)
    return root


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:.4g}"
    return str(v)


def print_table(rows: list[dict], failures: list[tuple[str, str]], logs: list[tuple[str, str]], header: str) -> str:
    """Print and return the table as plain text."""
    cols = ("script",) + KEYS
    cells = [[r.get("script", "")] + [_fmt(r.get(k)) for k in KEYS] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    widths[-1] = min(widths[-1], 60)
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    out = [header, "", line, "-" * len(line)]
    for c in cells:
        out.append("  ".join(x.ljust(w) if i < len(cols) - 1 else x for i, (x, w) in enumerate(zip(c, widths))))
    for name, why in failures:
        out.append(f"FAILED {name}: {why}")
    for name, text in logs:
        out += ["", f"--- {name} (prints its own table; no rows returned, see docs/benchmarks.md) ---", text.rstrip()]
    text = "\n".join(out)
    print(text)
    return text


def markdown(rows: list[dict], header: str) -> str:
    out = [f"Measured {header}", "", "| stage | metric | value | baseline | ratio | notes |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(k)).replace("|", "/") for k in KEYS) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tools/bench.py", description=__doc__.split("\n\n")[0],
                                 epilog="see docs/benchmarks.md", formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated words: run scripts whose name contains one")
    ap.add_argument("--list", action="store_true", help="list benchmark scripts and exit")
    ap.add_argument("--frames", type=int, default=24, help="frames of the synthetic session (default 24)")
    ap.add_argument("--quick", action="store_true", help="ask scripts for a short run")
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds per script before it is stopped (default 900; a script's own TIMEOUT_S when longer)")
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--one"]:  # internal: child process mode, the script's argv passed through untouched
        run_one(Path(argv[1]), argv[2:])
        return 0
    args = ap.parse_args(argv)
    scripts = bench_scripts()
    if args.only:
        words = [w.strip() for w in args.only.split(",") if w.strip()]
        scripts = [s for s in scripts if any(w in s.stem for w in words)]
    if args.list:
        for s in scripts:
            print(s.relative_to(REPO))
        return 0
    import tempfile

    rows: list[dict] = []
    failures: list[tuple[str, str]] = []
    logs: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="deage-bench-") as tmp:
        session = _make_session(Path(tmp), args.frames)
        child_argv = ["--session", str(session)] + (["--quick"] if args.quick else [])
        for s in scripts:
            t0 = time.perf_counter()
            print(f"[bench] {s.name} ...", file=sys.stderr, flush=True)
            limit = script_timeout(s, args.timeout)
            try:
                proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", str(s), *child_argv],
                                      cwd=REPO, capture_output=True, text=True, timeout=limit)
            except subprocess.TimeoutExpired:
                failures.append((s.name, f"timed out after {limit:g} s"))
                continue
            dt = time.perf_counter() - t0
            marked = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
            printed = "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith(MARK))
            if proc.returncode != 0 or not marked:
                failures.append((s.name, f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}"))
                continue
            got = json.loads(marked[-1][len(MARK):])
            if got is None:
                logs.append((s.name, printed))
                rows.append({"script": s.stem, "stage": s.stem.removeprefix("bench_"), "metric": "see output below",
                             "notes": f"ran in {dt:.1f} s"})
                continue
            for r in got:
                rows.append({"script": s.stem, **{k: r.get(k) for k in KEYS}})
    header = f"on {machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    print_table(rows, failures, logs, "benchmarks " + header)
    if args.markdown:
        args.markdown.write_text(markdown(rows, header))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows, "failures": failures}, indent=2,
                                        default=float))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
