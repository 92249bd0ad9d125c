"""Options: one strict parser for every stage, method and executor; misspellings stop a run before any stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from reconstruct.cli import main
from reconstruct.errors import ConfigError
from reconstruct.options import (option, parse_flag, parse_run_options, parse_settings, parse_value,
                                 settings_dict)


@dataclass(frozen=True, slots=True)
class Demo:
    n: int = option(3, "a count")
    on: bool = option(False, "a switch")
    loss: Literal["huber", "l2"] = option("huber", "a choice")
    scale: float | None = option(None, "optional number")
    where: Path = option(Path("x"), "a path")

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"demo.n={self.n}: must be >= 0")


@pytest.mark.parametrize("text, hint, value", [
    ("Yes", bool, True), ("off", bool, False), ("0", bool, False), ("12", int, 12), ("1e-3", float, 1e-3),
    ("l2", Literal["huber", "l2"], "l2"), ("none", float | None, None), ("2.5", float | None, 2.5),
    ("a/b", Path, Path("a/b")), (" spaced ", str, "spaced"),
])
def test_values_parse(text, hint, value):
    assert parse_value(text, hint) == value


@pytest.mark.parametrize("text, hint, why", [
    ("ture", bool, "true or false"), ("1.5", int, "whole number"), ("nan", float, "finite"),
    ("inf", float, "finite"), ("lasso", Literal["huber", "l2"], "one of huber, l2"), ("x", float | None, "number"),
])
def test_bad_values_say_what_was_expected(text, hint, why):
    with pytest.raises(ValueError, match=why):
        parse_value(text, hint)


def test_flag_is_strict():
    assert parse_flag("TRUE") and not parse_flag("no")
    with pytest.raises(ValueError):
        parse_flag("maybe")


def test_settings_parse_with_defaults_and_checks():
    s = parse_settings(Demo, {"n": "5", "on": "yes", "scale": "0.5"}, "demo")
    assert (s.n, s.on, s.loss, s.scale, s.where) == (5, True, "huber", 0.5, Path("x"))
    assert settings_dict(s) == {"n": 5, "on": True, "loss": "huber", "scale": 0.5, "where": "x"}
    with pytest.raises(ConfigError, match=r"demo has no option 'nn' \(did you mean demo.n\?\)") as ei:
        parse_settings(Demo, {"nn": "5"}, "demo")
    assert "demo.n, demo.on, demo.loss, demo.scale, demo.where" in ei.value.hint
    with pytest.raises(ConfigError, match=r"--option demo.on=ture: expected true or false") as ei:
        parse_settings(Demo, {"on": "ture"}, "demo")
    assert "demo.on: bool (default false) - a switch" in ei.value.hint
    with pytest.raises(ConfigError, match=r"demo.n=-1: must be >= 0"):
        parse_settings(Demo, {"n": "-1"}, "demo")


def test_run_options_check_every_namespace():
    declared = {"demo": Demo, "legacy": None}
    got = parse_run_options({"demo.n": "1", "legacy.anything": "x"}, declared)
    assert got["demo"].n == 1 and got["legacy"] == {"anything": "x"}  # a plugin without Settings: passed on
    assert got["demo"] == Demo(n=1)
    with pytest.raises(ConfigError, match=r"no stage, method or executor is named 'deom' \(did you mean demo.n\?\)"):
        parse_run_options({"deom.n": "1"}, declared)
    with pytest.raises(ConfigError, match="NAMESPACE.KEY=VALUE"):
        parse_run_options({"scale": "2"}, declared)


@pytest.mark.parametrize("opt, says", [
    ("fit.photometric=ture", "expected true or false"),
    ("fti.photometric=1", "did you mean fit.photometric"),
    ("sync.methd=tick", "did you mean sync.method"),
    ("report.stiff_expresion=0.5", "did you mean report.stiff_expression"),
    ("frames.chunk=0", "frames.chunk=0: must be at least 1"),
    ("composite.color=sepia", "composite.color=sepia: unknown"),
])
@pytest.mark.parametrize("where", [[], ["--only", "fit"], ["--from", "detect"]])
def test_misspelled_options_exit_2_before_any_stage(tmp_path, capsys, opt, says, where):
    """Whatever --only/--from say, nothing runs: not even the session is opened (it does not exist here)."""
    code = main(["run", str(tmp_path / "no-session"), "--option", opt, *where])
    assert code == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "no-session").exists()


def test_plugin_flag_reaches_the_method_settings():
    """``--young-refs`` (registered by the digital_human plugin with dest digital_human.young_refs) is parsed with
    the method's Settings like ``--option digital_human.young_refs``; the generic run command names no plugin flag."""
    import argparse

    from reconstruct.commands.run import plugin_flags

    ns = argparse.Namespace(**{"digital_human.young_refs": Path("refs"), "render.renderer": None, "jobs": 2})
    assert plugin_flags(ns) == {"digital_human.young_refs": "refs"}
    run_source = Path(__file__).resolve().parents[1] / "reconstruct" / "commands" / "run.py"
    assert "young_refs" not in run_source.read_text() and "renderer" not in run_source.read_text()


def test_every_builtin_stage_and_method_declares_settings():
    """Built-ins parse strictly: none falls back to the unchecked pass-through of plugins without Settings."""
    import dataclasses

    from reconstruct.engine import declared_settings
    from reconstruct.plugins import make_plugin_manager

    host = make_plugin_manager(disable=["all-external"])
    declared = declared_settings(host.components())
    assert {"sync", "calibrate", "detect", "fit", "age", "render", "composite", "report", "digital_human", "fran",
            "deepfake", "frames", "ray"} <= set(declared)
    for ns, cls in declared.items():
        assert cls is not None and dataclasses.is_dataclass(cls), ns
        assert cls.__dataclass_params__.frozen, f"{ns}.Settings must be frozen"
    with pytest.raises(ConfigError, match="age has no option 'x'"):
        from reconstruct.options import parse_run_options

        parse_run_options({"age.x": "1"}, declared)
