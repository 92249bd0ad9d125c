"""digital_human's preparation spreads the per-still identity fits (the young stills' and the take's plates') over
the run's workers (issue 16): the landmarks are found in the driver, each still is fitted in a worker, and the
identities are the ones fitted in process, bit for bit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from reconstruct.executors.local import LocalExecutor


class Recording(LocalExecutor):
    """--jobs 2, recording what it ran."""

    def __init__(self, components) -> None:
        super().__init__(jobs=2, components=components)
        self.calls: list[tuple[str, int]] = []

    def map(self, fn, items, *args, **kw):
        items = list(items)
        self.calls.append((fn.__name__, len(items)))
        return super().map(fn, items, *args, **kw)


def _stills(model, n: int = 4):
    """``n`` stills of one face, with a detector that reads the model's projected ibug68 landmarks (plus noise)
    back from each still's first pixel (the still's index)."""
    from deage_plugins.digital_human.stills import still_camera
    from reconstruct.conventions import rodrigues

    rng = np.random.default_rng(4)
    ident = rng.normal(size=model.n_identity) * 0.8
    lm = model.landmark_map("ibug68")
    stills, marks = [], []
    for k in range(n):
        cam = still_camera(f"s{k}", 640, 480)
        R = rodrigues(np.radians([3.0 * k, -10.0 + 7.0 * k, 0.0]))
        v = model.vertices(ident) @ R.T + np.array([0.0, 0.0, 0.6])
        pts = cam.project(lm.points(v, model.triangles)) + rng.normal(scale=0.5, size=(68, 2))
        img = np.zeros((480, 640, 3), np.uint8)
        img[0, 0, 0] = k
        stills.append((f"s{k}", img, cam))
        marks.append(pts)

    class Detector:
        scheme = "ibug68"

        def detect(self, img):
            return marks[int(img[0, 0, 0])], np.ones(68)

    return stills, Detector


def test_still_fits_in_workers_are_the_in_process_fits(monkeypatch):
    from deage_plugins.digital_human import young
    from reconstruct.face.store import load_demo

    model = load_demo()
    stills, Detector = _stills(model)
    monkeypatch.setattr(young, "pick_detector", lambda components, m, name=None: Detector())
    components = SimpleNamespace(face_model=lambda name: model)
    here = young.stills_identity(model, stills, components, n_identity=8, each=True)
    ex = Recording(components)
    there = young.stills_identity(model, stills, components, n_identity=8, each=True, executor=ex,
                                  model_name="demo")
    ex.close()
    assert ex.calls == [("fit_still", 4)]  # one work item per still
    assert here.shape[0] == 4 and np.abs(here).max() > 0.05  # real fits, not zeros (measured max 1.70)
    np.testing.assert_array_equal(there, here)
