"""Fit the face model to one photo and write the fit rendered over it (the QC picture of a single-view fit).

    .venv/bin/python tools/fit_photo.py ../shared/data/faces/astronaut/astronaut.png out.png [--model ict]

Prints the mean landmark reprojection error in pixels and as a fraction of the inter-ocular distance.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default="ict", help="face model name (ict, demo, or an imported one)")
    ap.add_argument("--focal", type=float, nargs="*", default=[0.7, 1.0, 1.5, 2.5],
                    help="focal lengths to try, in multiples of the image's longest side")
    a = ap.parse_args(argv)
    import cv2
    import torch

    torch.set_num_threads(1)
    from deage_plugins.landmarks import MediaPipeFaceMesh
    from reconstruct.fitting.overlay import overlay_fit
    from reconstruct.fitting.photo import fit_photo
    from reconstruct.fitting.pipeline import ensure_scheme
    from reconstruct.plugins import make_plugin_manager

    img = cv2.imread(str(a.image))
    if img is None:
        print(f"cannot read {a.image}", file=sys.stderr)
        return 2
    rgb = img[..., ::-1].copy()
    det = MediaPipeFaceMesh()
    res = det.detect(rgb)
    det.close()
    if res is None:
        print(f"no face found in {a.image}", file=sys.stderr)
        return 1
    pts, conf = res
    model = ensure_scheme(make_plugin_manager().components().get("face_model", a.model).load(), det.scheme)
    fit = fit_photo(model, det.scheme, pts.astype(float), conf.astype(float), (rgb.shape[1], rgb.shape[0]),
                    focal_factors=tuple(a.focal))
    pic = overlay_fit(rgb, fit.vertices, model.triangles, fit.camera, pts, fit.fitted)
    cv2.imwrite(str(a.out), pic[..., ::-1])
    print(f"{a.image.name}: focal {fit.camera.K[0, 0]:.0f} px, landmark error {fit.error_px:.2f} px = "
          f"{100 * fit.error_iod:.2f}% of the inter-ocular distance; overlay -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
