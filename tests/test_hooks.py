"""Every hook of ``reconstruct/hookspecs.py`` has a test here named ``test_hook_<name>`` that drives it through the
host (like datasette's ``test_plugin_hooks_have_tests``); the last test checks that none is missing."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import deage_plugins.composite_stage
import deage_plugins.detect_stage
import deage_plugins.report_stage
import deage_plugins.sync_stage
from reconstruct import hookimpl, hookspecs
from reconstruct.cli import parse_command_line
from reconstruct.engine import run_pipeline
from reconstruct.errors import FaceModelError, StageError
from reconstruct.plugins import make_plugin_manager
from reconstruct.stage import RunConfig
from tests.tiny_session import make_tiny_session


@pytest.fixture
def tiny(tmp_path) -> Path:
    return make_tiny_session(tmp_path / "tiny", frames=4)


def _host(*plugins, builtins=(("sync", deage_plugins.sync_stage),)):
    return make_plugin_manager(load_entry_points=False, extra_plugins=[*builtins, *plugins])


@dataclass(frozen=True)
class LoudSettings:
    level: int = 1


class Loud:
    """A stage whose option also has a command-line flag of its own."""

    name = "loud"
    requires = ("sync",)
    version = "1"
    Settings = LoudSettings

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out):
        (out / "level.txt").write_text(str(ctx.settings[self.name].level))


class LoudPlugin:
    @hookimpl
    def register_stages(self):
        return [Loud()]

    @hookimpl
    def register_cli_arguments(self, command, parser):
        if command == "run":
            parser.add_argument("--shout", dest="loud.level", default=None, help="the loud stage's level")


def test_hook_register_cli_arguments(tiny):
    host = _host(("loud", LoudPlugin()))
    args = parse_command_line(["run", str(tiny), "--shout", "3", "--option", "loud.level=2"], host)
    assert args._handler(args, host) == 0
    assert (tiny / "out" / "loud" / "level.txt").read_text() == "3"  # the flag reached the Settings, and won
    with pytest.raises(SystemExit):  # other commands do not get the flag
        parse_command_line(["report", str(tiny), "--shout", "3"], host)


def test_hook_register_stages(tiny):
    host = _host(("loud", LoudPlugin()))
    first = run_pipeline(RunConfig(session=tiny, options={"loud.level": "4"}), host)
    again = run_pipeline(RunConfig(session=tiny, options={"loud.level": "4"}), host)
    assert [(r.name, r.skipped) for r in first] == [("sync", False), ("loud", False)]
    assert [r.skipped for r in again] == [True, True]  # cached by its parsed settings
    assert (tiny / "out" / "loud" / "level.txt").read_text() == "4"


class StillBackend:
    name = "still"

    def __init__(self, spec, value: int = 9):
        self.spec, self.value, self.n = spec, value, 0

    def open(self):
        pass

    def trigger(self, tick, t_tick_ns):
        pass

    def grab(self):
        if self.n == 2:
            return None
        self.n += 1
        w, h = self.spec.resolution
        return np.full((h, w), self.value, np.uint8), self.n, {"tick": self.n}

    def close(self):
        pass


def test_hook_register_camera_backends(repo_root):
    class P:
        @hookimpl
        def register_camera_backends(self):
            return [StillBackend]

    from reconstruct.components import CameraBackend
    from reconstruct.rig import load_rig

    cls = _host(("still", P()), builtins=()).components().get("camera_backend", "still")
    spec = load_rig(repo_root / "rigs" / "test-small.toml").cameras[1]
    cam = cls(spec, value=5)
    assert isinstance(cam, CameraBackend)
    frames = [cam.grab() for _ in range(3)]
    assert frames[-1] is None and frames[0][0].shape == spec.resolution[::-1] and int(frames[0][0].max()) == 5


class FixedDetector:
    name = "fixed"
    scheme = "ibug68"
    priority = -1  # never the default

    def detect(self, image):
        h, w = image.shape[:2]
        pts = np.stack([np.linspace(0.2 * w, 0.8 * w, 68), np.full(68, 0.5 * h)], 1).astype(np.float32)
        return pts, np.ones(68, np.float32)


def test_hook_register_landmark_detectors(tiny):
    class P:
        @hookimpl
        def register_landmark_detectors(self):
            return [FixedDetector]

    from reconstruct.artifacts import Detections

    host = _host(("fixed", P()), ("detect", deage_plugins.detect_stage))
    run_pipeline(RunConfig(session=tiny, options={"detect.detector": "fixed"}), host)
    det = Detections.load(tiny / "out" / "detect" / "landmarks.npz")
    assert det.detector == "fixed" and det.scheme == "ibug68" and det.found.all()
    assert det.points.shape == (4, 3, 68, 2) and np.isclose(det.points[0, 0, 0, 0], 0.2 * 640)


def test_hook_register_face_models():
    from reconstruct.face.store import load_model_by_name

    loads = []

    class Source:
        def __init__(self, name, model):
            self.name, self.model = name, model

        def load(self):
            loads.append(self.name)
            return self.model

    class P:
        @hookimpl
        def register_face_models(self):
            return [Source("tiny", load_model_by_name("demo")), Source("broken", "not a model")]

    comps = _host(("models", P()), builtins=()).components()
    assert comps.face_model("tiny") is comps.face_model("tiny") and loads == ["tiny"]  # loaded once
    with pytest.raises(FaceModelError, match="'broken' is not a face model"):
        comps.face_model("broken")


@dataclass(frozen=True)
class TintSettings:
    amount: float = 0.1


class Tint:
    """Adds a grey level everywhere (a test method)."""

    name = "tint"
    identity_changing = False
    Settings = TintSettings

    def describe(self):
        return "tint"

    def settings(self, ctx):
        return {}

    def prepare(self, ctx):
        pass

    def apply(self, ctx, frame):
        from reconstruct.methods import FaceEdit

        img = np.clip(frame.plate / 255.0 + ctx.settings.amount, 0, 1).astype(np.float32)
        return FaceEdit(frame=frame.frame, kind="image", image=img, mask=np.ones(img.shape[:2], np.float32),
                        info={"amount": ctx.settings.amount})


def test_hook_register_aging_methods(tiny):
    import json

    import deage_plugins.age_stage
    from tests.stage_plugins import NoFitPlugin

    class P:
        @hookimpl
        def register_aging_methods(self):
            return [Tint]

    host = _host(("tint", P()), ("age", deage_plugins.age_stage), ("nofit", NoFitPlugin()))
    run_pipeline(RunConfig(session=tiny, method="tint", options={"tint.amount": "0.25"}), host)
    edits = json.loads((tiny / "out" / "age" / "edits.json").read_text())
    assert edits["method"] == "tint" and edits["settings"] == {"amount": 0.25}
    assert {v["amount"] for v in edits["frames"].values()} == {0.25} and len(edits["frames"]) == 4


def test_hook_register_renderers():
    from reconstruct.render import renderer_class

    def renderer(name, priority, ok):
        return type(name, (), {"name": name, "priority": priority, "available": classmethod(lambda c, d: ok)})

    class P:
        @hookimpl
        def register_renderers(self):
            return [renderer("best", 30, False), renderer("good", 20, True), renderer("plain", 10, True)]

    comps = _host(("r", P()), builtins=()).components()
    assert renderer_class(comps, "auto", "cpu").name == "good"  # the best *available* one
    assert renderer_class(comps, "plain", "cpu").name == "plain"


def test_hook_register_compositors():
    from reconstruct.composite import CompositeSettings, composite_face

    class Half:
        name = "half"

        def blend(self, plate, face, alpha):
            return 0.5 * (plate + face)

    class P:
        @hookimpl
        def register_compositors(self):
            return [Half]

    cls = _host(("c", P()), builtins=()).components().get("compositor", "half")
    plate = np.full((64, 64, 3), 100, np.uint8)
    face = np.full((64, 64, 3), 0.8, np.float32)
    cov = np.zeros((64, 64), np.float32)
    cov[16:48, 16:48] = 1
    res = composite_face(plate, face, cov, CompositeSettings(compositor="half", color="none", feather_frac=0.0,
                                                                feather_px=0, erode_px=0), cls())
    assert np.allclose(res.image[32, 32], 0.5 * (100 / 255 + 0.8)) and np.allclose(res.image[0, 0], 100 / 255)


def test_hook_register_report_sections(tiny):
    class Hello:
        name = "hello"
        order = 99

        def html(self, ctx):
            return f"<section id='hello'><p>hello {ctx.session.meta.name}</p></section>"

    class P:
        @hookimpl
        def register_report_sections(self):
            return [Hello]

    run_pipeline(RunConfig(session=tiny), _host(("hello", P()), ("report", deage_plugins.report_stage)))
    assert "hello tiny" in (tiny / "out" / "report" / "report.html").read_text()


class Events:
    def __init__(self):
        self.log = []

    @hookimpl
    def on_run_start(self, config, stages):
        self.log.append(("start", tuple(stages)))

    @hookimpl
    def on_stage_complete(self, ctx, stage, skipped, seconds):
        self.log.append(("stage", stage, skipped))

    @hookimpl
    def on_run_complete(self, config, ok):
        self.log.append(("end", ok))


class Failing:
    name = "failing"
    requires = ("sync",)
    version = "1"

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out):
        raise RuntimeError("boom")


def test_hook_on_run_start(tiny):
    ev = Events()
    run_pipeline(RunConfig(session=tiny, only_stage="sync"), _host(("ev", ev)))
    assert ev.log[0] == ("start", ("sync",))


def test_hook_on_stage_complete(tiny):
    ev = Events()
    host = _host(("ev", ev))
    run_pipeline(RunConfig(session=tiny), host)
    run_pipeline(RunConfig(session=tiny), host)
    assert [e for e in ev.log if e[0] == "stage"] == [("stage", "sync", False), ("stage", "sync", True)]


def test_hook_on_run_complete(tiny):
    class P:
        @hookimpl
        def register_stages(self):
            return [Failing()]

    ev = Events()
    with pytest.raises(StageError, match="boom"):
        run_pipeline(RunConfig(session=tiny), _host(("ev", ev), ("failing", P())))
    assert ev.log[-1] == ("end", False)  # fired although the run failed
    run_pipeline(RunConfig(session=tiny, only_stage="sync"), _host(("ev", ev)))
    assert ev.log[-1] == ("end", True)


def test_every_hook_has_a_test():
    hooks = {n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "reconstruct_spec")}
    tested = set(re.findall(r"^def test_hook_(\w+)\(", Path(__file__).read_text(), flags=re.M))
    assert hooks - tested == set(), f"hooks without a test_hook_<name>: {sorted(hooks - tested)}"
    assert tested - hooks == set(), f"tests of hooks that do not exist: {sorted(tested - hooks)}"


class LegacyMethod:
    """A method written before Settings existed: it reads raw options through ``ctx.option`` and still works."""

    name = "legacy"
    identity_changing = False

    def describe(self):
        return "legacy"

    def settings(self, ctx):
        return {"gain": ctx.option("legacy.gain", 1.0, float)}

    def prepare(self, ctx):
        pass

    def apply(self, ctx, frame):
        from reconstruct.methods import FaceEdit

        gain = ctx.option("legacy.gain", 1.0, float)
        img = np.clip(frame.plate / 255.0 * gain, 0, 1).astype(np.float32)
        return FaceEdit(frame=frame.frame, kind="image", image=img, mask=np.ones(img.shape[:2], np.float32),
                        info={"gain": gain})


def test_a_method_without_settings_still_gets_its_raw_options(tiny, caplog):
    import json

    import deage_plugins.age_stage
    from tests.stage_plugins import NoFitPlugin

    class P:
        @hookimpl
        def register_aging_methods(self):
            return [LegacyMethod]

    host = _host(("legacy", P()), ("age", deage_plugins.age_stage), ("nofit", NoFitPlugin()))
    run_pipeline(RunConfig(session=tiny, method="legacy", options={"legacy.gain": "0.5"}), host)
    edits = json.loads((tiny / "out" / "age" / "edits.json").read_text())
    assert {v["gain"] for v in edits["frames"].values()} == {0.5}
    assert "legacy declares no Settings class" in caplog.text


def test_a_changed_frame_image_reruns_the_stages_that_read_it(tiny):
    """The cache key covers the images a stage reads (frames.csv + each image's size and time), not only
    frames.csv: a frame re-exported on disk makes sync and detect (and so everything after) rerun."""
    import os
    import time

    class P:
        @hookimpl
        def register_landmark_detectors(self):
            return [FixedDetector]

    host = _host(("fixed", P()), ("detect", deage_plugins.detect_stage))
    opts = {"detect.detector": "fixed"}
    run_pipeline(RunConfig(session=tiny, options=opts), host)
    assert all(r.skipped for r in run_pipeline(RunConfig(session=tiny, options=opts), host))
    img = tiny / "cams" / "witness-left" / "000002.png"
    data = img.read_bytes()
    time.sleep(0.01)
    img.write_bytes(data)  # the same name, a new file (a re-export)
    os.utime(img, ns=(time.time_ns(), time.time_ns()))
    again = {r.name: r.skipped for r in run_pipeline(RunConfig(session=tiny, options=opts), host)}
    assert again == {"sync": False, "detect": False}
