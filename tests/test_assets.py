"""Runtime assets ship inside the package with their licences and checksums, the product never reads ../shared, and
a fresh clone (no ../shared beside it) has the built-in ICT model, MediaPipe correspondences and a demo that runs."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconstruct import assets
from reconstruct.errors import DeageError

ASSETS = Path(assets.__file__).parent
# what native libraries print when they are not silenced (reconstruct.native_logs)
NOISE = ("setPreferableTarget", "inference_feedback_manager", "absl::InitializeLog", "TensorFlow Lite",
         "landmark_projection_calculator")


def _checksums() -> dict[str, tuple[int, str]]:
    rows = re.findall(r"^\| ([\w./-]+) \| (\d+) \| ([0-9a-f]{64}) \|$", (ASSETS / "SOURCES.md").read_text(), re.M)
    return {name: (int(size), sha) for name, size, sha in rows}


def test_every_asset_is_listed_with_size_checksum_and_licence():
    table = _checksums()
    on_disk = {p.relative_to(ASSETS).as_posix() for p in ASSETS.rglob("*")
               if p.is_file() and p.parent != ASSETS and "__pycache__" not in p.parts}
    assert on_disk == set(table), on_disk ^ set(table)
    for name, (size, sha) in table.items():
        data = (ASSETS / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha), name
    for folder in {Path(n).parent for n in table}:
        assert any(Path(n).parent == folder and Path(n).name.startswith("LICENSE") for n in table), folder


def test_asset_paths_are_files_of_the_package():
    for path in (assets.ict_light_path(), assets.mediapipe_canonical_path(), assets.yunet_path(), assets.haar_path()):
        assert path.is_file() and ASSETS in path.parents, path


def test_a_missing_asset_says_to_reinstall():
    with pytest.raises(DeageError, match="nosuch/file.bin is missing from the installed package"):
        assets.asset_path("nosuch", "file.bin")


def test_the_product_never_reads_shared_data(repo_root):
    """Only tests read ../shared (one fixture, tests/conftest.py); the product reads its own package data."""
    pattern = re.compile(r"""DEAGE_SHARED_DATA|\.\./shared|shared/data|["']shared["']\s*/\s*["']data["']""")
    offenders = [f"{p.relative_to(repo_root)}:{i}: {line.strip()}"
                 for top in ("reconstruct", "plugins", "capture") for p in sorted((repo_root / top).rglob("*.py"))
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, "\n".join(offenders)


@pytest.fixture
def no_shared_data(tmp_path, monkeypatch):
    """A user's machine: ../shared is not there (DEAGE_SHARED_DATA points to an empty folder), empty caches."""
    from reconstruct.face import store

    empty = tmp_path / "empty-shared"
    empty.mkdir()
    monkeypatch.setenv("DEAGE_SHARED_DATA", str(empty))
    monkeypatch.setenv("DEAGE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("DEAGE_CACHE_DIR", str(tmp_path / "cache"))
    store.load_demo.cache_clear()
    yield empty
    store.load_demo.cache_clear()


def test_without_shared_data_ict_is_built_in_and_demo_has_mediapipe_points(no_shared_data):
    """Before: only ``demo`` was listed and it had no ``mediapipe478`` map, so `reconstruct demo` exited 8."""
    from reconstruct.face.store import builtin_sources, load_demo

    assert {s.name for s in builtin_sources()} == {"demo", "ict"}
    demo = load_demo()
    lm = demo.landmark_map("mediapipe478")
    assert (lm.triangle[:468] >= 0).sum() >= 400  # measured 468 of 468 canonical points placed on the demo mesh


@pytest.fixture(scope="module")
def fresh_clone_demo(tmp_path_factory, repo_root):
    """`reconstruct demo` (2 frames, no aging method) as on a new machine: no ../shared, empty model cache and models
    dir (a cache filled where ../shared was present would hide a missing asset), a 40-column terminal."""
    tmp = tmp_path_factory.mktemp("fresh")
    (tmp / "empty-shared").mkdir()
    env = dict(os.environ, DEAGE_SHARED_DATA=str(tmp / "empty-shared"), DEAGE_CACHE_DIR=str(tmp / "cache"),
               DEAGE_MODELS_DIR=str(tmp / "models"), COLUMNS="40")
    return subprocess.run([sys.executable, "-m", "reconstruct.cli", "demo", str(tmp / "demo"), "--frames", "2",
                           "--method", "none"], cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)


def test_demo_runs_without_shared_data(fresh_clone_demo):
    r = fresh_clone_demo
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in ("detect", "fit", "report"):  # the stage summary
        assert re.search(rf"^\s+{stage}\s+done in", r.stdout + r.stderr, re.M), r.stderr[-3000:]


def test_demo_prints_no_native_library_noise(fresh_clone_demo):
    """The demo runs MediaPipe (detect, report) and YuNet; none of their native log lines reach the user."""
    err = fresh_clone_demo.stderr
    assert fresh_clone_demo.returncode == 0, err[-3000:]
    assert not [n for n in NOISE if n in err], err
