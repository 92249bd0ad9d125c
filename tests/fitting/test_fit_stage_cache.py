"""The fit stage's cache key follows the face model it resolves: importing ICT after a fit with the demo model (the
default is ict when present, else demo), or re-importing a model under the same name, refits."""

from __future__ import annotations

from types import SimpleNamespace

from deage_plugins.fit_stage import FitStage, FitStageSettings
from reconstruct import hookimpl
from reconstruct.plugins import make_plugin_manager


class Source:
    def __init__(self, name: str, digest: str):
        self.name, self._digest = name, digest

    def load(self):  # never called: the key needs the name and digest only
        raise AssertionError("fingerprint must not load the model")

    def digest(self) -> str:
        return self._digest


def _key(*sources, settings=FitStageSettings()):
    class P:
        @hookimpl
        def register_face_models(self):
            return list(sources)

    host = make_plugin_manager(load_entry_points=False, extra_plugins=[("models", P())])
    ctx = SimpleNamespace(components=host.components(), settings={"fit": settings}, device="cpu")
    return FitStage().fingerprint(ctx)


def test_fit_key_follows_the_resolved_face_model():
    demo_only = _key(Source("demo", "d1"))
    with_ict = _key(Source("demo", "d1"), Source("ict", "i1"))
    assert demo_only["model"] == "demo" and with_ict["model"] == "ict"  # ICT imported later: a new key
    assert _key(Source("demo", "d1"), Source("ict", "i2")) != with_ict  # re-imported under the same name
    assert _key(Source("demo", "d1"), Source("ict", "i1"), settings=FitStageSettings(model="demo")) == demo_only


def test_fit_key_follows_the_actor_identity_file(tmp_path):
    import os

    f = tmp_path / "fits.npz"
    f.write_bytes(b"take 1")
    src = Source("ict", "i1")
    plain = _key(src)
    first = _key(src, settings=FitStageSettings(identity=str(f)))
    assert "identity_file" not in plain and first != plain  # no option: the key is as before
    f.write_bytes(b"take 1, refitted")
    os.utime(f, ns=(1, 1))
    assert _key(src, settings=FitStageSettings(identity=str(f))) != first
