"""The converted-model cache (reconstruct/face/store.py): keyed by content, not by the checkout's path, and a few
versions kept, so two checkouts on one machine (a benchmark's baseline tree, a second worktree) stop evicting each
other's entry and converting the model again on every run (3-7 s in the fit stage, found in the issue 16 bench)."""

from __future__ import annotations

import os
import shutil

from reconstruct.face import store


def test_same_asset_in_two_checkouts_gives_one_key(tmp_path):
    src = store.ict_light_path()
    a, b = tmp_path / "a" / src.name, tmp_path / "b" / src.name
    for p in (a, b):
        p.parent.mkdir()
        shutil.copyfile(src, p)
    os.utime(b, ns=(1, 1))  # a checkout made at another time
    assert store._code_key(a) == store._code_key(b)
    b.write_bytes(b.read_bytes()[:-1] + b"x")  # other content: another key
    assert store._code_key(a) != store._code_key(b)


def test_other_versions_do_not_evict_the_entry_in_use(tmp_path, monkeypatch):
    monkeypatch.setenv("DEAGE_CACHE_DIR", str(tmp_path))
    model = store.load_demo()
    builds = []

    def build():
        builds.append(1)
        return model

    for n, k in enumerate(("aaaa", "bbbb", "cccc", "dddd")):  # aaaa, then three other versions, a second apart
        store._cached(f"lab-{k}", build)
        os.utime(tmp_path / f"lab-{k}.npz", ns=(10**9 * (n + 1),) * 2)
    assert len(builds) == 4
    store._cached("lab-aaaa", build)  # still there: no conversion
    assert len(builds) == 4
    store._cached("lab-eeee", build)  # a fifth version evicts the least recently used one (bbbb), not aaaa
    names = sorted(p.name for p in tmp_path.glob("lab-*.npz"))
    assert len(names) == store.CACHE_KEEP and "lab-aaaa.npz" in names and "lab-bbbb.npz" not in names
