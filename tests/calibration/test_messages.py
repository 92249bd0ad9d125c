"""What calibration errors and hints tell a user: the commands they name exist, the counts add up, and a board
spec or a missing file is named for what it is."""

from __future__ import annotations

import argparse
import ast
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from .conftest import SMALL_BOARD, make_rig, write_calib
from reconstruct.calibration.detect import diagnose_no_board, inner_corner_mistake
from reconstruct.calibration.rig_solve import CalibrationOptions, calibrate_rig, detect_session
from reconstruct.calibration.synthetic import example_rig_cameras, ideal_detections, make_board_poses, \
    render_board_views
from reconstruct.errors import CalibrationError
from reconstruct.rig import BoardSpec, CameraSpec, Rig, TriggerSpec
from reconstruct.session import Session

REPO = Path(__file__).resolve().parents[2]
_COMMAND = re.compile(r"`((?:capture|reconstruct) [^`]*)(?:`|$)")


def _strings(tree: ast.AST):
    """Every string literal of a module, f-strings with ``X`` where a value goes (hints are built that way)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            yield "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)


def _named_commands() -> list[tuple[str, str]]:
    """(file, command) for every backticked `capture ...` / `reconstruct ...` in the product's strings."""
    out = []
    for pkg in ("reconstruct", "capture", "plugins"):
        for f in sorted((REPO / pkg).rglob("*.py")):
            for s in _strings(ast.parse(f.read_text(encoding="utf-8"))):
                out += [(str(f.relative_to(REPO)), m.group(1).strip()) for m in _COMMAND.finditer(s)]
    return out


def _check(command: str, parsers: dict) -> str | None:
    """Why ``command`` (e.g. ``reconstruct calibrate <session> --intrinsics-only``) is not a command line of ours,
    or None. Checks the sub-command, a sub-sub-command where there are some, and every --flag named."""
    from reconstruct.commands import subcommand_parsers

    words = command.split()
    sub = subcommand_parsers(parsers[words[0]])
    if words[1] not in sub:
        return f"`{words[0]} {words[1]}`: no such command (have {sorted(sub)})"
    p = sub[words[1]]
    nested = subcommand_parsers(p)
    if nested and len(words) > 2 and re.fullmatch(r"[a-z][a-z-]*", words[2]):
        if words[2] not in nested:
            return f"`{' '.join(words[:3])}`: no such command (have {sorted(nested)})"
        p = nested[words[2]]
    if any(a.nargs == argparse.REMAINDER for a in p._actions):
        return None  # the rest goes to another parser (`reconstruct train METHOD ...`)
    for w in words[2:]:
        flag = w.split("=", 1)[0].rstrip(".,;:)")
        if flag.startswith("--") and flag not in p._option_string_actions:
            return f"`{command}`: {words[0]} {words[1]} has no option {flag}"
    return None


def test_every_command_named_in_a_message_exists():
    from capture.cli import build_parser as capture_parser
    from reconstruct.cli import build_parser as reconstruct_parser

    from reconstruct.commands import subcommand_parsers
    from reconstruct.plugins import make_plugin_manager

    parsers = {"capture": capture_parser(), "reconstruct": reconstruct_parser()}
    host = make_plugin_manager()
    for parser in parsers.values():  # with the flags plugins add (`reconstruct run --young-refs`)
        for name, sub in subcommand_parsers(parser).items():
            host.hook.register_cli_arguments(command=name, parser=sub)
    named = _named_commands()
    assert len(named) > 50  # measured 160: the scan sees the hints
    bad = [f"{f}: {why}" for f, cmd in named if (why := _check(cmd, parsers))]
    assert not bad, "\n".join(bad)


def test_missing_frames_csv_is_named_with_the_command_that_makes_it(tmp_path):
    s = Session.create(tmp_path / "s", make_rig(SMALL_BOARD))
    with pytest.raises(CalibrationError) as e:
        detect_session(s)
    msg = str(e.value)
    assert "calib/hero/frames.csv, calib/left/frames.csv, calib/right/frames.csv are missing" in msg
    assert f"`capture import {s.root} hero=PHOTOS left=PHOTOS right=PHOTOS`" in e.value.hint
    assert "no calibration images" not in msg


def test_view_counts_say_how_many_more():
    cams = example_rig_cameras((640, 480))
    dets = ideal_detections(SMALL_BOARD, cams, make_board_poses(SMALL_BOARD, cams, 6, seed=1), 0.2)
    cal = calibrate_rig(dets, SMALL_BOARD, CalibrationOptions(reference="hero"))
    w = [x for x in cal.warnings if "camera 'left': only" in x]
    n = cal.camera_quality["left"]["views"]
    assert w and f"only {n} board views; capture {10 - n} more (10 or more in all)" in w[0]
    dets = ideal_detections(SMALL_BOARD, cams, make_board_poses(SMALL_BOARD, cams, 2, seed=1), 0.2)
    with pytest.raises(CalibrationError, match="only 2 calibration views") as e:
        calibrate_rig(dets, SMALL_BOARD)
    assert "capture 8 more views of the board (10 or more in all)" in e.value.hint


# -- a board given by its inner corners --------------------------------------------------------------------------
def _one_camera_session(root: Path, board: BoardSpec, images: list) -> Session:
    rig = Rig(name="one", fps=30.0, cameras=(CameraSpec(name="hero", role="hero", sensor="ir", resolution=(640, 480),
                                                        fps=30.0),), trigger=TriggerSpec(), board=board)
    s = Session.create(root, rig)
    write_calib(s, {"hero": images})
    return Session.open(root)


@pytest.mark.parametrize("kind", ["charuco", "chessboard"])
def test_squares_given_as_inner_corners_say_so(tmp_path, kind):
    """A 5x8-square board written ``squares = [4, 7]``: before, ChArUco said "check squares" and a chessboard
    calibrated on a pattern found inside the real one and failed with "no board observations to adjust"."""
    from reconstruct.cli import main

    printed = BoardSpec(squares=(5, 8), square_size=0.04, marker_size=0.03, dictionary="DICT_4X4_50") \
        if kind == "charuco" else BoardSpec(kind="chessboard", squares=(5, 8), square_size=0.04)
    cam = {"hero": example_rig_cameras((640, 480))["hero"]}
    images, _ = render_board_views(printed, cam, 6, seed=3)
    s = _one_camera_session(tmp_path / "s", replace(printed, squares=(4, 7)), images["hero"])
    with pytest.raises(CalibrationError) as e:
        detect_session(s)
    assert ("the rig file's board `squares = [4, 7]` looks like inner corners; a 5x8-square board has 4x7 inner "
            "corners: write squares = [5, 8]") in str(e.value)
    assert str(s.root / "rig.toml") in e.value.hint
    assert main(["calibrate", str(s.root)]) == 7
    assert not s.calibration_path.exists()


def test_right_board_is_not_suspected(shared_data):
    """The check costs two detections and must stay silent for a correct spec (the OpenCV stereo chessboard,
    9x6 inner corners = 10x7 squares); a spec with too few squares names the real count."""
    import cv2

    ims = [cv2.imread(str(shared_data / f"calib/opencv_stereo_chessboard/left0{i}.jpg"), 0) for i in (1, 2)]
    right = BoardSpec(kind="chessboard", squares=(10, 7), square_size=0.025)
    assert inner_corner_mistake(ims, right) is None
    assert "write squares = [10, 7]" in inner_corner_mistake(ims, replace(right, squares=(9, 6)))
    assert "has 9x6 inner corners (10x7 squares)" in inner_corner_mistake(ims, replace(right, squares=(8, 6)))
    assert "looks like inner corners" in str(diagnose_no_board(ims, replace(right, squares=(9, 6)), "left"))
