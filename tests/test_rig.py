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
