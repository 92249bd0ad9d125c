"""Consent: `reconstruct consent add|list`, and identity-changing methods refused without a covering record."""

from __future__ import annotations

import numpy as np
import pytest

import deage_plugins.age_stage
import deage_plugins.sync_stage
from reconstruct import hookimpl
from reconstruct.cli import main
from reconstruct.engine import run_pipeline
from reconstruct.stage import RunConfig
from reconstruct.errors import ConsentError
from reconstruct.methods import BaseMethod, FaceEdit, check_consent
from reconstruct.plugins import make_plugin_manager
from reconstruct.session import ConsentRecord, Session
from tests.stage_plugins import NoFitStage
from tests.tiny_session import make_tiny_session


class SwapFace(BaseMethod):
    """Test method that changes identity (stands in for deepfake/fran/digital_human)."""

    name = "swapface"
    identity_changing = True

    def apply(self, ctx, frame):
        h, w = frame.plate.shape[:2]
        return FaceEdit(frame=frame.frame, kind="image", image=np.zeros((h, w, 3), np.float32),
                        mask=np.zeros((h, w), np.float32), info={"ok": True})


class Gentle(SwapFace):
    """Test method that keeps identity."""

    name = "gentle"
    identity_changing = False




class TestMethods:
    @hookimpl
    def register_aging_methods(self):
        return [SwapFace, Gentle]

    @hookimpl
    def register_stages(self):
        return [NoFitStage()]


def _host():
    return make_plugin_manager(load_entry_points=False, extra_plugins=[
        ("sync", deage_plugins.sync_stage), ("age", deage_plugins.age_stage), ("test-methods", TestMethods())])


@pytest.fixture()
def session_dir(tmp_path):
    return make_tiny_session(tmp_path / "shot", frames=3)


def test_identity_changing_method_refused_then_runs_with_consent(session_dir, capsys):
    host = _host()
    with pytest.raises(ConsentError) as ei:
        run_pipeline(RunConfig(session=session_dir, method="swapface"), host)
    err = ei.value
    assert err.exit_code == 11 and "swapface" in err.message
    assert f"reconstruct consent add {session_dir}" in err.hint and "--scope swapface" in err.hint
    assert not (session_dir / "out" / "age" / "edits.json").exists()

    # the hint's command works as written (through the real CLI)
    assert main(["consent", "add", str(session_dir), "--performer", "Ann Actor", "--reference", "stills 1985",
                 "--granted-by", "Ann Actor", "--date", "2026-03-01", "--scope", "swapface,fran",
                 "--document", "legal/ann.pdf"]) == 0
    meta = Session.open(session_dir).meta
    assert meta.consent[0].scope == ("swapface", "fran") and meta.consent[0].document == "legal/ann.pdf"

    results = run_pipeline(RunConfig(session=session_dir, method="swapface"), _host())
    assert [r.name for r in results][-1] == "age"
    assert (session_dir / "out" / "age" / "edits.json").exists()

    assert main(["consent", "list", str(session_dir)]) == 0
    out = capsys.readouterr().out
    assert "Ann Actor" in out and "swapface" in out


def test_consent_for_another_method_does_not_cover(session_dir):
    Session.open(session_dir).add_consent(ConsentRecord("Ann", "stills", "Ann", "2026-03-01", ("deepfake",)))
    with pytest.raises(ConsentError):
        run_pipeline(RunConfig(session=session_dir, method="swapface"), _host())


def test_identity_keeping_method_needs_no_consent(session_dir):
    run_pipeline(RunConfig(session=session_dir, method="gentle"), _host())
    assert (session_dir / "out" / "age" / "edits.json").exists()


@pytest.mark.parametrize("method", ["deepfake", "fran", "digital_human"])
def test_builtin_identity_changing_methods_are_refused(session_dir, method):
    methods = make_plugin_manager().components().all("aging_method")
    if method not in methods:
        pytest.skip(f"built-in method {method!r} is not installed in this checkout (its plugin is not registered)")
    cls = methods[method]
    assert cls.identity_changing is True
    with pytest.raises(ConsentError, match="reconstruct consent add"):
        check_consent(Session.open(session_dir), cls())
    assert main(["consent", "add", str(session_dir), "--performer", "P", "--reference", "R", "--granted-by", "P",
                 "--date", "2026-01-01", "--scope", "*"]) == 0
    check_consent(Session.open(session_dir), cls())  # covered by '*': no error


@pytest.mark.parametrize("argv, exit_code", [
    (["--date", "01/03/2026"], 2),
    (["--scope", " , "], 2),
])
def test_consent_add_rejects_bad_input(session_dir, argv, exit_code):
    base = {"--performer": "P", "--reference": "R", "--granted-by": "P", "--date": "2026-01-01", "--scope": "fran"}
    base.update(dict(zip(argv[::2], argv[1::2])))
    args = ["consent", "add", str(session_dir)] + [x for kv in base.items() for x in kv]
    assert main(args) == exit_code
    assert Session.open(session_dir).meta.consent == ()


def test_consent_list_empty_and_not_a_session(session_dir, tmp_path, capsys):
    assert main(["consent", "list", str(session_dir)]) == 0
    assert "no consent records" in capsys.readouterr().out
    assert main(["consent", "list", str(tmp_path)]) == 3
