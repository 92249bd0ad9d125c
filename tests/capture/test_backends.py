"""Camera backends (plugins) and syncing independently recorded cameras (files from three devices)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from capture.node import open_backend
from capture.recorder import Recorder
from capture.sync_session import sync_session
from deage_plugins.camera_backends import SyntheticBackend, read_code, stamp_code
from reconstruct.components import CameraBackend
from reconstruct.errors import BackendError, SyncError
from reconstruct.plugins import make_plugin_manager
from reconstruct.rig import CameraSpec, load_rig

from .conftest import loopback_options, write_rig

HOST = make_plugin_manager()


def spec(name="cam", sensor="rgb", res=(64, 48), backend="synthetic", exposure=8000.0, **settings):
    from types import MappingProxyType

    return CameraSpec(name, "hero", sensor, res, 30.0, exposure, backend, MappingProxyType(settings))


def test_backends_are_registered_plugins_and_satisfy_the_protocol():
    comps = HOST.components().all("camera_backend")
    assert {"synthetic", "opencv", "video", "images"} <= set(comps)
    for cls in comps.values():
        for m in ("open", "trigger", "grab", "close"):
            assert callable(getattr(cls, m))
    b = open_backend(spec(), HOST)
    assert isinstance(b, CameraBackend)


def test_synthetic_rgb_and_ir_with_own_resolution_and_exposure():
    rgb = SyntheticBackend(spec(res=(128, 72)))
    ir_long = SyntheticBackend(spec(sensor="ir", res=(80, 60), exposure=8000.0))
    ir_short = SyntheticBackend(spec(sensor="ir", res=(80, 60), exposure=2000.0))
    for b in (rgb, ir_long, ir_short):
        b.open()
        b.trigger(77, 0)
    img, t, meta = rgb.grab()
    assert img.shape == (72, 128, 3) and img.dtype == np.uint8 and read_code(img) == 77
    g1, _, m1 = ir_long.grab()
    g2, _, m2 = ir_short.grab()
    assert g1.shape == (60, 80) and m2["exposure_us"] == 2000.0
    assert g2[20:].mean() < 0.5 * g1[20:].mean()  # shorter exposure, darker IR frame (measured ratio 0.25)
    assert abs(t - __import__("time").time_ns()) < 1e9


def test_flash_and_clock_offset_settings():
    b = SyntheticBackend(spec(), flash_tick=5, clock_offset_ns=-37_000_000)
    b.open()
    b.trigger(5, 0)
    img, t, _ = b.grab()
    assert img.min() == 255
    assert t < __import__("time").time_ns() - 30_000_000


def test_unknown_backend_and_setting_name_the_camera():
    with pytest.raises(BackendError, match="camera 'cam'.*no camera backend named 'nope'"):
        open_backend(spec(backend="nope"), HOST)
    with pytest.raises(BackendError, match="camera 'cam': bad \\[camera.settings\\]"):
        open_backend(spec(zoom=2), HOST)
    with pytest.raises(BackendError, match="needs `device = N`"):
        open_backend(spec(backend="opencv"), HOST)
    b = open_backend(spec(backend="opencv", url="file:///nonexistent.mp4"), HOST)
    with pytest.raises(BackendError, match="cannot open"):
        b.open()


def test_video_file_and_image_sequence(tmp_path):
    path = str(tmp_path / "v.avi")
    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(6):
        w.write(np.full((48, 64, 3), 30 * i, np.uint8))
    w.release()
    b = open_backend(spec(backend="video", path=path, start_time_ns=10**9, timecode_start="01:00:00:00"), HOST)
    b.open()
    frames = []
    while (got := b.grab()) is not None:
        frames.append(got)
    assert len(frames) == 6
    assert [f[1] for f in frames[:2]] == [10**9, 10**9 + 33_333_333]
    assert frames[5][2]["timecode"] == "01:00:00:05"
    assert abs(frames[3][0].mean() - 90) < 5  # MJPEG is lossy: +-5 levels
    with pytest.raises(BackendError, match="delivers 64x48, the rig says 32x24"):
        b2 = open_backend(spec(res=(32, 24), backend="video", path=path), HOST)
        b2.open()
        b2.grab()
    (tmp_path / "seq").mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / "seq" / f"{i:04d}.png"), np.full((48, 64), 50 * i, np.uint8))
    b = open_backend(spec(sensor="ir", backend="images", path=str(tmp_path / "seq"), fps=25.0), HOST)
    b.open()
    got = [b.grab() for _ in range(5)]
    assert got[4] is None and got[3][0].shape == (48, 64) and got[3][0].mean() == 150
    assert got[1][1] - got[0][1] == 40_000_000
    with pytest.raises(BackendError, match="no image files match"):
        open_backend(spec(backend="images", path=str(tmp_path / "empty*")), HOST).open()


# -- three independent devices ---------------------------------------------------------------------------------
P = 1e9 / 30
T0 = 1_800_000_000_000_000_000
DEVICES = {  # name: (first true tick, last true tick, clock offset ns, sensor, size)
    "hero": (10, 130, 0, "rgb", (96, 64)),
    "ir-left": (0, 140, 37_000_000, "ir", (80, 48)),
    "ir-right": (25, 110, -523_000_000, "ir", (80, 48)),
}
FLASH = 60


def _write_devices(tmp_path):
    settings = {}
    for cam, (first, last, off, sensor, (w, h)) in DEVICES.items():
        d = tmp_path / "dev" / cam
        d.mkdir(parents=True)
        base = np.full((h, w, 3) if sensor == "rgb" else (h, w), 90, np.uint8)
        for k in range(first, last):
            img = np.full_like(base, 255) if k == FLASH else base.copy()
            if k != FLASH:
                stamp_code(img, k)
            cv2.imwrite(str(d / f"{k - first:05d}.png"), img if img.ndim == 2 else img[..., ::-1])
        settings[cam] = {"path": str(d), "start_time_ns": int(T0 + first * P + off),  # device clock, frame 0
                         "timecode_start": f"01:00:{first // 30:02d}:{first % 30:02d}"}  # jammed timecode
    cams = [(c, "hero" if c == "hero" else "witness", v[3], v[4], 5000.0) for c, v in DEVICES.items()]
    return load_rig(write_rig(tmp_path / "rig.toml", cams, mode="free", backend="images", settings=settings))


def _true_tick(cam, index):
    return DEVICES[cam][0] + index


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("devices")
    rig = _write_devices(tmp)
    res = Recorder(rig, tmp / "take", loopback_options()).run()
    return res.session


def test_ingest_keeps_every_file(ingested):
    for cam, (first, last, *_rest) in DEVICES.items():
        recs = ingested.frames(cam)
        assert len(recs) == last - first and all(r.status == "ok" for r in recs)
        assert all(r.tick == -1 for r in recs)


@pytest.mark.parametrize("method", ["flash", "timecode"])
def test_sync_independent_devices(ingested, method):
    fsets, rep = sync_session(ingested, method)
    assert rep.method == method and len(fsets) == 120
    checked = 0
    for fs in fsets:
        k = _true_tick("hero", fs.indices["hero"])
        for cam, (first, last, *_r) in DEVICES.items():
            i = fs.indices[cam]
            if first <= k < last:
                assert i is not None and _true_tick(cam, i) == k
                if k != FLASH:  # the stored image itself shows the same tick
                    assert read_code(ingested.read_image(cam, ingested.frames(cam)[i])) == k
                checked += 1
            else:
                assert i is None
    assert checked == 120 + 120 + 85
    # offsets measured from the matched frames (exact: files carry no jitter)
    assert rep.cameras["ir-left"].offset_ns == pytest.approx(37_000_000, abs=1000)
    assert rep.cameras["ir-right"].offset_ns == pytest.approx(-523_000_000, abs=1000)


def test_timestamps_alone_cannot_see_a_half_second_offset(ingested):
    """Devices that started at different times: timestamps alone cannot tell which frames belong together when the
    offset exceeds half a frame; the method must refuse (offset beyond --max-offset) or report the ambiguity."""
    with pytest.raises(SyncError, match="maximum clock offset"):
        sync_session(ingested, "timestamps", max_offset_s=0.01)
    fsets, rep = sync_session(ingested, "timestamps", max_offset_s=0.6)
    wrong = sum(1 for fs in fsets for cam in DEVICES if fs.indices[cam] is not None and
                _true_tick(cam, fs.indices[cam]) != _true_tick("hero", fs.indices["hero"]))
    assert wrong == 0 or any(rep.cameras[c].ambiguous for c in DEVICES)
