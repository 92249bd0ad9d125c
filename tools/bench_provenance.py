"""Cost of provenance: writing hero plates with an embedded record + manifest entry vs plain files.

Rows: PNG (16-bit RGB 1920x1080) with provenance + manifest vs plain ``cv2.imwrite``; half-float EXR with the record
in its header + manifest vs plain PNG of the same frame. Follows docs/benchmarks.md (``main(argv) -> rows``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> list[dict]:
    import cv2

    from reconstruct.demo import demo_rig_path
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.provenance import make_record, write_exr, write_png
    from reconstruct.rig import load_rig
    from reconstruct.session import Session

    ap = argparse.ArgumentParser()
    ap.add_argument("--session")
    ap.add_argument("--quick", action="store_true")
    args, _ = ap.parse_known_args(argv or [])
    n = 4 if args.quick else 12
    rng = np.random.default_rng(0)
    frames = [np.clip(rng.normal(30000, 9000, (1080, 1920, 3)), 0, 65535).astype(np.uint16) for _ in range(2)]
    with tempfile.TemporaryDirectory() as tmp:
        s = Session.create(Path(tmp) / "s", load_rig(demo_rig_path()))
        rec = make_record(s, stage="bench", method="fran", host=make_plugin_manager(), settings={"x": 1})
        out = s.root / "out" / "plates" / "hero"
        out.mkdir(parents=True)

        def timed(fn) -> float:
            t0 = time.perf_counter()
            for i in range(n):
                fn(i)
            return n / (time.perf_counter() - t0)

        plain = timed(lambda i: cv2.imwrite(str(out / f"plain{i:04d}.png"), frames[i % 2]))
        prov = timed(lambda i: write_png(s, out / f"{i:06d}.png", frames[i % 2], rec))
        exr = timed(lambda i: write_exr(s, out / f"{i:06d}.exr", frames[i % 2].astype(np.float32) / 65535, rec,
                                        half=True))
    return [
        {"stage": "provenance", "metric": "PNG+record+manifest frames/s (1080p 16-bit)", "value": prov,
         "baseline": plain, "ratio": prov / plain, "notes": f"baseline: plain cv2.imwrite PNG; {n} frames"},
        {"stage": "provenance", "metric": "EXR(half)+record+manifest frames/s (1080p)", "value": exr,
         "baseline": plain, "ratio": exr / plain, "notes": "baseline: plain cv2.imwrite PNG"},
    ]


if __name__ == "__main__":
    for r in main(sys.argv[1:]):
        print(r)
