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


def _cli(argv):
    """The reconstruct CLI with the built-ins plus this file's test methods."""
    import logging

    from reconstruct.cli import build_parser, run_cli

    def factory(disable=()):
        host = make_plugin_manager(disable=disable)
        host.pm.register(TestMethods(), name="test-methods")
        return host

    return run_cli(argv, build_parser, logging.getLogger("test"), "interrupted", host_factory=factory)


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

    # the hint's command works as written (through the CLI, with the test methods registered)
    assert _cli(["consent", "add", str(session_dir), "--performer", "Ann Actor", "--reference", "stills 1985",
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
    host = make_plugin_manager()
    # a built-in that fails to import must fail this test, not skip it (a broken plugin would skip consent checks)
    assert not {n: why for n, why in host.failed.items() if host.infos[n].builtin}
    methods = host.components().all("aging_method")
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


@pytest.mark.parametrize("table, missing", [
    ('performer = "Ann"\nreference = "r"\ngranted_by = "Ann"\ndate = "2026-03-01"', "scope is missing"),
    ('performer = " "\nreference = "r"\ngranted_by = "Ann"\ndate = "2026-03-01"\nscope = ["*"]',
     "performer is missing or blank"),
    ('performer = "Ann"\nreference = "r"\ndate = "2026-03-01"\nscope = ["*"]', "granted_by is missing"),
    ('performer = "Ann"\nreference = "r"\ngranted_by = "Ann"\ndate = "not a date"\nscope = ["*"]',
     "is not a date"),
])
def test_a_hand_written_record_needs_every_field(session_dir, table, missing):
    """A [[consent]] without an explicit scope used to read as '*'; blank names and non-dates passed too."""
    toml = session_dir / "session.toml"
    toml.write_text(toml.read_text() + "\n[[consent]]\n" + table + "\n")
    with pytest.raises(ConsentError, match=missing) as ei:
        check_consent(Session.open(session_dir), SwapFace())
    assert ei.value.exit_code == 11
    run_pipeline(RunConfig(session=session_dir, method="gentle"), _host())  # the session itself still opens and runs


def test_consent_yes_is_not_a_traceback(session_dir, capsys):
    toml = session_dir / "session.toml"
    toml.write_text('consent = "yes"\n' + toml.read_text())
    with pytest.raises(ConsentError, match="consent must be a \\[\\[consent\\]\\] table"):
        check_consent(Session.open(session_dir), SwapFace())
    assert _cli(["run", str(session_dir), "--method", "swapface"]) == 11
    before = toml.read_text()  # adding a record would rewrite (and lose) the hand-written entry: refused
    assert _cli(["consent", "add", str(session_dir), "--performer", "P", "--reference", "R", "--granted-by", "P",
                 "--date", "2026-01-01", "--scope", "swapface"]) == 3
    assert toml.read_text() == before


def test_consent_add_rejects_an_unknown_method(session_dir, capsys):
    assert _cli(["consent", "add", str(session_dir), "--performer", "P", "--reference", "R", "--granted-by", "P",
                 "--date", "2026-01-01", "--scope", "swapface,nosuchmethod"]) == 2
    assert "nosuchmethod: no such method" in " ".join(capsys.readouterr().err.split())
    assert Session.open(session_dir).meta.consent == ()
