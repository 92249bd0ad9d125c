"""A one-camera session from a folder of frames (e.g. ../shared/data/faces/obama_address/frames) with a guessed
pinhole calibration (focal ``focal_factor`` x the image width, principal point at the centre, no distortion), so
that ``reconstruct run SESSION`` (sync, calibrate keeps the calibration, detect, fit) works on real footage.

    .venv/bin/python tools/one_view_session.py FRAMES_DIR SESSION [--first 0] [--count 190] [--fps 25]
    .venv/bin/python -m reconstruct.cli run SESSION
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

def make_one_view_session(frames_dir: Path, root: Path, first: int = 0, count: int | None = None, fps: float = 25.0,
                          focal_factor: float = 2.0) -> Path:
    """Write session ``root`` (must not exist) from the sorted images of ``frames_dir`` [first, first + count)."""
    import cv2

    from reconstruct.calibration.result import RigCalibration
    from reconstruct.camera import CameraModel
    from reconstruct.errors import ConfigError
    from reconstruct.rig import load_rig, one_camera_rig, rig_to_toml
    from reconstruct.session import FrameRecord, Session

    files = sorted(p for p in Path(frames_dir).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = files[first:None if count is None else first + count]
    if not files:
        raise ConfigError(f"no .jpg/.png frames in {frames_dir} from index {first}")
    img0 = cv2.imread(str(files[0]))
    h, w = img0.shape[:2]
    root = Path(root)
    rig_path = root.with_name(root.name + "-rig.toml")
    rig_path.write_text(rig_to_toml(one_camera_rig((w, h), fps)))
    s = Session.create(root, load_rig(rig_path))
    recs = []
    period_ns = int(round(1e9 / fps))
    for k, f in enumerate(files):
        img = cv2.imread(str(f))
        if img is None or img.shape[:2] != (h, w):
            raise ConfigError(f"{f} is not a {w}x{h} image like {files[0].name}")
        name = f"{k:06d}.png"
        s.write_image("hero", name, np.ascontiguousarray(img[..., ::-1]))
        recs.append(FrameRecord(index=k, t_capture_ns=1_000_000_000 + k * period_ns, tick=k, file=name))
    s.write_frames("hero", recs)
    fpx = focal_factor * w
    cam = CameraModel("hero", K=np.array([[fpx, 0, (w - 1) / 2], [0, fpx, (h - 1) / 2], [0, 0, 1]]), dist=np.zeros(5),
                      image_size=(w, h))
    s.write_calibration(RigCalibration(cameras={"hero": cam}, reference="hero").to_dict())
    return root


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("frames", type=Path)
    ap.add_argument("session", type=Path)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--focal-factor", type=float, default=2.0)
    a = ap.parse_args(argv)
    print(make_one_view_session(a.frames, a.session, a.first, a.count, a.fps, a.focal_factor))


if __name__ == "__main__":
    main()
