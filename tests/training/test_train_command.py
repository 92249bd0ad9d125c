"""``reconstruct train``: consent, checkpoint, --resume, --fresh, usage errors, per-method help."""

from __future__ import annotations

import pytest

from reconstruct.cli import main
from reconstruct.demo import demo_rig_path
from reconstruct.rig import load_rig
from reconstruct.session import ConsentRecord, Session

TINY = ["--size", "16", "--crop", "16", "--width", "4", "--depth", "2", "--batch", "2", "--persons", "4",
        "--holdout", "1", "--threads", "1", "--checkpoint-every", "2", "--preview-every", "2", "--log-every", "2",
        "--device", "cpu"]


@pytest.fixture
def session(tmp_path):
    return Session.create(tmp_path / "s", load_rig(demo_rig_path()), name="take-1")


def test_train_needs_consent_then_trains_resumes_and_refuses_to_overwrite(session, capsys):
    root = str(session.root)
    assert main(["train", "fran", root, "--steps", "4", *TINY]) == 11  # ConsentError exit code
    session.add_consent(ConsentRecord(performer="Synthetic Person", reference="procedural faces",
                                      granted_by="Synthetic Person", date="2026-11-25", scope=("fran",)))
    assert main(["train", "fran", root, "--steps", "4", *TINY]) == 0
    out = capsys.readouterr().out
    assert "fran: step 4" in out and "validation: val_l1=" in out
    work = session.root / "out" / "methods" / "fran"
    assert (work / "checkpoint.pt").exists() and (work / "previews" / "step_0000004.png").exists()
    assert (work / "loss.csv").read_text().count("\n") == 5
    assert main(["train", "fran", root, "--steps", "4", *TINY]) == 10  # exists: needs --resume or --fresh
    assert main(["train", "fran", root, "--steps", "6", "--resume", *TINY]) == 0
    assert "fran: step 6" in capsys.readouterr().out
    assert main(["train", "fran", root, "--steps", "2", "--fresh", *TINY]) == 0
    assert main(["train", "fran", root, "--resume", "--fresh", *TINY]) == 2


def test_corrupt_checkpoint_exit_code(session):
    session.add_consent(ConsentRecord("P", "r", "P", "2026-11-25", ("*",)))
    work = session.root / "out" / "methods" / "fran"
    work.mkdir(parents=True)
    (work / "checkpoint.pt").write_bytes(b"PK\x03\x04 broken")
    assert main(["train", "fran", str(session.root), "--resume", "--steps", "2", *TINY]) == 10


def test_method_help_and_unknown_method(session, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "deepfake", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--young" in text and "--resume" in text and "examples:" in text
    assert main(["train", "no-such-method", str(session.root)]) == 4


def test_deepfake_training_needs_young_references(session, capsys):
    session.add_consent(ConsentRecord("P", "r", "P", "2026-11-25", ("deepfake",)))
    assert main(["train", "deepfake", str(session.root), "--steps", "2", "--device", "cpu"]) == 10  # MethodError
