"""age, render and composite send their per-frame work through ``ctx.executor.map`` in frame chunks: the files
they write are the same in process (jobs=1), in ``--jobs 2`` processes and as Ray tasks."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

import deage_plugins.age_stage
import deage_plugins.composite_stage
import deage_plugins.render_stage
import deage_plugins.sync_stage
from reconstruct.engine import run_pipeline
from reconstruct.stage import RunConfig
from reconstruct.executors.frames import frame_chunks, save_npz
from reconstruct.plugins import make_plugin_manager
from tests.executors.stage_methods import TestPlugin
from tests.tiny_session import make_tiny_session

HAVE_RAY = importlib.util.find_spec("ray") is not None
STAGES = ("age", "render", "composite")


def _host():
    return make_plugin_manager(load_entry_points=False, extra_plugins=[
        ("sync", deage_plugins.sync_stage), ("age", deage_plugins.age_stage), ("render", deage_plugins.render_stage),
        ("composite", deage_plugins.composite_stage), ("test-methods", TestPlugin())])


def _snapshot(root: Path) -> dict[str, object]:
    """Every output file of the three stages: bytes, except PNG/EXR whose provenance record carries the run's
    time: their pixels and their record without ``created``."""
    from reconstruct.provenance import read_exr, read_provenance

    snap: dict[str, object] = {}
    folders = [root / "out" / s for s in STAGES] + [root / "out" / "plates"]
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if not p.is_file() or p.name == "_stage.json":
                continue
            key = str(p.relative_to(root))
            if p.suffix in (".png", ".exr"):
                rec = read_provenance(p)
                pixels = read_exr(p) if p.suffix == ".exr" else cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                snap[key] = (pixels.dtype.str, pixels.shape, pixels.tobytes(), None if rec is None else _plain(rec))
            else:
                snap[key] = p.read_bytes()
    return snap


def _plain(rec) -> dict:
    """A provenance record without what differs between any two runs: ``created`` (the time) and the digest of
    upstream ``_stage.json`` files (they hold the stage's run time in seconds)."""
    d = rec.to_dict()
    d["created"] = None
    d["inputs"] = {k: (None if k.endswith("_stage.json") else v) for k, v in dict(d["inputs"]).items()}
    return d


def _run(root: Path, method: str, **kw) -> tuple[dict, set[str]]:
    pids = root / "out" / "methods" / method / "pids.txt"
    pids.unlink(missing_ok=True)
    results = run_pipeline(RunConfig(session=root, method=method, from_stage="age",
                                     options={"frames.chunk": "3", "ray.chunk_size": "1"}, **kw), _host())
    assert [r.name for r in results if not r.skipped][-3:] == list(STAGES)
    return _snapshot(root), set(pids.read_text().split())


def _check_outputs(root: Path, snap: dict, frames: int) -> None:
    """The snapshot holds what the stages promise (so comparing snapshots compares something)."""
    for s, ext in (("age", "npz"), ("render", "npz")):
        assert sum(k.startswith(f"out/{s}/") and k.endswith(ext) for k in snap) == frames
    assert sum(k.startswith("out/plates/") and "/hero/" in k and k.endswith(".png") for k in snap) == frames
    assert sum(k.startswith("out/plates/") and "/hero/" in k and k.endswith(".exr") for k in snap) == frames
    assert "out/composite/preview.mp4" in snap and not (root / "out" / "composite" / ".preview").exists()
    assert any(k.endswith("_face.png") for k in snap)  # the mask was not empty: patches were written


@pytest.mark.parametrize("method", ["speckle", "trail", "locked"])
def test_stages_identical_in_process_and_in_two_processes(tmp_path, method):
    root = make_tiny_session(tmp_path / "shot", frames=8)
    one, pids_one = _run(root, method)
    _check_outputs(root, one, 8)
    two, pids_two = _run(root, method, jobs=2)
    assert two.keys() == one.keys()
    for k in one:
        assert two[k] == one[k], k  # byte-identical files (pixels + record for PNG/EXR)
    if method != "trail":  # chunks of 3 frames: the work ran in worker processes, not in this one
        assert len(pids_one) == 1 and pids_two and not pids_two & pids_one
    else:  # a sequential method is one chunk: one worker does every frame in order
        assert len(pids_two) == 1


@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (optional extra: pip install 'deage[ray]')")
def test_stages_identical_on_ray(tmp_path):
    import ray

    ray.cloudpickle.register_pickle_by_value(__import__("tests.executors.stage_methods", fromlist=["x"]))
    root = make_tiny_session(tmp_path / "shot", frames=7)
    local, pids_local = _run(root, "speckle")
    _check_outputs(root, local, 7)
    on_ray, pids_ray = _run(root, "speckle", executor="ray", jobs=2)
    assert on_ray.keys() == local.keys()
    for k in local:
        assert on_ray[k] == local[k], k
    assert pids_ray and not pids_ray & pids_local  # applied in Ray worker processes
    assert not ray.is_initialized()


def _busiest_worker(chunks: list, workers: int) -> int:
    """Frames of the busiest worker when a pool hands each chunk to the first free worker (equal cost per frame)."""
    load = [0] * workers
    for c in chunks:
        load[load.index(min(load))] += len(c)
    return max(load)


def test_default_chunks_keep_two_workers_busy_on_short_takes():
    """The bench's takes (24 and 96 frames) and the demo's (12) on 2 cores: with the default chunk no worker has
    more than a chunk beyond half the frames (chunks of 8 gave 16 of 24 frames to one worker: 33 % slower)."""
    from reconstruct.executors.frames import FrameSettings

    size = FrameSettings().chunk
    for n, most in ((24, 12), (96, 48), (12, 8)):
        assert _busiest_worker(frame_chunks(range(n), size), 2) <= most, (n, size)


def test_chunks_and_npz_are_deterministic(tmp_path):
    assert frame_chunks(range(7), 3) == [(0, 1, 2), (3, 4, 5), (6,)] and frame_chunks([], 3) == []
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_npz(tmp_path / "a.npz", x=a, k=np.asarray("mesh"))
    first = (tmp_path / "a.npz").read_bytes()
    import time

    time.sleep(1.1)  # np.savez would stamp a new time into the zip entries
    save_npz(tmp_path / "a.npz", x=a, k=np.asarray("mesh"))
    assert (tmp_path / "a.npz").read_bytes() == first
    d = np.load(tmp_path / "a.npz")
    np.testing.assert_array_equal(d["x"], a) and str(d["k"]) == "mesh"


def test_save_npz_returns_the_digest_of_the_file_it_wrote(tmp_path):
    """The writer's digest is the sha256 and size of the final file's bytes (zip headers rewritten after each
    entry's data included), so the session manifest can take it without reading the file."""
    arrays = {"image": np.arange(3 * 5 * 2, dtype=np.uint16).reshape(3, 5, 2), "kind": np.asarray("image")}
    for compress in (False, True):
        path = tmp_path / f"e{compress}.npz"
        digest = save_npz(path, compress=compress, sync=False, **arrays)
        data = path.read_bytes()
        assert digest == (hashlib.sha256(data).hexdigest(), len(data))
        with np.load(path) as d:
            np.testing.assert_array_equal(d["image"], arrays["image"])


def test_age_and_render_files_reach_the_manifest_without_the_driver_reading_them(tmp_path, monkeypatch):
    """The age and render workers hash the .npz they write; the provenance hook records those digests after the
    stage's folder is renamed into place instead of hashing the files again (2 x 123 MB on the bench take)."""
    import deage_plugins.provenance_manifest
    from reconstruct import provenance
    from reconstruct.session import Session

    hashed: list[str] = []
    real = provenance.sha256_files

    def spy(paths):
        paths = list(paths)
        hashed.extend(str(p) for p in paths)
        return real(paths)

    monkeypatch.setattr(provenance, "sha256_files", spy)
    root = make_tiny_session(tmp_path / "shot", frames=5)
    host = make_plugin_manager(load_entry_points=False, extra_plugins=[
        ("sync", deage_plugins.sync_stage), ("age", deage_plugins.age_stage), ("render", deage_plugins.render_stage),
        ("provenance", deage_plugins.provenance_manifest), ("test-methods", TestPlugin())])
    run_pipeline(RunConfig(session=root, method="speckle", from_stage="age", options={"frames.chunk": "2"}, jobs=2),
                 host)
    session = Session.open(root)
    entries = provenance.read_manifest(session)
    for stage in ("age", "render"):
        npz = sorted((root / "out" / stage).glob("*.npz"))
        assert len(npz) == 5
        for p in npz:
            assert entries[f"out/{stage}/{p.name}"]["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
        assert not [h for h in hashed if h.endswith(".npz") and f"/{stage}/" in h]  # never read by the driver
    assert set(provenance.verify_manifest(session).values()) == {"ok"}


def test_cuda_device_uses_threads_not_forked_processes(tmp_path):
    """With a CUDA device the local --jobs workers are threads (a forked child cannot use the driver's CUDA
    context). The test methods ignore the device, so this runs on a CPU-only machine too."""
    root = make_tiny_session(tmp_path / "shot", frames=6)
    one, pids_one = _run(root, "speckle", device="cuda")
    two, pids_two = _run(root, "speckle", device="cuda", jobs=2)
    assert two == one
    assert pids_two == pids_one and len(pids_one) == 1  # all work in this process (threads)


def test_save_npz_into_a_folder_it_cannot_write_raises_oserror(tmp_path):
    """A folder that cannot be written is an OSError, as before the digests (callers such as the converted face
    model's cache take a read-only home as fine and catch exactly that)."""
    from reconstruct.errors import DeageError
    from reconstruct.executors.frames import save_npz

    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(OSError) as err:
        save_npz(tmp_path / "a-file" / "x.npz", compress=False, a=np.zeros(3))
    assert not isinstance(err.value, DeageError)
