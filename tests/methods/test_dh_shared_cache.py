"""digital_human keeps the young stills' fits for every take of the same actor (issue 16): a file cached by one
take's method work dir is found from another take's."""

from __future__ import annotations

import numpy as np


def test_a_second_take_finds_the_first_takes_young_fits(tmp_path, monkeypatch):
    from deage_plugins.digital_human.cache import find_cached, share_cached, shared_cache_dir

    monkeypatch.setenv("DEAGE_METHOD_CACHE_DIR", str(tmp_path / "shared"))
    assert shared_cache_dir() == tmp_path / "shared"
    take_a, take_b = tmp_path / "a" / "out" / "methods" / "digital_human", tmp_path / "b" / "out" / "methods" / "dh"
    take_a.mkdir(parents=True)
    take_b.mkdir(parents=True)
    name = "young-0123456789abcdef.npy"
    assert find_cached(take_b, name) is None
    np.save(take_a / name, np.arange(3.0))
    assert find_cached(take_a, name) == take_a / name  # the take's own copy first
    share_cached(take_a / name)
    found = find_cached(take_b, name)
    assert found == tmp_path / "shared" / name
    np.testing.assert_array_equal(np.load(found), np.arange(3.0))


def test_an_unwritable_shared_folder_only_warns(tmp_path, monkeypatch, caplog):
    from deage_plugins.digital_human.cache import share_cached

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DEAGE_METHOD_CACHE_DIR", str(blocker / "sub"))
    src = tmp_path / "young-x.npy"
    np.save(src, np.zeros(2))
    share_cached(src)
    assert "DEAGE_CACHE_DIR" in caplog.text or "could not keep" in caplog.text


def test_the_cache_key_follows_the_face_models_source(tmp_path):
    """A model re-imported under the same name (another file, another digest) must not reuse the old young fits:
    the digest of the model's source is in the settings every cache key is made from."""
    from types import SimpleNamespace

    from deage_plugins.digital_human.cache import model_digest as _model_digest

    class Components:
        def __init__(self, digest):
            self.digest = digest

        def get(self, kind, name):
            assert (kind, name) == ("face_model", "ict")
            return SimpleNamespace(digest=lambda: self.digest)

    fits = SimpleNamespace(model_name="ict")
    a = _model_digest(SimpleNamespace(fits=fits, components=Components("file-a")))
    b = _model_digest(SimpleNamespace(fits=fits, components=Components("file-b")))
    assert (a, b) == ("file-a", "file-b")
    assert _model_digest(SimpleNamespace(fits=None, components=Components("x"))) is None


def test_the_young_asset_is_cached_stored_not_deflated(tmp_path, monkeypatch):
    """The young asset's cache file holds its arrays as they are (zlib cost the driver 0.1 s at the end of a cold
    age stage for 14% of the texture's 3 MB), and reads back as the asset it was made from."""
    import json
    import zipfile
    from types import SimpleNamespace

    from deage_plugins.digital_human.method import DigitalHumanMethod

    monkeypatch.setenv("DEAGE_METHOD_CACHE_DIR", str(tmp_path / "shared"))
    rng = np.random.default_rng(3)
    asset = SimpleNamespace(identity=rng.normal(size=100), texture=rng.random((16, 16, 3), dtype=np.float32),
                            report={"rms_px": [0.5, 0.6], "uv_seen": 0.9})
    cache = tmp_path / "take" / "young-0123456789abcdef.npz"
    DigitalHumanMethod()._keep_asset(cache, asset)
    with zipfile.ZipFile(cache) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    with np.load(cache, allow_pickle=False) as d:
        np.testing.assert_array_equal(d["identity"], asset.identity)
        np.testing.assert_array_equal(d["texture"], asset.texture)
        assert json.loads(str(d["report"])) == asset.report
    assert (tmp_path / "shared" / cache.name).read_bytes() == cache.read_bytes()
