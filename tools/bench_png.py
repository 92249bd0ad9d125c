"""The deliverables' encoders against the libraries', on one core, same frames, same run: the 16-bit PNG
(reconstruct/png.py) against OpenCV's, and the plates' half-float EXR (reconstruct/composite/exr.py, ZIP with ISA-L)
against the OpenEXR package's PIZ (what the plates used before); and the frame reader's PNG decoder
(reconstruct.png.decode_png) against OpenCV's.

Rows: encode ms per 1080p 16-bit RGB plate (value, baseline = ``cv2.imencode``) and per 1080p half-float linear
plate (the same frames linearised; baseline = ``OpenEXR.File(...).write`` with PIZ), decode ms per 1080p frame
as a take stores it (8-bit, OpenCV's file) and per 16-bit plate (baseline = ``cv2.imdecode`` + ``cvtColor``), file
sizes in the notes. Frames:
a real face frame from ``../shared/data/faces/obama_address`` scaled to 1920x1080 (8-bit footage written as 16-bit:
``v * 257``, what the composite writes outside the face), when the data is there; and a synthetic smooth image
with noise. Every encoded file is decoded and compared (exit code 1 on a difference). Follows docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


ROOT = Path(__file__).resolve().parents[1]


def _frames(data: Path) -> dict[str, np.ndarray]:
    import cv2

    out = {}
    folder = data / "faces" / "obama_address" / "frames"
    files = sorted(folder.glob("*.png")) + sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if files:
        img = cv2.cvtColor(cv2.imread(str(files[len(files) // 2])), cv2.COLOR_BGR2RGB)
        out["real face frame, 8-bit x 257"] = cv2.resize(img, (1920, 1080), interpolation=cv2.INTER_CUBIC
                                                         ).astype(np.uint16) * 257
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1080, 0:1920].astype(np.float32)
    smooth = 0.5 + 0.25 * np.sin(xx / 97.0)[..., None] * np.cos(yy / 61.0)[..., None] * np.array([1.0, 0.8, 0.6])
    noisy = np.clip(smooth + rng.normal(0, 0.004, smooth.shape), 0, 1)
    out["synthetic, 16-bit"] = np.round(noisy * 65535).astype(np.uint16)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    import cv2

    from reconstruct.png import deflate_backend, encode_png

    ap = argparse.ArgumentParser()
    ap.add_argument("--session")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("DEAGE_SHARED_DATA", ROOT.parent / "shared" / "data")),
                    help="shared data folder (default ../shared/data or $DEAGE_SHARED_DATA)")
    args, _ = ap.parse_known_args(argv or [])
    repeats = 2 if args.quick else 5
    cv2.setNumThreads(1)
    rows = []
    for name, img in _frames(args.data).items():
        bgr = np.ascontiguousarray(img[..., ::-1])

        def best(fn):
            t = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                data = fn()
                t.append(time.perf_counter() - t0)
            return min(t), data

        t_ours, ours = best(lambda: encode_png(img))
        t_cv, ref = best(lambda: cv2.imencode(".png", bgr)[1].tobytes())
        back = cv2.imdecode(np.frombuffer(ours, np.uint8), cv2.IMREAD_UNCHANGED)
        if not np.array_equal(back, bgr):
            raise SystemExit(f"reconstruct.png: {name}: the decoded samples differ from the encoded ones")
        rows.append({"stage": "composite", "metric": f"16-bit PNG encode ms/plate (1080p, {name})",
                     "value": 1e3 * t_ours, "baseline": 1e3 * t_cv, "ratio": t_ours / t_cv,
                     "notes": f"baseline: cv2.imencode (OpenCV default); deflate {deflate_backend()}; files "
                              f"{len(ours) / 1e6:.2f} vs {len(ref) / 1e6:.2f} MB; 1 core, best of {repeats}"
                              + (" (quick)" if args.quick else "")})
        rows.append(_exr_row(name, img, best, args.quick, repeats))
        rows.extend(_decode_rows(name, img, ours, best, args.quick, repeats))
    return rows


def _decode_rows(name: str, img16: np.ndarray, png16: bytes, best, quick: bool, repeats: int) -> list[dict]:
    """reconstruct.png.decode_png against OpenCV's decoder (imdecode + BGR->RGB, what Session.read_image did) on
    the frame as a take stores it (8-bit RGB written by OpenCV: rows "Sub") and on our 16-bit plate (rows "Up")."""
    import cv2

    from reconstruct.png import decode_png

    img8 = (img16 // 257).astype(np.uint8)
    frame8 = cv2.imencode(".png", np.ascontiguousarray(img8[..., ::-1]))[1].tobytes()
    rows = []
    for what, data, want in (("8-bit frame, OpenCV's file", frame8, img8), ("16-bit plate, ours", png16, img16)):
        def opencv(data=data):
            return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)

        t_ours, ours = best(lambda data=data: decode_png(data))
        t_cv, ref = best(opencv)
        if ours is None or not (np.array_equal(ours, want) and np.array_equal(ref, want)):
            raise SystemExit(f"reconstruct.png.decode_png: {name}, {what}: the samples differ from OpenCV's")
        rows.append({"stage": "frames", "metric": f"PNG decode ms/frame (1080p {what}, {name})",
                     "value": 1e3 * t_ours, "baseline": 1e3 * t_cv, "ratio": t_ours / t_cv,
                     "notes": f"baseline: cv2.imdecode + cvtColor (Session.read_image before); file "
                              f"{len(data) / 1e6:.2f} MB; same samples; 1 core, best of {repeats}"
                              + (" (quick)" if quick else "")})
    return rows


def _exr_row(name: str, img16: np.ndarray, best, quick: bool, repeats: int) -> dict:
    """Our half EXR (ZIP, ISA-L) against OpenEXR's PIZ on the frame linearised (what the composite writes)."""
    import tempfile

    import OpenEXR

    from reconstruct.composite.exr import ZIP_LEVEL, encode_exr_half
    from reconstruct.render.shading import srgb_to_linear

    half = np.ascontiguousarray(srgb_to_linear(img16.astype(np.float32) / np.float32(65535)).astype(np.float16))
    with tempfile.TemporaryDirectory() as tmp:
        ref_path = Path(tmp) / "piz.exr"

        def piz():
            OpenEXR.File({"compression": OpenEXR.PIZ_COMPRESSION, "type": OpenEXR.scanlineimage},
                         {"RGB": half}).write(str(ref_path))
            return ref_path.stat().st_size

        t_ours, ours = best(lambda: encode_exr_half(half))
        t_piz, piz_size = best(piz)
        ours_path = Path(tmp) / "ours.exr"
        ours_path.write_bytes(ours)
        with OpenEXR.File(str(ours_path)) as f:
            back = np.array(f.channels()["RGB"].pixels)
    if back.dtype != np.float16 or not np.array_equal(back.view(np.uint16), half.view(np.uint16)):
        raise SystemExit(f"reconstruct.composite.exr: {name}: the decoded half floats differ from the encoded ones")
    return {"stage": "composite", "metric": f"half EXR encode ms/plate (1080p, {name})",
            "value": 1e3 * t_ours, "baseline": 1e3 * t_piz, "ratio": t_ours / t_piz,
            "notes": f"ours: ZIP, ISA-L level {ZIP_LEVEL}; baseline: OpenEXR package, PIZ; files "
                     f"{len(ours) / 1e6:.2f} vs {piz_size / 1e6:.2f} MB; 1 core, best of {repeats}"
                     + (" (quick)" if quick else "")}


if __name__ == "__main__":
    for r in main(sys.argv[1:]):
        print(r)
