"""Plugin host: entry points, validation, disabling, failures, component lookup."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reconstruct.errors import ComponentNotFound, ConfigError, PluginError
from reconstruct.plugins import make_plugin_manager
from tests.stage_plugins import Misspelled, Recorder, StagesPlugin


def test_builtins_come_from_entry_points():
    host = make_plugin_manager()
    assert {"sync", "age"} <= set(host.infos)
    info = host.infos["sync"]
    assert info.builtin and info.distribution == "deage" and "register_stages" in info.hooks


def test_misspelled_hook_fails_with_plugin_name():
    with pytest.raises(PluginError, match=r"plugin 'typo'.*register_stagez"):
        make_plugin_manager(extra_plugins=[("typo", Misspelled())], load_entry_points=False)


def test_disabled_plugin_is_not_called(monkeypatch):
    rec = Recorder()
    host = make_plugin_manager(disable=["rec"], extra_plugins=[("rec", rec), ("stages", StagesPlugin())])
    assert "rec" in host.disabled
    assert host.pm.get_plugin("rec") is None
    monkeypatch.setenv("RECONSTRUCT_DISABLE_PLUGINS", "render, age")
    host = make_plugin_manager()
    assert host.infos["age"].status == "disabled" and host.pm.get_plugin("age") is None
    with pytest.raises(ComponentNotFound, match="no stage named 'age'") as ei:
        host.components().get("stage", "age")
    assert "disabled" in str(ei.value)


@pytest.mark.parametrize("name", ["sync", "calibrate", "detect", "fit"])
def test_the_core_pipeline_cannot_be_disabled(monkeypatch, name, capsys):
    from reconstruct.cli import main

    with pytest.raises(ConfigError, match=f"--disable-plugin {name}: the core pipeline"):
        make_plugin_manager(disable=[name])
    monkeypatch.setenv("RECONSTRUCT_DISABLE_PLUGINS", name)
    with pytest.raises(ConfigError, match=f"RECONSTRUCT_DISABLE_PLUGINS {name}"):
        make_plugin_manager()
    monkeypatch.delenv("RECONSTRUCT_DISABLE_PLUGINS")
    assert main(["plugins", "--disable-plugin", name]) == 2  # a usage error, as the README says
    assert "cannot be disabled" in " ".join(capsys.readouterr().err.split())


def test_disabling_an_unknown_plugin_names_it(capsys):
    from reconstruct.cli import main

    with pytest.raises(ConfigError, match="cannot disable 'nosuchplugin': no plugin has that name") as ei:
        make_plugin_manager(disable=["nosuchplugin", "fran"])
    assert "digital_human" in ei.value.hint
    assert main(["plugins", "--disable-plugin", "nosuchplugin"]) == 2
    assert "nosuchplugin" in capsys.readouterr().err


def test_unknown_component_lists_what_exists():
    host = make_plugin_manager(extra_plugins=[("stages", StagesPlugin())])
    comps = host.components()
    assert {"sync", "numbers", "squares"} <= set(comps.all("stage"))
    with pytest.raises(ComponentNotFound, match="available: .*numbers"):
        comps.get("stage", "nope")


def test_duplicate_component_names_are_an_error():
    host = make_plugin_manager(extra_plugins=[("a", StagesPlugin()), ("b", StagesPlugin())], load_entry_points=False)
    with pytest.raises(PluginError, match="two plugins register a stage named"):
        host.components().all("stage")


def test_plugin_that_fails_to_import_is_reported_and_run_continues(tmp_path):
    """A broken third-party distribution: the host logs its name and carries on without it."""
    site = tmp_path / "site"
    dist = site / "broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[reconstruct]\nbroken = broken_plugin_mod\n")
    (site / "broken_plugin_mod.py").write_text("raise ImportError('needs libfoo')\n")
    code = ("from reconstruct.plugins import make_plugin_manager as m; h = m(); "
            "print(h.failed['broken']); print(sorted(h.components().all('stage')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, check=True)
    assert "ImportError: needs libfoo" in out.stdout and "'sync'" in out.stdout
    assert "broken" in out.stderr  # the warning names the plugin
    cli = subprocess.run([sys.executable, "-m", "reconstruct.cli", "plugins"], capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert cli.returncode == 0 and "broken" in cli.stdout and "failed" in cli.stdout
