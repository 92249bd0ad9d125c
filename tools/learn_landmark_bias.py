"""Learn MediaPipe's landmark bias on the built-in ICT model from rendered faces with known truth
(reconstruct/face/detector_bias.py; docs/fitting.md "Detector bias").

    # render + detect N random faces (identity, expression, pose, camera, RGB or IR) -> training detections
    .venv/bin/python tools/learn_landmark_bias.py render data_a.npz --samples 2000 --seed 1
    # fit the bias model on one or more such files (identities of other seeds stay unseen) -> bias file
    .venv/bin/python tools/learn_landmark_bias.py learn bias.npz data_a.npz data_b.npz [--identity-modes 100]
                                                 [--contours lips+lids]
    # held-out check: mean distance of the detections to the plain and the biased correspondence
    .venv/bin/python tools/learn_landmark_bias.py check bias.npz data_c.npz

``--contours``: the placement of MediaPipe's inner-lip and eye contours the offsets are learned against
(reconstruct/fitting/lip_anchor.py; default ``lips+lids``, the fit stage's ``fit.lips=edges fit.lids=edges``;
``computed``: the bare correspondence). ``check`` measures against the placement the file records.

``--expression-view RIDGE``: also learn the expression x view term (docs/fitting.md "The expression x view term").

The shipped file (reconstruct/assets/detector_bias/ict_mediapipe478.npz) is ``learn --contours lids --view-degree 4
--view-ridge 1e-5`` (other settings default) over ``render --samples 2000`` with seeds 1 and 2 (~15 min each on 2
cores); held out: seed 3, 500 faces (reconstruct/assets/SOURCES.md, docs/fitting.md). The opt-in variant with the
expression x view term (``ict_mediapipe478_xview.npz``, ``fit.bias=xview``) is the same plus ``--expression-view
1e-3``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")


def load_model(contours: str = "computed"):
    """The built-in ICT model with the MediaPipe map, its contours placed as ``contours`` says."""
    from reconstruct.face.store import load_builtin_ict
    from reconstruct.fitting.lip_anchor import anchor_inner_lips
    from reconstruct.fitting.pipeline import ensure_scheme

    on = contours.split("+")
    return anchor_inner_lips(ensure_scheme(load_builtin_ict(), "mediapipe478"), "mediapipe478", None,
                             lips="lips" in on, eyes="lids" in on)[0]


def render(out: Path, samples: int, seed: int) -> None:
    """Render ``samples`` random faces and detect them; saves (every 50) what the learning needs: coefficients,
    head pose, camera and the detected points."""
    import importlib

    from reconstruct.render.raycast import RaycastRenderer
    from reconstruct.synth.detector_data import random_sample
    from reconstruct.synth.imaging import render_view

    landmarks = importlib.import_module("deage_plugins.landmarks")
    model = load_model()
    det = landmarks.MediaPipeFaceMesh()
    renderer = RaycastRenderer()
    rng = np.random.default_rng(seed)
    rec: dict[str, list] = {k: [] for k in ("identity", "expression", "R", "t", "K", "dist", "Rc", "tc", "size", "uv",
                                            "sensor")}
    t0 = time.perf_counter()
    for i in range(samples):
        s = random_sample(model, rng)
        img = render_view(renderer, model, s.state, s.camera, s.spec, rng)
        found = det.detect(img)
        if found is not None:
            c = s.camera
            for k, v in (("identity", s.state.identity), ("expression", s.state.expression), ("R", s.state.R),
                         ("t", s.state.t), ("K", c.K), ("dist", c.dist), ("Rc", c.R), ("tc", c.t),
                         ("size", c.image_size), ("uv", found[0]), ("sensor", s.spec.sensor)):
                rec[k].append(v)
        if (i + 1) % 50 == 0 or i + 1 == samples:
            np.savez_compressed(out, seed=seed, **{k: np.array(v) for k, v in rec.items()})
            print(f"{i + 1}/{samples} rendered, {len(rec['uv'])} detected, {time.perf_counter() - t0:.0f} s", flush=True)


def read_samples(paths, model):
    """:class:`BiasSample` of every detection in the ``render`` files (surface hits cached beside each file)."""
    from reconstruct.camera import CameraModel
    from reconstruct.face.detector_bias import BiasSample, surface_hits, view_centre

    out = []
    for p in map(Path, paths):
        d = np.load(p)
        cache = p.with_suffix(".hits.npy")
        if cache.exists() and np.load(cache).shape[0] == len(d["uv"]):
            hits = np.load(cache)
        else:
            hits = np.stack([surface_hits(model, d["identity"][i], d["expression"][i], d["R"][i], d["t"][i],
                                          CameraModel("s", d["K"][i], d["dist"][i], d["Rc"][i], d["tc"][i],
                                                      tuple(int(x) for x in d["size"][i])),
                                          d["uv"][i].astype(np.float64)) for i in range(len(d["uv"]))])
            np.save(cache, hits)
        centres = np.einsum("sji,sj->si", d["Rc"], -d["tc"])  # camera centres in world: -Rc^T tc
        v = np.einsum("sji,sj->si", d["R"], centres - d["t"]) - view_centre(model)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out += [BiasSample(a.astype(np.float64), e.astype(np.float64), vv, h) for a, e, vv, h in
                zip(d["identity"], d["expression"], v, hits)]
    return out


def check(model, bias, samples) -> dict:
    """Mean distance (mm) of held-out detections' surface hits to the plain correspondence and to the biased one,
    over the landmarks with a correspondence."""
    lm = model.landmark_map(bias.scheme)
    plain, biased = [], []
    for s in samples:
        corr = lm.points(model.vertices(s.identity, s.expression), model.triangles)
        pred = corr + bias.at(s.identity, s.expression[None], s.view[None])[0]
        ok = np.isfinite(s.hits).all(1) & (lm.triangle >= 0) & (np.linalg.norm(s.hits - corr, axis=1) < 0.02)
        plain.append(np.linalg.norm(s.hits - corr, axis=1)[ok].mean())
        biased.append(np.linalg.norm(s.hits - pred, axis=1)[ok].mean())
    return {"plain_mm": 1e3 * float(np.mean(plain)), "biased_mm": 1e3 * float(np.mean(biased)), "n": len(samples)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=("render", "learn", "check"))
    ap.add_argument("out", type=Path)
    ap.add_argument("data", type=Path, nargs="*")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--identity-modes", type=int, default=100)
    ap.add_argument("--ridge", type=float, default=1e-3)
    ap.add_argument("--view-degree", type=int, default=2, choices=(1, 2, 3, 4),
                    help="learn: degree of the view term in the view direction's x, y")
    ap.add_argument("--view-ridge", type=float, default=None, help="learn: ridge on the view slopes (default --ridge)")
    ap.add_argument("--expression-view", type=float, default=None, metavar="RIDGE",
                    help="learn: also an expression x view term (expression weights times the view direction's x, y) "
                         "with this ridge on its slopes")
    ap.add_argument("--contours", default="lips+lids", choices=("computed", "lips", "lids", "lips+lids"),
                    help="learn: the placement of MediaPipe's inner-lip / eye contours to learn against")
    a = ap.parse_args(argv)
    if a.cmd == "render":
        render(a.out, a.samples, a.seed)
        return
    from reconstruct.face.detector_bias import learn_bias, load_bias

    bias = load_bias(a.out) if a.cmd == "check" else None
    model = load_model(a.contours if bias is None else bias.contours)
    samples = read_samples(a.data, load_model())  # surface hits: on the bare correspondence (the cached ones)
    if a.cmd == "learn":
        bias = learn_bias(model, "mediapipe478", samples, identity_modes=a.identity_modes, ridge=a.ridge,
                          contours=a.contours, view_degree=a.view_degree, view_ridge=a.view_ridge,
                          expression_view_ridge=a.expression_view)
        bias.save(a.out)
        print(f"{len(samples)} samples; median spread {1e3 * np.median(bias.spread[bias.samples > 0]):.2f} mm; "
              f"median |offset| {1e3 * np.median(np.linalg.norm(bias.offset, axis=1)):.2f} mm -> {a.out}")
    else:
        print(check(model, bias, samples))


if __name__ == "__main__":
    main()
