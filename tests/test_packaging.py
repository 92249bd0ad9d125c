"""The installed packages: every package folder is listed in pyproject.toml, and the built-in plugins install under
their own import name (``deage_plugins``), not the generic ``plugins``."""

from __future__ import annotations

import tomllib


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
