"""QC report: build speed and how well the artist flags find planted defects.

On a copy of the suite's synthetic session (or a fresh one), fake composites are written in the composite stage's
format: every frame gets a feathered face patch 12 grey levels brighter; a seeded random eighth of the frames get
a hard-edged paste instead (a seam), another few a patch that pops 25 levels for one frame (flicker). Rows: report
frames/s against the in-run baseline of only reading the plates and composites; recall and false positives of
the seams and flicker flags. Follows docs/benchmarks.md (``main(argv) -> rows``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def plant_composites(root: Path, hard: set[int], pops: set[int]) -> list[int]:
    import cv2

    from reconstruct.session import Session

    s = Session.open(root)
    hero = s.rig.hero.name
    recs = {r.index: r for r in s.frames(hero)}
    w, h = s.rig.hero.resolution
    yy, xx = np.mgrid[0:h, 0:w]
    hard_a = (((xx - w / 2) / (w / 7)) ** 2 + ((yy - h / 2) / (h / 4)) ** 2 < 1).astype(np.float32)
    soft_a = cv2.GaussianBlur(hard_a, (0, 0), 6.0)
    plates, patches = root / "out" / "plates" / "hero", root / "out" / "plates" / "patches"
    plates.mkdir(parents=True, exist_ok=True)
    patches.mkdir(parents=True, exist_ok=True)
    done = []
    for fs in s.read_sync():
        idx = fs.indices.get(hero)
        if idx is None or recs[idx].status != "ok":
            continue
        plate = s.read_image(hero, recs[idx]).astype(np.float32)
        plate = plate if plate.ndim == 3 else np.repeat(plate[..., None], 3, axis=2)
        a = hard_a if fs.frame in hard else soft_a
        comp = np.clip(plate + (25.0 if fs.frame in pops else 12.0) * a[..., None], 0, 255)
        cv2.imwrite(str(plates / f"{fs.frame:06d}.png"), cv2.cvtColor(np.round(comp * 257).astype(np.uint16),
                                                                      cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(patches / f"{fs.frame:06d}_mask.png"), np.round(a * 65535).astype(np.uint16))
        (patches / f"{fs.frame:06d}.json").write_text(json.dumps({"offset_px": [0, 0], "plate_size": [w, h]}))
        done.append(fs.frame)
    return done


def main(argv: list[str] | None = None) -> list[dict]:
    import deage_plugins.report_stage
    import deage_plugins.sync_stage
    from reconstruct.demo import demo_rig_path
    from reconstruct.engine import run_pipeline
    from reconstruct.stage import RunConfig
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.report.data import ReportData
    from reconstruct.rig import load_rig
    from reconstruct.session import Session
    from reconstruct.synth import SynthSpec, generate_session

    ap = argparse.ArgumentParser()
    ap.add_argument("--session")
    ap.add_argument("--quick", action="store_true")
    args, _ = ap.parse_known_args(argv or [])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shot"
        if args.session:
            shutil.copytree(args.session, root, ignore=shutil.ignore_patterns("out"))
        else:
            generate_session(load_rig(demo_rig_path()), root, SynthSpec(frames=12 if args.quick else 24, seed=2))
        host = make_plugin_manager(load_entry_points=False, extra_plugins=[("sync", deage_plugins.sync_stage),
                                                                           ("report", deage_plugins.report_stage)])
        run_pipeline(RunConfig(session=root, only_stage="sync"), host)
        frames = [fs.frame for fs in Session.open(root).read_sync()]
        rng = np.random.default_rng(0)
        hard = set(int(f) for f in rng.choice(frames, size=max(1, len(frames) // 8), replace=False))
        rest = [f for f in frames[1:] if f not in hard and f - 1 not in hard and f + 1 not in hard]
        pops: set[int] = set()
        for f in rng.permutation(rest):  # isolated one-frame pops, none on the first frame
            if len(pops) < max(1, len(frames) // 10) and f - 1 not in pops and f + 1 not in pops:
                pops.add(int(f))
        done = plant_composites(root, hard, pops)
        hard &= set(done)
        pops &= set(done)

        t0 = time.perf_counter()
        d = ReportData.load(Session.open(root))
        for f in done:
            d.before(f), d.after(f), d.mask(f, (1, 1))
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_pipeline(RunConfig(session=root, only_stage="report"), host)
        t_report = time.perf_counter() - t0
        flags = json.loads((root / "out" / "report" / "flags.json").read_text())["checks"]
        size = (root / "out" / "report" / "report.html").stat().st_size

    seams = set(flags["seams"]["flagged"])
    flick = set(flags["flicker"]["flagged"])
    allowed_flicker = {g for f in pops | hard for g in (f, f + 1)}
    n = len(done)
    return [
        {"stage": "report", "metric": "frames/s (report incl. flags)", "value": n / t_report,
         "baseline": n / t_read, "ratio": t_read / t_report,
         "notes": f"baseline: reading plate+composite+mask only; {n} frames 640x480; page {size / 1e6:.2f} MB"},
        {"stage": "report", "metric": "seams recall", "value": len(seams & hard) / max(len(hard), 1),
         "baseline": None, "ratio": None, "notes": f"{len(hard)} hard pastes planted; "
                                                    f"{len(seams - hard)} false positives of {n - len(hard)} clean"},
        {"stage": "report", "metric": "flicker recall",
         "value": sum(1 for f in pops if {f, f + 1} & flick) / max(len(pops), 1),
         "baseline": None, "ratio": None, "notes": f"{len(pops)} one-frame pops planted; {len(flick - allowed_flicker)} "
                                                    f"false positives (pop/seam frames and the frame after excepted)"},
    ]


if __name__ == "__main__":
    for r in main(sys.argv[1:]):
        print(r)
