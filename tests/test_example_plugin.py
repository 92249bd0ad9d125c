"""The third-party example plugin (tools/example_plugin): installed as its own distribution, discovered through
its entry point, listed by `reconstruct plugins`, and used by `reconstruct run --method example_smooth`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

USE = r"""
import sys, json
import numpy as np
from pathlib import Path
from reconstruct.engine import run_pipeline
from reconstruct.stage import RunConfig
from reconstruct.plugins import make_plugin_manager
from reconstruct.rig import load_rig
from reconstruct.session import FrameRecord, Session
from tests.stage_plugins import NoFitPlugin

root, rig_path = Path(sys.argv[1]), sys.argv[2]
rig = load_rig(rig_path)
s = Session.create(root, rig)
rng = np.random.default_rng(0)
for k, cam in enumerate(rig.cameras):
    w, h = cam.resolution
    recs = []
    for i in range(3):
        # skin-like flat colour with fine texture noise: what a smoothing filter visibly changes
        shape = (h, w, 3) if cam.channels == 3 else (h, w)
        img = np.clip(150 + rng.normal(0, 12, shape), 0, 255).astype(np.uint8)
        s.write_image(cam.name, f"{i:06d}.png", img)
        recs.append(FrameRecord(i, 10**9 + i * 33_333_333 + k, file=f"{i:06d}.png"))
    s.write_frames(cam.name, recs)
from reconstruct.plugins import REQUIRED
probe = make_plugin_manager()
others = [n for n, i in probe.infos.items() if i.builtin and n not in ("age",) + REQUIRED]
host = make_plugin_manager(disable=others, extra_plugins=[("nofit", NoFitPlugin())])
res = []  # the core stages cannot be disabled: run just the three this test needs (fit: a stand-in)
for stage in ("sync", "fit", "age"):
    res += run_pipeline(RunConfig(session=root, method="example_smooth", only_stage=stage), host)
print(json.dumps([r.name for r in res]))
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory, repo_root) -> Path:
    import shutil

    site = tmp_path_factory.mktemp("site")
    src = tmp_path_factory.mktemp("src") / "example_plugin"  # build from a copy: no build/ in the source tree
    shutil.copytree(repo_root / "tools" / "example_plugin", src)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(site), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return site


def _env(site: Path, repo_root: Path) -> dict:
    return dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{repo_root}", COLUMNS="200")


def test_listed_with_distribution_version_and_hooks(plugin_site, repo_root):
    out = subprocess.run([sys.executable, "-m", "reconstruct.cli", "plugins"], capture_output=True, text=True,
                         env=_env(plugin_site, repo_root), check=True).stdout
    line = next(l for l in out.splitlines() if "example_smooth" in l)
    assert "deage-example-plugin" in line and "0.2.0" in line and "register_aging_methods" in line


def test_used_by_run(plugin_site, repo_root, tmp_path):
    import json

    import numpy as np

    from reconstruct.session import Session

    r = subprocess.run([sys.executable, "-c", USE, str(tmp_path / "s"), str(repo_root / "rigs" / "test-small.toml")],
                       capture_output=True, text=True, env=_env(plugin_site, repo_root), cwd=repo_root)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == ["sync", "fit", "age"]
    edits = json.loads((tmp_path / "s" / "out" / "age" / "edits.json").read_text())
    assert edits["method"] == "example_smooth" and set(edits["frames"]) == {"0", "1", "2"}
    from reconstruct.artifacts import load_edit

    s = Session.open(tmp_path / "s")
    raw = s.read_image("hero", "000001.png")
    plate = raw.astype(np.float32) / 255
    # stored as the crop it changes (FaceEdit.origin, 16-bit): back on the plate's grid
    d = load_edit(tmp_path / "s" / "out" / "age" / "000001.npz").on_plate(raw)
    d = {"image": d.image, "mask": d.mask}
    inside = d["mask"] > 0.3
    assert inside.any() and (d["mask"][0, 0] < 1e-3)  # face region only, not the corner
    assert np.abs(d["image"][inside] - plate[inside]).mean() > 0.02  # the method really changed the face
