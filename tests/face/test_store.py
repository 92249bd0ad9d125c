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


def _not_a_model_files(folder):
    """A random-bytes file, an empty file and an npz of unrelated arrays, each under a .pkl and a .npz name."""
    rng = np.random.default_rng(3)
    files = {}
    for suffix in (".pkl", ".npz"):
        files[f"random{suffix}"] = folder / f"random{suffix}"
        files[f"random{suffix}"].write_bytes(rng.bytes(4096))
        files[f"empty{suffix}"] = folder / f"empty{suffix}"
        files[f"empty{suffix}"].write_bytes(b"")
        files[f"unrelated{suffix}"] = folder / f"unrelated{suffix}"
        with open(files[f"unrelated{suffix}"], "wb") as f:
            np.savez(f, weights=rng.normal(size=(4, 4)), labels=np.arange(7))
    objects = folder / "objects.npz"  # an npz whose array holds pickled Python objects
    np.savez(objects, data=np.array([{"v_template": 1}, None], dtype=object))
    files["objects.npz"] = objects
    return files


NOT_A = {"ict": "is not an ICT-FaceKit model", "flame": "is not a FLAME model", "bfm": "is not a Basel Face Model"}


@pytest.mark.parametrize("kind", ["ict", "flame", "bfm"])
def test_import_of_a_file_that_is_no_model_names_it_and_exits_8(kind, tmp_path, monkeypatch, capsys):
    """Random bytes, an empty file, unrelated arrays: one clear line naming the file and the kind, exit 8, and
    never numpy's "if you trust the file ... allow_pickle" advice (before: that advice for ICT, a traceback (exit 1)
    for empty files, FLAME messages without the file name)."""
    monkeypatch.setenv("DEAGE_MODELS_DIR", str(tmp_path / "models"))
    for case, path in _not_a_model_files(tmp_path).items():
        assert main(["models", "import", kind, str(path), "--no-correspondences"]) == 8, (kind, case)
        err = capsys.readouterr().err
        assert f"{path} {NOT_A[kind]}" in err, (kind, case, err)
        assert "allow_pickle" not in err and "trust" not in err, (kind, case, err)
    assert not (tmp_path / "models").exists()  # nothing stored


def test_ict_is_built_in_and_an_imported_ict_replaces_it(monkeypatch, tmp_path):
    from reconstruct.assets import ict_light_path

    monkeypatch.setenv("DEAGE_MODELS_DIR", str(tmp_path / "models"))
    comps = make_plugin_manager().components().all("face_model")
    assert comps["ict"].path == ict_light_path()
    _tiny_flame(tmp_path / "flame.npz")
    import_model("flame", tmp_path / "flame.npz", name="ict", correspondences=False)
    comps = make_plugin_manager().components().all("face_model")
    assert comps["ict"].path == tmp_path / "models" / "ict.npz"
