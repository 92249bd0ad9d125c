"""The installed packages: every package folder is listed in pyproject.toml, the built-in plugins install under
their own import name (``deage_plugins``), not the generic ``plugins``, and a wheel holds the runtime assets."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile


def _config(repo_root):
    return tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_installed(repo_root):
    cfg = _config(repo_root)
    listed = set(cfg["packages"])
    dirs = cfg["package-dir"]
    folders = set()
    for top in ("capture", "reconstruct", "plugins"):
        for init in (repo_root / top).rglob("__init__.py"):
            rel = init.parent.relative_to(repo_root).parts
            name = ".".join(rel)
            if rel[0] == "plugins":
                name = ".".join(("deage_plugins",) + rel[1:])
            folders.add(name)
    assert folders == listed, f"pyproject.toml packages differ from the folders: {folders ^ listed}"
    assert dirs["deage_plugins"] == "plugins"


def test_builtin_plugins_import_under_their_own_name():
    import importlib.util

    spec = importlib.util.find_spec("deage_plugins.fit_stage")
    assert spec is not None and spec.origin.replace("\\", "/").endswith("plugins/fit_stage.py")
    from importlib import metadata

    eps = {ep.name: ep.value for ep in metadata.entry_points(group="reconstruct") if ep.dist.name == "deage"}
    assert eps and all(v.startswith("deage_plugins.") for v in eps.values()), eps


def test_a_built_wheel_holds_every_runtime_asset(repo_root, tmp_path):
    """The package data of reconstruct/assets (models, licences, SOURCES.md) lands in the wheel, not only in a clone."""
    src = tmp_path / "src"  # build from a copy: no build/ or egg-info in the source tree
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(repo_root / name, src / name)
    for top in ("capture", "reconstruct", "plugins"):
        shutil.copytree(repo_root / top, src / top, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "dist").mkdir()
    r = subprocess.run([sys.executable, "-c", "from setuptools import build_meta; build_meta.build_wheel('dist')"],
                       cwd=src, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    zf = zipfile.ZipFile(next((src / "dist").glob("*.whl")))
    wheel = set(zf.namelist())
    assets = {p.relative_to(repo_root).as_posix() for p in (repo_root / "reconstruct" / "assets").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert len(assets) >= 11 and assets <= wheel, assets - wheel
    # the project's own licence travels with it, declared as an SPDX expression (PEP 639)
    meta = zf.read(next(n for n in wheel if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in meta.splitlines(), meta[:600]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel), sorted(n for n in wheel if "dist-info" in n)
