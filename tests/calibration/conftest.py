"""Fixtures for calibration tests: a session whose calib/ holds rendered board views of a known rig."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.calibration.synthetic import example_rig_cameras, render_board_views
from reconstruct.rig import BoardSpec, CameraSpec, Rig, TriggerSpec
from reconstruct.session import FrameRecord, Session

SMALL_BOARD = BoardSpec(squares=(6, 8), square_size=0.035, marker_size=0.026, dictionary="DICT_4X4_50")


def make_rig(board: BoardSpec, size=(640, 480), sensors=("rgb", "ir", "ir")) -> Rig:
    cams = tuple(CameraSpec(name=n, role="hero" if n == "hero" else "witness", sensor=s, resolution=size, fps=30.0)
                 for n, s in zip(("hero", "left", "right"), sensors))
    return Rig(name="test3", fps=30.0, cameras=cams, trigger=TriggerSpec(), board=board)


def write_calib(session: Session, images: dict[str, list[np.ndarray | None]]) -> None:
    """Store rendered views as calib/<camera>/NNNNNN.png with a frames.csv (row k = pose k in every camera)."""
    for cam, views in images.items():
        with session.frame_log(cam, kind="calib") as log:
            for k, img in enumerate(views):
                if img is None:
                    continue
                name = f"{k:06d}.png"
                session.write_image(cam, name, img, kind="calib")
                log.append(FrameRecord(index=k, t_capture_ns=k * 1_000_000_000, file=name))


@pytest.fixture(scope="session", autouse=True)
def _no_calibration_cache():
    """The calibration tests solve every time (no solution kept across takes, reconstruct/calibration/cache.py):
    they change the solver's inputs and behaviour on purpose. test_cache.py turns the cache on where it tests it."""
    import os

    old = os.environ.get("DEAGE_CALIBRATION_CACHE_DIR")
    os.environ["DEAGE_CALIBRATION_CACHE_DIR"] = "off"
    yield
    if old is None:
        os.environ.pop("DEAGE_CALIBRATION_CACHE_DIR", None)
    else:
        os.environ["DEAGE_CALIBRATION_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def rendered_session(tmp_path_factory):
    """(session, ground-truth cameras, board poses): 3 cameras 640x480 (hero RGB, two IR), 14 rendered poses."""
    board = SMALL_BOARD
    rig = make_rig(board)
    cams = example_rig_cameras((640, 480))
    images, poses = render_board_views(board, cams, 14, seed=11, noise_px=1.0, channels={"hero": 3})
    s = Session.create(tmp_path_factory.mktemp("cal") / "take", rig)
    write_calib(s, images)
    return s, cams, poses
