"""Networked rigs: CURVE key files are private, and with CURVE on the clock binds where remote cameras can reach it."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from capture.recorder import Recorder
from capture.security import clock_endpoint, make_keys
from reconstruct.rig import load_rig

from .conftest import write_rig


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_secret_keys_are_0600_public_keys_follow_the_umask(tmp_path):
    """Before: every key file was written 0644 under umask 022 (secrets world-readable)."""
    old = os.umask(0o022)
    try:
        keys = make_keys(tmp_path / "keys", ["hero", "ir-left"])
    finally:
        os.umask(old)
    secrets = [keys / "server.key_secret", keys / "clients" / "hero.key_secret", keys / "clients" / "ir-left.key_secret"]
    publics = [keys / "server.key", keys / "clients" / "hero.key", keys / "clients" / "ir-left.key"]
    assert {p.name: _mode(p) for p in secrets} == {p.name: 0o600 for p in secrets}
    assert {p.name: _mode(p) for p in publics} == {p.name: 0o644 for p in publics}
    assert sorted(p.name for p in (keys / "clients").iterdir()) == ["hero.key", "hero.key_secret", "ir-left.key",
                                                                   "ir-left.key_secret"]  # no temporary left


def test_a_world_readable_secret_from_an_older_version_is_made_private(tmp_path, caplog):
    keys = make_keys(tmp_path / "keys", ["hero"])
    secret = keys / "clients" / "hero.key_secret"
    before = secret.read_bytes()
    os.chmod(secret, 0o644)
    with caplog.at_level(logging.WARNING, logger="capture.security"):
        make_keys(keys, ["hero"])
    assert _mode(secret) == 0o600 and secret.read_bytes() == before  # kept, not regenerated
    assert any("readable by other users" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("tick, data, curve, explicit, expected", [
    ("tcp://127.0.0.1:5550", "tcp://10.0.0.5:5551", True, False, "tcp://10.0.0.5:5550"),  # the fix
    ("tcp://127.0.0.1:0", "tcp://10.0.0.5:41234", True, False, "tcp://10.0.0.5:0"),
    ("tcp://[::1]:5550", "tcp://[fd00::5]:5551", True, False, "tcp://[fd00::5]:5550"),
    ("tcp://127.0.0.1:5550", "tcp://10.0.0.5:5551", False, False, "tcp://127.0.0.1:5550"),  # no CURVE: loopback
    ("tcp://127.0.0.1:5550", "tcp://10.0.0.5:5551", True, True, "tcp://127.0.0.1:5550"),  # --tick-endpoint wins
    ("tcp://127.0.0.1:5550", "tcp://127.0.0.1:5551", True, False, "tcp://127.0.0.1:5550"),  # all local
    ("tcp://10.0.0.9:5550", "tcp://10.0.0.5:5551", True, False, "tcp://10.0.0.9:5550"),  # rig names an interface
])
def test_clock_endpoint(tick, data, curve, explicit, expected):
    assert clock_endpoint(tick, data, curve, explicit) == expected


def test_with_curve_on_a_non_loopback_interface_the_clock_binds_that_interface(tmp_path):
    """127.0.0.2 stands in for a rig network address (it is not in the loopback list, so binding it needs CURVE).
    Before: the recorder listened on 127.0.0.2 but the clock on 127.0.0.1, out of reach of remote cameras."""
    rig = load_rig(write_rig(tmp_path / "rig.toml"))  # tick_endpoint = tcp://127.0.0.1:0
    keys = make_keys(tmp_path / "keys", rig.camera_names)
    from capture.recorder import RecordOptions

    res = Recorder(rig, tmp_path / "t", RecordOptions(frames=10, data_endpoint="tcp://127.0.0.2:0",
                                                        curve_keys=str(keys), status_interval=0.25)).run()
    ep = res.report["endpoints"]
    assert ep["data"].startswith("tcp://127.0.0.2:") and ep["clock"].startswith("tcp://127.0.0.2:"), ep
    assert res.state == "complete" and all(len(res.session.frames(c)) == 10 for c in rig.camera_names)
