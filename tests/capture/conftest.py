"""Helpers for capture tests: rig files on loopback with free ports (tests may run in parallel)."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture.recorder import RecordOptions

HERO_IR = [  # (name, role, sensor, (w, h), exposure_us)
    ("hero", "hero", "rgb", (1280, 720), 8000.0),
    ("ir-left", "witness", "ir", (640, 480), 4000.0),
    ("ir-right", "witness", "ir", (640, 480), 3000.0),
]
SMALL = [
    ("hero", "hero", "rgb", (160, 120), 8000.0),
    ("ir-left", "witness", "ir", (96, 64), 4000.0),
    ("ir-right", "witness", "ir", (96, 64), 3000.0),
]


def write_rig(path: Path, cameras=SMALL, fps: float = 30.0, mode: str = "software", backend: str = "synthetic",
              settings: dict | None = None) -> Path:
    """A rig TOML; ``settings`` maps camera name -> dict of [camera.settings] (strings/ints only)."""
    lines = ["[rig]", 'name = "test-rig"', f"fps = {fps}", "", "[trigger]", f'mode = "{mode}"', f"fps = {fps}",
             'tick_endpoint = "tcp://127.0.0.1:0"']
    for name, role, sensor, (w, h), exp in cameras:
        lines += ["", "[[camera]]", f'name = "{name}"', f'role = "{role}"', f'sensor = "{sensor}"',
                  f"resolution = [{w}, {h}]", f"exposure_us = {exp}", f'backend = "{backend}"']
        st = (settings or {}).get(name)
        if st:
            lines.append("[camera.settings]")
            lines += [f"{k} = {_toml(v)}" for k, v in st.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return '"' + v + '"'
    return repr(v)


def loopback_options(**kw) -> RecordOptions:
    return RecordOptions(data_endpoint="tcp://127.0.0.1:0", status_interval=0.25, **kw)


@pytest.fixture
def small_rig(tmp_path):
    from reconstruct.rig import load_rig

    return load_rig(write_rig(tmp_path / "rig.toml"))
