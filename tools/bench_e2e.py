"""End to end on the production rig: `reconstruct run --method digital_human` on a synthetic take of
rigs/hero-2ir.toml (hero 1920x1080 + two IR witnesses 1280x1024), against the same run of the baseline code
(main before the speed work, issue 16) and against the I/O floor, all measured in this run.

Rows (docs/benchmarks.md): end-to-end frames/s and its ratio to the baseline's; end to end against the I/O floor
(reading every camera's frames and writing the hero plates as 16-bit PNG + half EXR with provenance, nothing else,
with the same number of processes); each stage's frames/s (new and baseline); render and composite seconds per
1080p frame; peak memory (PSS summed over the run's processes, sampled every 0.1 s) at 24 frames and 96 against
24 frames (new; the baseline's with ``--baseline-memory``); frames/s of the 72 extra frames (96 - 24: what a long
take adds per frame, the per-take work -- calibration, the method's preparation -- cancels).

Peak memory is measured in runs of their own, never in a timed one: reading every process's ``smaps_rollup`` ten
times a second costs CPU (the kernel walks each process's page tables; torch maps gigabytes of libraries), and on
the 2-core machine it slowed the 24-frame run it watched by 1.9-3.3 s (13.9 -> 15.8-17.3 s, 2026-12-06). The
memory rows' notes give the sampled run's wall next to the timed one's.

    python tools/bench_e2e.py                      # 24 frames with baseline, 96 frames for memory (~20-30 min)
    python tools/bench_e2e.py --quick              # 12 frames with baseline, no 96-frame run
    python tools/bench_e2e.py --no-baseline --frames 24
    python tools/bench_e2e.py --repeat 2           # new and baseline alternated twice, the faster of each kept
    python tools/bench_e2e.py --also-rev c69cb59   # and another revision once (before/after in the same run)

The new code runs cold (an empty ``$DEAGE_METHOD_CACHE_DIR``: the method fits the young stills in the run), then
once more warm (a second take of the same actor: the stills' fits from the first run's cache), and once as a later
take of the same rig session (the stills' fits and the rig's calibration from the first run's caches: a rig is
calibrated once a session, not once a take).

Each source tree runs with its own converted-face-model cache (``$DEAGE_CACHE_DIR``), filled before the timed
runs (:func:`model_cache`): the conversion is per install, not per take.

The baseline is ``git archive BASELINE_REV`` of this repository, unpacked in a temporary folder and run with its
own defaults (``--jobs 1``); the takes are synthesised once and kept under the system temp folder
(``--cache``), never written to (every run copies them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TIMEOUT_S = 3600  # the suite's per-script limit for this one (tools/bench.py reads it)
RIG = REPO / "rigs" / "hero-2ir.toml"
BASELINE_REV = "9fb2b8a"  # main when issue 16 was taken on: the same-run baseline
STAGES = ("sync", "calibrate", "detect", "fit", "age", "render", "composite", "report")


def _cli(args: list, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconstruct.cli", *map(str, args)], cwd=cwd, check=True,
                          capture_output=True, text=True, **kw)


def make_take(cache: Path, frames: int, seed: int = 0) -> Path:
    """A consented synthetic take of the rig with 3 young stills, made once per (frames, seed) in ``cache``."""
    take = cache / f"hero-2ir-{frames}f-s{seed}"
    if (take / ".complete").exists():
        return take
    shutil.rmtree(take, ignore_errors=True)
    shutil.rmtree(Path(str(take) + ".truth"), ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    print(f"[bench_e2e] synthesising {take} ...", file=sys.stderr, flush=True)
    _cli(["synth", RIG, take, "--frames", frames, "--seed", seed, "--young-stills", 3], REPO)
    _cli(["consent", "add", take, "--performer", "Synth", "--reference", "synthetic stills", "--granted-by", "Synth",
          "--date", "2026-11-25", "--scope", "digital_human"], REPO)
    (take / ".complete").write_text("ok\n")
    return take


def baseline_source(rev: str, work: Path) -> Path:
    """The baseline code, unpacked from git (plugins importable as ``deage_plugins`` as in a checkout)."""
    src = work / f"src-{rev}"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    (src / "deage_plugins").symlink_to("plugins")
    return src


def _pss_kb(pid: int) -> int:
    """Proportional set size of a process (shared pages split between their users), RSS where PSS is unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss // 1024)
    except Exception:  # noqa: BLE001 - the process ended between listing and reading
        return 0


class PeakMemory:
    """Samples the summed PSS of a process and all its descendants every ``every`` seconds (a thread)."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every, self.peak_kb = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                pids = [root.pid] + [c.pid for c in root.children(recursive=True)]
            except psutil.Error:
                break
            self.peak_kb = max(self.peak_kb, sum(_pss_kb(p) for p in pids))
            self._stop.wait(self.every)

    def stop(self) -> float:
        """Peak in MiB."""
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024.0


def model_cache(src: Path, work: Path) -> Path:
    """A converted-face-model cache (``$DEAGE_CACHE_DIR``) of ``src``'s own, filled before any timed run.

    The built-in ICT model is converted once per install (3-4 s) and kept under a key that includes the checkout's
    path (reconstruct/face/store.py); a new key deletes the older ones. Runs of two checkouts sharing one cache
    (this tree, the baseline's and --also-rev's unpacked trees) therefore evicted each other's entry and every
    timed run paid the conversion inside its fit stage: per-install work, not per-take, so it is done here,
    untimed, for each tree."""
    d = work / f"model-cache-{src.name}"
    code = "from reconstruct.face.store import load_builtin_ict; load_builtin_ict()"
    subprocess.run([sys.executable, "-c", code], cwd=src, check=True, capture_output=True,
                   env=dict(os.environ, DEAGE_CACHE_DIR=str(d)))
    return d


def compile_tree(src: Path) -> None:
    """Write the bytecode of ``src``'s packages (``__pycache__``), untimed, before its runs: an install has it, but
    with ``PYTHONDONTWRITEBYTECODE`` set (as on the project's machines) an unpacked or freshly merged tree never
    gets it, and every process of every timed run -- the driver, the report's started workers -- compiled ~200
    modules from source again: 0.2-0.4 s and 0.3-0.4 CPU-s of a whole run (cal12, docs/benchmarks.md)."""
    dirs = [str(src / d) for d in ("reconstruct", "plugins", "capture") if (src / d).is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *dirs], cwd=src, check=True, capture_output=True)


def run_pipeline(src: Path, take: Path, work: Path, label: str, jobs: str | None, method_cache: Path | None = None,
                 memory: bool = False, calibration_of: str | None = None) -> dict:
    """Run the whole pipeline of ``src``'s code on a copy of ``take``: wall seconds, per-stage seconds, and with
    ``memory`` the peak MiB (sampling costs CPU: a run that samples is not a timed run; without, ``peak_mb`` is None).
    ``method_cache``: the method's cache for every take (``$DEAGE_METHOD_CACHE_DIR``; an empty folder: cold). Every
    run solves its calibration (an empty ``$DEAGE_CALIBRATION_CACHE_DIR`` of its own: no take reuses another's) but
    one given ``calibration_of``: the label of an earlier run whose calibration cache it reuses. The
    converted face model comes from ``src``'s own warm cache (:func:`model_cache`)."""
    models = model_cache(src, work)
    compile_tree(src)
    copy = work / label
    shutil.copytree(take, copy)
    cmd = [sys.executable, "-m", "reconstruct.cli", "run", str(copy), "--method", "digital_human", "--young-refs",
           str(copy / "young-refs")] + (["--jobs", jobs] if jobs else [])
    print(f"[bench_e2e] {label}: {' '.join(cmd[3:])} (code: {src})", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    if calibration_of is None:  # empty: the run solves its calibration (no other take's)
        calib_cache = work / f"{label}-calibration-cache"
        shutil.rmtree(calib_cache, ignore_errors=True)
    else:  # a later take of the same rig session: the first run's solved calibration
        calib_cache = work / f"{calibration_of}-calibration-cache"
    env = dict(os.environ, DEAGE_CACHE_DIR=str(models), DEAGE_CALIBRATION_CACHE_DIR=str(calib_cache),
               **({"DEAGE_METHOD_CACHE_DIR": str(method_cache)} if method_cache else {}))
    proc = subprocess.Popen(cmd, cwd=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    mem = PeakMemory(proc.pid) if memory else None
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    peak = mem.stop() if mem is not None else None
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed (exit {proc.returncode}): {err.strip()[-800:]}")
    stages = {}
    for st in STAGES:
        p = copy / "out" / st / "_stage.json"
        if p.exists():
            stages[st] = float(json.loads(p.read_text()).get("seconds", float("nan")))
    shutil.rmtree(copy, ignore_errors=True)
    result = {"wall": wall, "stages": stages, "peak_mb": peak}
    print(f"[bench_e2e] {label}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def _floor_chunk(job: tuple) -> int:
    """Worker of :func:`io_floor`: read every camera's frame of each frame set, write the hero plate's files."""
    root, out, frames = job
    from reconstruct.composite import CompositeCrop
    from reconstruct.composite.outputs import PlateWriter
    from reconstruct.provenance import ProvenanceRecord
    from reconstruct.session import Session

    import numpy as np

    s = Session.open(root)
    rec = ProvenanceRecord(method="digital_human", stage="composite", plugins=(("deage", "bench"),),
                           settings={"floor": True}, inputs=(), tool_version="bench", created="bench",
                           session=s.meta.name)
    writer = PlateWriter(Path(out) / "hero", Path(out) / "stage", record=rec)
    hero = s.rig.hero.name
    empty3, empty = np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32)
    sync = {fs.frame: fs for fs in s.read_sync()}
    n = 0
    for f in frames:
        imgs = s.frame_images(sync[f], s.rig.camera_names)
        plate = imgs.get(hero)
        if plate is None:
            continue
        if plate.ndim == 2:
            plate = np.repeat(plate[..., None], 3, axis=2)
        writer.write_plate(f, CompositeCrop(plate, (0, 0), empty3, empty, empty3))
        n += 1
    return n


def io_floor(take: Path, work: Path, jobs: int) -> float:
    """Seconds to read every camera's frames of the take and write the hero plates (PNG 16-bit + half EXR, with
    the provenance record embedded), in ``jobs`` processes over chunks of 8 frames: what no run can go below."""
    from concurrent.futures import ProcessPoolExecutor

    from reconstruct.session import Session

    take_copy = work / "floor-take"  # frame sets need sync.csv: made first, not timed
    shutil.copytree(take, take_copy)
    _cli(["run", take_copy, "--only", "sync"], REPO)
    frames = [fs.frame for fs in Session.open(take_copy).read_sync()]
    out = work / "floor"
    chunks = [(str(take_copy), str(out), tuple(frames[i:i + 8])) for i in range(0, len(frames), 8)]
    t0 = time.perf_counter()
    if jobs <= 1:
        for c in chunks:
            _floor_chunk(c)
    else:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_floor_chunk, chunks))
    dt = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(take_copy, ignore_errors=True)
    print(f"[bench_e2e] I/O floor: {dt:.2f} s for {len(frames)} frames", file=sys.stderr, flush=True)
    return dt


def _row(stage, metric, value, baseline=None, notes="", higher_is_better=True) -> dict:
    ratio = None if baseline in (None, 0) or value is None else value / baseline
    return {"stage": stage, "metric": metric, "value": value, "baseline": baseline, "ratio": ratio, "notes": notes}


def main(argv: list[str] | None = None) -> list[dict]:
    from reconstruct.executors.local import available_cores

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--session", help="ignored (this benchmark synthesises takes of rigs/hero-2ir.toml)")
    ap.add_argument("--quick", action="store_true", help="12 frames, no 96-frame memory run")
    ap.add_argument("--frames", type=int, default=None, help="frames of the main take (default 24; quick 12)")
    ap.add_argument("--long", type=int, default=96, help="frames of the memory take (default 96; 0: none)")
    ap.add_argument("--baseline-rev", default=BASELINE_REV, help=f"git revision of the baseline (default "
                                                                   f"{BASELINE_REV})")
    ap.add_argument("--no-baseline", action="store_true", help="skip the baseline run")
    ap.add_argument("--baseline-memory", action="store_true",
                    help="also the baseline's peak memory at the main take's length (one more baseline run, sampled)")
    ap.add_argument("--also-rev", default=None,
                    help="another git revision run once on the same take (e.g. main before a change: before/after "
                         "in one run), --jobs as the new code's")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of the 24-frame take for the new and the baseline code, alternated; the faster of "
                         "each is kept (a shared machine's load comes and goes; default 1)")
    ap.add_argument("--jobs", default="auto", help="--jobs of the new code's run and the floor (default auto)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "deage-bench-e2e",
                    help="where the synthetic takes are kept between runs")
    args, _ = ap.parse_known_args(argv or [])
    frames = args.frames or (12 if args.quick else 24)
    long = 0 if args.quick else args.long
    jobs = available_cores() if args.jobs == "auto" else int(args.jobs)
    q = " (quick)" if args.quick else ""
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="deage-e2e-") as tmp:
        work = Path(tmp)
        take = make_take(args.cache, frames)
        floor = io_floor(take, work, jobs)
        news, bases = [], []
        src = None if args.no_baseline else baseline_source(args.baseline_rev, work)
        for r in range(max(1, args.repeat)):
            # cold: the method's cache for other takes is empty (the young stills are fitted in this run)
            news.append(run_pipeline(REPO, take, work, f"new-{r}", str(jobs), work / f"method-cache-{r}"))
            if src is not None:
                bases.append(run_pipeline(src, take, work, f"baseline-{r}", None))
            if r:
                floor = min(floor, io_floor(take, work, jobs))  # the floor as often: the best of each
        # the faster run's times
        new = min(news, key=lambda x: x["wall"])
        base = min(bases, key=lambda x: x["wall"]) if bases else None
        other = None
        if args.also_rev:
            other = run_pipeline(baseline_source(args.also_rev, work), take, work, f"rev-{args.also_rev}", str(jobs),
                                 work / "method-cache-rev")
        # warm: a second take of the same actor (the young stills' fits kept by the first run)
        warm = run_pipeline(REPO, take, work, "new-warm", str(jobs), work / "method-cache-0")
        # a later take of the same rig session: the rig's calibration solved by the first run too
        later = run_pipeline(REPO, take, work, "new-later", str(jobs), work / "method-cache-0", calibration_of="new-0")
        longrun = (run_pipeline(REPO, make_take(args.cache, long), work, "new-long", str(jobs), work / "method-cache-long")
                   if long else None)
        # peak memory: runs of their own (cold, as the timed ones), sampled
        mem = run_pipeline(REPO, take, work, "new-memory", str(jobs), work / "method-cache-memory", memory=True)
        base_mem = (run_pipeline(src, take, work, "baseline-memory", None, memory=True)
                    if src is not None and args.baseline_memory else None)
        long_mem = (run_pipeline(REPO, make_take(args.cache, long), work, "new-long-memory", str(jobs),
                                 work / "method-cache-long-memory", memory=True) if long else None)
    n = frames
    fps, bfps = n / new["wall"], (n / base["wall"] if base else None)
    rep = f"; faster of {len(news)} alternated runs each (walls new {[round(x['wall'], 1) for x in news]}, baseline " \
          f"{[round(x['wall'], 1) for x in bases]})" if len(news) > 1 else ""
    bnote = (f"baseline: {args.baseline_rev} (--jobs 1, its default), same take, same run" if base else
             "no baseline") + rep
    rows.append(_row("e2e", f"frames/s end to end, hero-2ir {n} frames{q}", fps, bfps,
                     f"{bnote}; new: --jobs {jobs}; wall {new['wall']:.1f} s vs {base['wall']:.1f} s" if base else
                     f"--jobs {jobs}; wall {new['wall']:.1f} s"))
    rows.append(_row("e2e", f"frames/s end to end, second take of the same actor{q}", n / warm["wall"], bfps,
                     f"the young stills' fits from the first run's cache; wall {warm['wall']:.1f} s, age "
                     f"{warm['stages'].get('age', float('nan')):.2f} s (cold {new['stages'].get('age', float('nan')):.2f} s)"))
    rows.append(_row("e2e", f"frames/s end to end, a later take of the same rig session{q}", n / later["wall"], bfps,
                     f"the rig's calibration and the young stills' fits from the first run's caches; wall "
                     f"{later['wall']:.1f} s, calibrate {later['stages'].get('calibrate', float('nan')):.2f} s (cold "
                     f"{new['stages'].get('calibrate', float('nan')):.2f} s)"))
    if other:
        rows.append(_row("e2e", f"frames/s end to end, {args.also_rev}{q}", n / other["wall"], bfps,
                         f"--jobs {jobs}; wall {other['wall']:.1f} s, {other['wall'] / floor:.1f}x the floor; per-stage "
                         + ", ".join(f"{k} {v:.1f}" for k, v in other["stages"].items())))
    rows.append(_row("e2e", f"seconds end to end vs I/O floor{q}", new["wall"], floor,
                     f"floor: read all 3 cameras' frames + write hero PNG16+EXR with provenance, {jobs} processes, "
                     f"{n / floor:.2f} frames/s"))
    for st in STAGES:
        v = new["stages"].get(st)
        b = base["stages"].get(st) if base else None
        if v is None:
            continue
        rows.append(_row(st, f"frames/s{q}", n / v if v > 0 else None, (n / b if b else None),
                         f"{v:.2f} s vs {b:.2f} s" if b else f"{v:.2f} s"))
    for st in ("render", "composite"):
        v = new["stages"].get(st)
        b = base["stages"].get(st) if base else None
        if v is not None:
            rows.append(_row(st, f"s/frame at 1080p{q}", v / n, b / n if b else None, "bar: <= 0.1 s/frame"))
    rows.append(_row("e2e", f"peak memory MiB, {n} frames{q}", mem["peak_mb"], base_mem["peak_mb"] if base_mem else None,
                     f"PSS summed over the run's processes, sampled every 0.1 s in a run of its own (wall "
                     f"{mem['wall']:.1f} s sampled vs {new['wall']:.1f} s timed)"
                     + ("; baseline column: the baseline code" if base_mem else "")))
    if long_mem:
        rows.append(_row("e2e", f"peak memory MiB, {long} vs {n} frames", long_mem["peak_mb"], mem["peak_mb"],
                         "bar: does not grow with take length (ratio ~1)"))
    if longrun:
        extra = (long - n) / max(longrun["wall"] - new["wall"], 1e-9)
        rows.append(_row("e2e", f"frames/s of the {long - n} extra frames ({long} vs {n})", extra, None,
                         f"wall {longrun['wall']:.1f} s vs {new['wall']:.1f} s: per-take work cancels; per-stage "
                         + ", ".join(f"{k} {v:.1f}" for k, v in longrun["stages"].items())))
    return rows


if __name__ == "__main__":
    for r in main(sys.argv[1:]):
        print(r)
