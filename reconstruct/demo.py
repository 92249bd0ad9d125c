"""The built-in demo: a synthetic session generated on the spot, then ``reconstruct run`` on it."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from .engine import RunConfig, StageResult, run_pipeline
from .errors import SessionError
from .plugins import PluginHost
from .progress import Progress
from .rig import load_rig
from .synth import SynthSpec, TimelineSpec, generate_session, truth_dir

log = logging.getLogger(__name__)
DEMO_MARK = ".reconstruct-demo"


RIGS_DIR = Path(__file__).resolve().parents[1] / "rigs"


def demo_rig_path() -> Path:
    """The small test rig of the project (``rigs/test-small.toml``)."""
    return RIGS_DIR / "test-small.toml"


def run_demo(folder: Path, host: PluginHost, frames: int = 12, method: str | None = None, device: str = "cpu",
             progress: Progress | None = None) -> list[StageResult]:
    folder = Path(folder)
    if folder.exists():
        if not (folder / DEMO_MARK).exists():
            raise SessionError(f"{folder} exists and is not a demo session made by `reconstruct demo`",
                               hint="pass another folder: the demo never overwrites other data")
        shutil.rmtree(folder)
        shutil.rmtree(truth_dir(folder), ignore_errors=True)
    rig = load_rig(demo_rig_path())
    spec = SynthSpec(frames=frames, seed=1, timeline=TimelineSpec(
        offset_ns={"witness-left": 37_000_000, "witness-right": -12_000_000}, jitter_frac=0.2, drop_rate=0.05))
    generate_session(rig, folder, spec, progress=progress)
    (folder / DEMO_MARK).write_text("made by `reconstruct demo`\n")
    log.info("demo session in %s", folder)
    return run_pipeline(RunConfig(session=folder, method=method, device=device), host, progress=progress)
