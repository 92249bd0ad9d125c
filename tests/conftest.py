"""Shared fixtures. Real test data lives in ../shared/data (never copied into the repo; the runtime assets the
product needs ship in reconstruct/assets instead)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("DEAGE_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real test data (../shared/data). Skips the test with a clear reason when it is absent."""
    d = _shared_data_dir()
    if not (d / "README.md").exists():
        pytest.skip(f"real test data not found at {d} (set DEAGE_SHARED_DATA to its location)")
    return d


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _limit_threads(monkeypatch):
    """Tests run on small CI machines: keep torch/BLAS from oversubscribing the cores."""
    try:
        import torch

        torch.set_num_threads(2)
    except Exception:  # torch absent in a minimal environment
        pass
    monkeypatch.delenv("RECONSTRUCT_DISABLE_PLUGINS", raising=False)
