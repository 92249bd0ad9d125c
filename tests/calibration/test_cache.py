"""A rig session's takes share their calibration images: the calibrate stage of a second take with the same images
(content, not names or times), board, rig and settings loads the first take's solution from the calibration cache
(reconstruct/calibration/cache.py) instead of detecting and solving again; the same bytes as the solve wrote."""

import json
import logging
import shutil

import pytest

import deage_plugins.calibrate_stage as calibrate_plugin
import reconstruct.calibration.rig_solve as rig_solve
from reconstruct.engine import run_pipeline
from reconstruct.plugins import make_plugin_manager
from reconstruct.session import Session
from reconstruct.stage import RunConfig

OPTIONS = {"calibrate.step": "2"}


def _take(rendered_session, tmp_path, name: str):
    s, _, _ = rendered_session
    root = tmp_path / name
    shutil.copytree(s.root, root, copy_function=shutil.copyfile)  # new modification times: only content is shared
    (root / "calibration.json").unlink(missing_ok=True)
    return root


def _run(root, options=OPTIONS):
    host = make_plugin_manager(load_entry_points=False, extra_plugins=[("calibrate", calibrate_plugin)])
    return run_pipeline(RunConfig(session=root, options=dict(options)), host)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "calibration-cache"
    monkeypatch.setenv("DEAGE_CALIBRATION_CACHE_DIR", str(d))
    return d


def test_second_take_with_the_same_images_is_not_solved_again(rendered_session, tmp_path, cache, monkeypatch):
    first = _take(rendered_session, tmp_path, "take-1")
    _run(first)
    assert len(list(cache.glob("calibration-*.json"))) == 1
    second = _take(rendered_session, tmp_path, "take-2")
    calls = []
    monkeypatch.setattr(rig_solve, "calibrate_session", lambda *a, **k: calls.append(1) or 1 / 0)
    _run(second)
    assert calls == []  # on main: solved again (no cache)
    for rel in ("out/calibrate/calibration.json", "calibration.json"):
        assert (second / rel).read_bytes() == (first / rel).read_bytes(), rel  # byte-identical
    Session.open(second).calibration()  # a valid calibration for every later stage


def test_cached_solution_equals_a_fresh_solve(rendered_session, tmp_path, cache, monkeypatch):
    first = _take(rendered_session, tmp_path, "take-1")
    _run(first)
    monkeypatch.setenv("DEAGE_CALIBRATION_CACHE_DIR", "off")
    fresh = _take(rendered_session, tmp_path, "fresh")
    _run(fresh)
    a = json.loads((first / "calibration.json").read_text())
    b = json.loads((fresh / "calibration.json").read_text())

    def same(x, y, path=""):
        if isinstance(x, dict):
            assert set(x) == set(y), path
            for k in x:
                if k not in ("seconds", "bundle_seconds"):  # wall time of the solve, the only difference
                    same(x[k], y[k], f"{path}/{k}")
        elif isinstance(x, list):
            assert len(x) == len(y), path
            for i, (u, v) in enumerate(zip(x, y)):
                same(u, v, f"{path}/{i}")
        else:
            assert x == y or (x != x and y != y), path  # bit-equal numbers (NaN equal to NaN)

    same(a, b)


def test_other_content_or_settings_are_solved(rendered_session, tmp_path, cache, monkeypatch):
    first = _take(rendered_session, tmp_path, "take-1")
    _run(first)
    # one calibration image changed by one grey level in one pixel: another key
    other = _take(rendered_session, tmp_path, "take-2")
    img = next((other / "calib" / "hero").glob("*.png"))
    s = Session.open(other)
    pixels = s.read_image("hero", img.name, kind="calib").copy()
    pixels[0, 0] ^= 1
    s.write_image("hero", img.name, pixels, kind="calib")
    from reconstruct.calibration import cache as cal_cache
    from reconstruct.calibration.rig_solve import CalibrationOptions

    opts = CalibrationOptions(reference="hero")
    assert cal_cache.session_key(Session.open(first), opts, 2) != cal_cache.session_key(s, opts, 2)
    assert cal_cache.session_key(Session.open(first), opts, 2) == cal_cache.session_key(Session.open(first), opts, 2)
    _run(other)
    _run(other, {**OPTIONS, "calibrate.fix_aspect_ratio": "true"})  # other settings
    assert len(list(cache.glob("calibration-*.json"))) == 3


def test_damaged_entry_is_solved_again_and_replaced(rendered_session, tmp_path, cache, caplog):
    first = _take(rendered_session, tmp_path, "take-1")
    _run(first)
    (entry,) = cache.glob("calibration-*.json")
    entry.write_text('{"schema": 1, "cameras": {"hero": {"K": [[1, 0], [0, 1]]}}}')
    second = _take(rendered_session, tmp_path, "take-2")
    with caplog.at_level(logging.WARNING):
        _run(second)
    assert "damaged cached calibration" in caplog.text
    assert Session.open(second).calibration().cameras["hero"].K[0, 0] > 100  # solved, not the damaged entry
    assert entry.read_bytes() == (second / "calibration.json").read_bytes()  # the new solve replaced it


def test_cache_off_keeps_nothing(rendered_session, tmp_path, monkeypatch):
    monkeypatch.setenv("DEAGE_CALIBRATION_CACHE_DIR", "off")
    monkeypatch.setenv("DEAGE_CACHE_DIR", str(tmp_path / "home-cache"))
    _run(_take(rendered_session, tmp_path, "take-1"))
    assert not (tmp_path / "home-cache" / "calibration").exists()
    from reconstruct.calibration import cache as cal_cache

    assert cal_cache.cache_dir() is None
    monkeypatch.delenv("DEAGE_CALIBRATION_CACHE_DIR")
    assert cal_cache.cache_dir() == tmp_path / "home-cache" / "calibration"
