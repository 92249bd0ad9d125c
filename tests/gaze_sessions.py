"""Two synthetic sessions of one performance that differ only in the eyes (for the gaze tests of the report and
the composite): ``plate`` looks around (``gaze_deg``) and has been run through the pipeline up to the fit;
``still`` looks straight ahead (rendered only)."""

from __future__ import annotations

from pathlib import Path


def make_gaze_pair(base: Path, repo_root: Path, frames: int, seed: int = 1, gaze_deg: float = 20.0):
    """(plate Session, still session folder, plugin host, {output frame: hero frame file name})."""
    from reconstruct.engine import run_pipeline
    from reconstruct.stage import RunConfig
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.rig import load_rig
    from reconstruct.session import Session
    from reconstruct.synth.session import SynthSpec, generate_session

    rig = load_rig(repo_root / "rigs" / "test-small.toml")
    plate, still = base / "plate", base / "still"
    generate_session(rig, plate, SynthSpec(frames=frames, seed=seed, model="ict", gaze_deg=gaze_deg, calib_poses=24))
    generate_session(rig, still, SynthSpec(frames=frames, seed=seed, model="ict", gaze_deg=0, calib_poses=0))
    host = make_plugin_manager()
    run_pipeline(RunConfig(session=plate, device="cpu"), host)
    s = Session.open(plate)
    hero = s.rig.hero.name
    recs = {r.index: r for r in s.frames(hero)}
    files = {fs.frame: recs[fs.indices[hero]].file for fs in s.read_sync() if fs.indices.get(hero) is not None}
    return s, still, host, files
