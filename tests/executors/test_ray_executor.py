"""`--executor ray`: per-frame work as Ray tasks over frame chunks gives the same files as the local executor.

Starts one private local Ray instance (2 CPUs) for the module; skipped when Ray (the optional extra) is absent.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (optional extra: pip install 'deage[ray]')")

import deage_plugins.sync_stage  # noqa: E402
from reconstruct import hookimpl  # noqa: E402
from reconstruct.engine import run_pipeline  # noqa: E402
from reconstruct.executors.local import make_executor  # noqa: E402
from reconstruct.stage import RunConfig  # noqa: E402
from reconstruct.errors import StageError  # noqa: E402
from reconstruct.executors.ray_executor import RayExecutor, chunked  # noqa: E402
from reconstruct.plugins import make_plugin_manager  # noqa: E402
from reconstruct.progress import RecordingProgress  # noqa: E402
from reconstruct.session import Session  # noqa: E402
from tests.tiny_session import make_tiny_session  # noqa: E402

# the workers cannot import this test module by name: ship its functions by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def per_frame(args: tuple[str, int, str]) -> str:
    """One frame's work as a stage does it: read the plate from the session, compute with a per-frame seed,
    write the result into the stage folder, return its digest."""
    import os

    root, frame, out = args
    s = Session.open(root)
    fs = {f.frame: f for f in s.read_sync()}[frame]
    idx = fs.indices["hero"]
    plate = s.read_image("hero", {r.index: r for r in s.frames("hero")}[idx]) if idx is not None else np.zeros((4, 4, 3))
    rng = np.random.default_rng(1000 + frame)  # seeded by the frame, not by the process
    noise = rng.normal(0, 1, plate.shape[:2]).astype(np.float32)
    result = plate.astype(np.float32).mean(-1) * 0.5 + noise
    np.save(Path(out) / f"{frame:06d}.npy", result)
    return f"{os.getpid()}:{hashlib.sha256(result.tobytes()).hexdigest()}"


class NoiseStage:
    name = "noise"
    requires = ("sync",)
    version = "1"

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out):
        items = [(str(ctx.session.root), fs.frame, str(out)) for fs in ctx.session.read_sync()]
        res = ctx.executor.map(per_frame, items, ctx.progress, "noise")
        (out / "digests.txt").write_text("\n".join(r.split(":", 1)[1] for r in res) + "\n")
        (out / "pids.txt").write_text("\n".join(r.split(":", 1)[0] for r in res) + "\n")


class NoisePlugin:
    @hookimpl
    def register_stages(self):
        return [NoiseStage()]


def _host():
    return make_plugin_manager(load_entry_points=False, extra_plugins=[("sync", deage_plugins.sync_stage),
                                                                       ("noise", NoisePlugin())])


def _boom(x):
    if x == 5:
        raise ValueError(f"bad item {x}")
    return x


def test_chunking_covers_items_in_order():
    items = list(range(103))
    chunks = chunked(items, n_chunks=8, max_size=10)
    assert [x for c in chunks for x in c] == items and max(map(len, chunks)) <= 10
    assert chunked([], 4, 4) == [] and chunked([1], 8, 32) == [[1]]


def test_ray_run_matches_local_run(tmp_path):
    root = make_tiny_session(tmp_path / "shot", frames=24)
    run_pipeline(RunConfig(session=root), _host())
    local = {p.name: p.read_bytes() for p in (root / "out" / "noise").glob("*.npy")}
    local_digests = (root / "out" / "noise" / "digests.txt").read_text()
    local_pids = set((root / "out" / "noise" / "pids.txt").read_text().split())

    prog = RecordingProgress()
    cfg = RunConfig(session=root, executor="ray", jobs=2, from_stage="noise",
                    options={"ray.chunk_size": "4"})
    results = run_pipeline(cfg, _host(), progress=prog)
    assert [r.name for r in results if not r.skipped] == ["noise"]
    out = root / "out" / "noise"
    assert {p.name: p.read_bytes() for p in out.glob("*.npy")} == local  # byte-identical files
    assert (out / "digests.txt").read_text() == local_digests  # same results, same order
    pids = set((out / "pids.txt").read_text().split())
    assert not pids & local_pids  # the work really ran in Ray worker processes
    assert ["noise", len(local), len(local)] in prog.tasks  # progress advanced per item
    assert not ray.is_initialized()  # the private instance is stopped at the end of the run


def test_ray_task_error_becomes_stage_error():
    ex = RayExecutor(jobs=2, chunk_size=3)
    try:
        assert ex.map(lambda x: x * x, list(range(10))) == [x * x for x in range(10)]
        with pytest.raises(StageError, match="ValueError: bad item 5"):
            ex.map(_boom, list(range(10)), description="boom")
    finally:
        ex.close()
    assert not ray.is_initialized()


def test_make_executor_reads_address_and_options(tmp_path):
    from reconstruct.engine import engine_settings
    from reconstruct.options import parse_run_options

    cfg = RunConfig(session=tmp_path, executor="ray", address="ray://head:10001", jobs=3,
                    options={"ray.chunk_size": "8"})
    ex = make_executor(cfg, parse_run_options(cfg.options, engine_settings()))
    assert isinstance(ex, RayExecutor) and ex.address == "ray://head:10001" and ex.chunk_size == 8 and ex.jobs == 3
    ex.close()  # never started: nothing to stop


def test_detect_stage_on_ray_matches_local(tmp_path):
    """The real per-frame stage: MediaPipe landmarks of rendered synthetic faces, local vs Ray tasks."""
    landmarks = pytest.importorskip("deage_plugins.landmarks", reason="landmark detector plugin not in this checkout")
    import deage_plugins.detect_stage
    from reconstruct.demo import demo_rig_path
    from reconstruct.rig import load_rig
    from reconstruct.synth import SynthSpec, generate_session

    root = tmp_path / "faces"
    generate_session(load_rig(demo_rig_path()), root, SynthSpec(frames=4, seed=3, model="demo", calib_poses=0))
    host = make_plugin_manager(load_entry_points=False, extra_plugins=[
        ("sync", deage_plugins.sync_stage), ("detect", deage_plugins.detect_stage), ("landmarks", landmarks)])
    run_pipeline(RunConfig(session=root), host)
    local = dict(np.load(root / "out" / "detect" / "landmarks.npz"))
    assert local["found"].any()  # faces were found, so the comparison means something
    run_pipeline(RunConfig(session=root, executor="ray", jobs=2, from_stage="detect",
                           options={"ray.chunk_size": "2"}), host)
    on_ray = dict(np.load(root / "out" / "detect" / "landmarks.npz"))
    assert set(on_ray) == set(local)
    for k in local:
        np.testing.assert_array_equal(on_ray[k], local[k], err_msg=k)  # bit-identical landmarks
