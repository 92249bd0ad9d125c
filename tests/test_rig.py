"""Rig files: the shipped rigs parse; bad files name the file, the key and what is expected."""

from __future__ import annotations

import pytest

from reconstruct.errors import RigError
from reconstruct.rig import load_rig, parse_rig, rig_to_toml


def test_shipped_rigs_parse(repo_root):
    rig = load_rig(repo_root / "rigs" / "hero-2ir.toml")
    assert rig.hero.name == "hero" and rig.hero.sensor == "rgb"
    assert [c.sensor for c in rig.cameras if c.role == "witness"] == ["ir", "ir"]
    assert rig.board.kind == "charuco" and rig.board.square_size == pytest.approx(0.04)
    small = load_rig(repo_root / "rigs" / "test-small.toml")
    assert small.camera("witness-left").resolution == (320, 240)
    assert small.camera("witness-left").channels == 1


def test_round_trip_through_toml(repo_root, tmp_path):
    import tomllib

    rig = load_rig(repo_root / "rigs" / "hero-2ir.toml")
    again = parse_rig(tomllib.loads(rig_to_toml(rig)))
    assert again.cameras == rig.cameras and again.board == rig.board and again.trigger == rig.trigger


BASE = """
[rig]
name = "r"
fps = 30
[[camera]]
name = "hero"
role = "hero"
resolution = [640, 480]
"""


@pytest.mark.parametrize("extra, key, expected", [
    ('[[camera]]\nname = "w"\nrole = "boss"\nresolution = [1, 1]\n', "camera[1].role", "one of"),
    ('[[camera]]\nname = "w"\nrole = "witness"\nresolution = [640]\n', "camera[1].resolution", "[width, height]"),
    ('[board]\nsquare_size = -1\n', "board.square_size", "positive"),
    ('[board]\ndictionary = "DICT_9X9"\n', "board.dictionary", "one of"),
    ('[board]\nsquare_size = 0.02\nmarker_size = 0.03\n', "board.marker_size", "smaller than square_size"),
    ('[trigger]\nmode = "telepathy"\n', "trigger.mode", "one of"),
    ('[rig]\n', None, "not valid TOML"),
    ('[[camera]]\nname = "hero"\nrole = "witness"\nresolution = [1, 1]\n', None, "used twice"),
    ('[[camera]]\nname = "w"\nrole = "hero"\nresolution = [1, 1]\n', None, "exactly one camera"),
    ('[[camera]]\nname = "w"\nrole = "witness"\nresolution = [1, 1]\nlens = "zoom"\n', "camera[1].lens", "unknown key"),
])
def test_bad_rig_files_name_file_key_and_expectation(tmp_path, extra, key, expected):
    p = tmp_path / "bad.toml"
    p.write_text(BASE + extra)
    with pytest.raises(RigError) as ei:
        load_rig(p)
    msg = str(ei.value)
    assert str(p) in msg and expected in msg
    if key:
        assert key in msg


def test_missing_rig_file_says_where_examples_are(tmp_path):
    with pytest.raises(RigError, match="does not exist"):
        load_rig(tmp_path / "nope.toml")


NONFINITE = [  # (where the value goes, the dotted key the error must name)
    ("[rig]\nname = 'r'\nfps = {v}\n", "rig.fps"),
    ("[trigger]\nfps = {v}\n", "trigger.fps"),
    ("[board]\nsquare_size = {v}\n", "board.square_size"),
    ("[board]\nmarker_size = {v}\n", "board.marker_size"),
    ("[board]\nsquares = [{v}, 7]\n", "board.squares"),
    ("[[camera]]\nname = 'w'\nrole = 'witness'\nresolution = [{v}, 480]\n", "camera[1].resolution"),
    ("[[camera]]\nname = 'w'\nrole = 'witness'\nresolution = [64, 48]\nfps = {v}\n", "camera[1].fps"),
    ("[[camera]]\nname = 'w'\nrole = 'witness'\nresolution = [64, 48]\nexposure_us = {v}\n", "camera[1].exposure_us"),
    ("[[camera]]\nname = 'w'\nrole = 'witness'\nresolution = [64, 48]\n[camera.settings]\nlatency_ns = {v}\n",
     "camera[1].settings.latency_ns"),
    ("[[camera]]\nname = 'w'\nrole = 'witness'\nresolution = [64, 48]\n[camera.settings]\ngrid = [1.0, {v}]\n",
     "camera[1].settings.grid"),
]


@pytest.mark.parametrize("value", ["nan", "inf", "+inf"])
@pytest.mark.parametrize("table, key", NONFINITE)
def test_non_finite_numbers_are_refused_naming_file_and_key(tmp_path, table, key, value):
    """nan passed `fps <= 0` checks (nan compares false) and inf passed everything: both are refused at the rig edge."""
    base = BASE.replace("[rig]\nname = \"r\"\nfps = 30\n", "") if table.startswith("[rig]") else BASE
    p = tmp_path / "bad.toml"
    p.write_text(table.format(v=value) + base if table.startswith("[rig]") else base + table.format(v=value))
    with pytest.raises(RigError) as ei:
        load_rig(p)
    msg = str(ei.value)
    assert str(p) in msg and f"'{key}'" in msg and "finite" in msg.replace(str(p), ""), msg


def test_fractional_resolution_is_refused_not_truncated(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text(BASE.replace("[640, 480]", "[640.5, 480]"))
    with pytest.raises(RigError, match=r"camera\[0\].resolution.*whole numbers"):
        load_rig(p)
    p.write_text(BASE.replace("[640, 480]", "[640.0, 480]"))
    assert load_rig(p).hero.resolution == (640, 480)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_fps_exits_2_in_capture_record_and_synth(tmp_path, capsys, value):
    """Before: `capture record` exited 0 with a "complete" take of 0 frames and fps = nan in session.toml;
    `reconstruct synth` raised a traceback. Now both refuse the rig (exit 2) and create nothing."""
    from capture.cli import main as capture_main
    from reconstruct.cli import main as reconstruct_main

    p = tmp_path / "rig.toml"
    p.write_text(BASE.replace("fps = 30", f"fps = {value}"))
    assert capture_main(["record", str(p), str(tmp_path / "take"), "--frames", "3", "--quiet",
                         "--data-endpoint", "tcp://127.0.0.1:0"]) == 2
    assert reconstruct_main(["synth", str(p), str(tmp_path / "synth"), "--frames", "2", "--model", "demo"]) == 2
    err = capsys.readouterr().err
    want = f"{p}: key 'rig.fps' must be a frame rate in frames per second (a finite number), got {value}"
    squeeze = lambda t: "".join(t.split())  # noqa: E731 - the console may wrap the line anywhere
    assert squeeze(err).count(squeeze(want)) == 2, err
    assert "Traceback" not in err
    assert not (tmp_path / "take").exists() and not (tmp_path / "synth").exists()


def test_one_camera_rig_round_trips_with_its_backend_settings():
    """The one-camera rig that tools/one_view_session.py and the real-face tests write: one free-running RGB hero,
    backend settings kept through TOML."""
    import tomllib

    from reconstruct.rig import one_camera_rig

    rig = one_camera_rig((512, 384), 25.0, settings={"path": "/clips/a/*.png", "fps": 25.0})
    again = parse_rig(tomllib.loads(rig_to_toml(rig)))
    assert again.hero.resolution == (512, 384) and again.hero.sensor == "rgb" and again.hero.backend == "images"
    assert again.trigger.mode == "free" and again.fps == 25.0 and len(again.cameras) == 1
    assert dict(again.hero.settings) == {"path": "/clips/a/*.png", "fps": 25.0}
