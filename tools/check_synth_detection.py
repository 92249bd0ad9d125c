"""Check that MediaPipe Face Mesh finds the face in every frame of every camera of a (synthetic) session.

Usage: .venv/bin/python tools/check_synth_detection.py SESSION [SESSION ...]
Prints, per camera, how many stored frames MediaPipe (``mediapipe.solutions.face_mesh``, offline, static-image
mode) detects a face in; exits 1 when any frame is missed. IR frames are fed as grey replicated to RGB.
"""

from __future__ import annotations

import sys

import numpy as np


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    import mediapipe as mp

    from reconstruct.session import Session

    fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1)
    missed = 0
    for root in argv:
        s = Session.open(root)
        for cam in s.rig.camera_names:
            recs = s.frames(cam)
            bad = []
            for r in recs:
                img = s.read_image(cam, r)
                rgb = np.ascontiguousarray(np.stack([img] * 3, -1) if img.ndim == 2 else img)
                if fm.process(rgb).multi_face_landmarks is None:
                    bad.append(r.file)
            missed += len(bad)
            print(f"{root} {cam}: face found in {len(recs) - len(bad)} / {len(recs)} frames"
                  + (f" (missed: {', '.join(bad[:8])})" if bad else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
