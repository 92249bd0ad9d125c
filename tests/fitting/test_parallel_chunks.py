"""A long take's chunks (identity fixed, independent of each other) solved in parallel give the sequential result."""

import numpy as np

from reconstruct.artifacts import Detections
from reconstruct.executors.local import LocalExecutor
from reconstruct.fitting.pipeline import fit_detections
from reconstruct.fitting.solver import FitSettings
from reconstruct.fitting.synthetic import make_sequence, observe, three_camera_rig


def _take(ict_model, frames: int = 12):
    cams = three_camera_rig()
    seq = make_sequence(ict_model, frames=frames, seed=3)
    obs, conf = observe(ict_model, seq, cams, "ibug68", noise_px=1.0, seed=4)
    det = Detections(frames=np.arange(frames, dtype=np.int32), cameras=tuple(c.name for c in cams), points=obs.astype(np.float32),
                     confidence=conf.astype(np.float32), found=np.isfinite(obs).all(-1).any(-1), scheme="ibug68",
                     detector="test")
    return {c.name: c for c in cams}, det


def test_parallel_chunks_equal_sequential(ict_model):
    cal, det = _take(ict_model)
    st = FitSettings(iterations=8)
    one, info1 = fit_detections(ict_model, cal, det, st, chunk=4, identity_frames=6)
    two, info2 = fit_detections(ict_model, cal, det, st, chunk=4, identity_frames=6, executor=LocalExecutor(jobs=2))
    assert len(info1.iterations) == len(info2.iterations) == 4  # the identity solve + three chunks
    # worker processes run torch on their own thread count: equal up to float rounding (measured max 0 m)
    assert np.allclose(one.vertices, two.vertices, atol=1e-6)
    assert np.array_equal(one.valid, two.valid)


def test_ray_chunks_equal_sequential(ict_model):
    import pytest

    pytest.importorskip("ray", reason="Ray is not installed (optional extra: pip install 'deage[ray]')")
    from reconstruct.executors.ray_executor import RayExecutor

    cal, det = _take(ict_model)
    st = FitSettings(iterations=8)
    one, _ = fit_detections(ict_model, cal, det, st, chunk=4, identity_frames=6)
    ex = RayExecutor(jobs=2, chunk_size=1)
    try:
        two, _ = fit_detections(ict_model, cal, det, st, chunk=4, identity_frames=6, executor=ex)
    finally:
        ex.close()
    assert np.allclose(one.vertices, two.vertices, atol=1e-6)


def test_chunk_borders_do_not_pop(ict_model):
    """Chunks solved alone restart their temporal smoothing at every border: a jump in the motion. With the
    overlapping, cross-faded chunks the motion at the borders is that of the whole-take solution."""
    cal, det = _take(ict_model, frames=48)

    def border_accel(**kw):
        seq, _ = fit_detections(ict_model, cal, det, FitSettings(), identity_frames=12, **kw)
        V = seq.vertices.astype(np.float64)
        acc = 1000 * np.linalg.norm(V[2:] - 2 * V[1:-1] + V[:-2], axis=2).mean(1)  # mm / frame^2, frames 1..46
        return acc[[10, 11, 22, 23, 34, 35]]  # the frames around the borders at 12, 24, 36

    whole = border_accel(chunk=48)
    alone = border_accel(chunk=12, overlap=0)
    faded = border_accel(chunk=12)  # default overlap: 8 frames (here clipped to 6, half a chunk)
    # measured: whole 0.24-0.40, alone 0.46-0.67, faded within 0.005 of whole (mm/frame^2)
    assert np.max(alone - whole) > 0.15
    assert np.max(np.abs(faded - whole)) < 0.03
