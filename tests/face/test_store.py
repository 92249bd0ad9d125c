"""`reconstruct models import|list`, the user models dir and the face_models plugin."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct import make_plugin_manager
from reconstruct.cli import main
from reconstruct.errors import FaceModelError
from reconstruct.face import load_face_model
from reconstruct.face.store import import_model, models_dir


def _tiny_flame(path):
    rng = np.random.default_rng(0)
    np.savez(path, v_template=rng.normal(size=(6, 3)) * 0.05, shapedirs=rng.normal(size=(6, 3, 305)) * 1e-3,
             f=np.array([[0, 1, 2], [3, 4, 5]], np.int32))


def test_import_list_and_plugin_sources(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEAGE_MODELS_DIR", str(tmp_path / "models"))
    assert models_dir() == tmp_path / "models"
    src = tmp_path / "flame.npz"
    _tiny_flame(src)
    out = import_model("flame", src, name="myflame", correspondences=False)
    assert out == tmp_path / "models" / "myflame.npz"
    m = load_face_model(out)
    assert m.name == "myflame" and m.n_identity == 300 and m.n_expression == 5
    with pytest.raises(FaceModelError, match="already imported"):
        import_model("flame", src, name="myflame", correspondences=False)
    comps = make_plugin_manager().components().all("face_model")
    assert "demo" in comps and "myflame" in comps
    assert comps["myflame"].load().n_vertices == 6
    assert main(["models", "list"]) == 0
    assert "myflame" in capsys.readouterr().out


def test_cli_import_refuses_what_is_not_a_face_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEAGE_MODELS_DIR", str(tmp_path / "models"))
    bad = tmp_path / "notes.pkl"
    bad.write_bytes(b"this is not a pickle")
    assert main(["models", "import", "flame", str(bad)]) == 8
    err = capsys.readouterr().err
    assert "not a readable model pickle" in err
    src = tmp_path / "flame.npz"
    _tiny_flame(src)
    assert main(["models", "import", "flame", str(src), "--no-correspondences"]) == 0
    assert (tmp_path / "models" / "flame.npz").exists()


@pytest.mark.realdata
def test_ict_source_from_shared_data(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("DEAGE_MODELS_DIR", str(tmp_path / "models"))
    comps = make_plugin_manager().components().all("face_model")
    assert "ict" in comps and comps["ict"].path.exists()
