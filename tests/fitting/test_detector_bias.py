"""The learned detector bias (reconstruct/face/detector_bias.py): the shipped file, its learning and the fit with it.

The shipped file's own validation (held-out renders, MediaPipe) is in docs/fitting.md and tools/learn_landmark_bias.py
``check``; here the machinery is checked on synthetic truth without rendering."""

import numpy as np
import pytest

from reconstruct.errors import FaceModelError
from reconstruct.face.detector_bias import BiasSample, builtin_bias, learn_bias, load_bias, view_features
from reconstruct.fitting.fit import fit_sequence, world_vertices
from reconstruct.fitting.landmark_basis import LandmarkBasis
from reconstruct.fitting.solver import FitSettings
from reconstruct.fitting.synthetic import (make_sequence, observe_biased, three_camera_rig,
                                           vertex_error)

SCHEME = "mediapipe478"


@pytest.fixture(scope="module")
def bias(ict_model):
    b = builtin_bias(ict_model, SCHEME)
    assert b is not None, "the ICT / MediaPipe detector bias must ship with the package"
    return b


def test_shipped_bias_matches_the_model(ict_model, bias):
    n = ict_model.landmark_map(SCHEME).triangle.shape[0]
    assert bias.offset.shape == (n, 3) and bias.expression.shape == (n, 3, ict_model.n_expression)
    learned = bias.samples > 0
    # every surface landmark learned (468; the 10 iris points have no surface point); measured 468 of 478
    assert learned.sum() >= 460
    # median offset of the detector from the computed correspondence: measured 3.9 mm (MediaPipe on renders sits
    # ~4 mm along the surface from it, docs/fitting.md); tolerance 1-8 mm
    med = np.median(np.linalg.norm(bias.offset[learned], axis=1))
    assert 0.001 < med < 0.008, med


def test_bias_refuses_another_model_or_scheme(ict_model, bias, tmp_path):
    with pytest.raises(FaceModelError, match="does not fit model"):
        bias.check(ict_model, "ibug68")
    bad = tmp_path / "bias.npz"
    np.savez(bad, offset=np.zeros((3, 3)))
    with pytest.raises(FaceModelError, match="not a detector bias file"):
        load_bias(bad)


def test_bias_file_records_its_contour_placement(bias, tmp_path):
    """The contour placement a bias was learned on survives a save / load; a file written before the field existed
    reads as learned on the computed contours; an unknown placement is refused."""
    from dataclasses import replace

    path = tmp_path / "b.npz"
    replace(bias, contours="lids").save(path)
    assert load_bias(path).contours == "lids"
    old = dict(np.load(path))
    del old["contours"]
    np.savez(tmp_path / "old.npz", **old)
    assert load_bias(tmp_path / "old.npz").contours == "computed"
    old["contours"] = np.array("mouth")
    np.savez(tmp_path / "bad.npz", **old)
    with pytest.raises(FaceModelError, match="unknown contour placement"):
        load_bias(tmp_path / "bad.npz")


def test_biased_basis_is_the_correspondence_plus_the_offset(ict_model, bias):
    rng = np.random.default_rng(0)
    alpha = rng.standard_normal(ict_model.n_identity)
    beta = rng.uniform(0, 0.6, ict_model.n_expression)
    basis = LandmarkBasis.from_model(ict_model, SCHEME, bias=bias)
    L = (basis.mean + basis.A @ torch_(alpha) + basis.B @ torch_(beta)).numpy()
    lm = ict_model.landmark_map(SCHEME)
    want = lm.points(ict_model.vertices(alpha, beta), ict_model.triangles) + bias.at(alpha, beta[None])[0]
    ok = lm.triangle >= 0
    assert np.abs(L[ok] - want[ok]).max() < 1e-9  # exact: the bias is linear in the coefficients


def torch_(a):
    import torch

    return torch.as_tensor(a, dtype=torch.float64)


def test_learning_recovers_a_planted_bias(ict_model):
    """Hits = correspondence + a known linear offset (+ 0.1 mm noise per axis): ridge regression gets it back."""
    rng = np.random.default_rng(1)
    lm = ict_model.landmark_map(SCHEME)
    n = lm.triangle.shape[0]
    k = 10
    d = rng.normal(0, 0.003, (n, 3))
    E = rng.normal(0, 0.002, (n, 3, ict_model.n_expression))
    Ai = rng.normal(0, 0.0005, (n, 3, k))
    V = rng.normal(0, 0.002, (n, 3, 5))
    samples = []
    for _ in range(160):
        a = rng.standard_normal(ict_model.n_identity)
        e = rng.uniform(0, 1, ict_model.n_expression) * (rng.random(ict_model.n_expression) < 0.2)
        yaw, pitch = rng.uniform(-0.6, 0.6), rng.uniform(-0.3, 0.3)
        v = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        corr = lm.points(ict_model.vertices(a, e), ict_model.triangles)
        off = d + E @ e + Ai @ a[:k] + V @ view_features(v)[:5]
        hits = corr + off + rng.normal(0, 0.0001, (n, 3))
        hits[lm.triangle < 0] = np.nan
        samples.append(BiasSample(a, e, v, hits))
    b = learn_bias(ict_model, SCHEME, samples, identity_modes=k, ridge=1e-6)
    ok = lm.triangle >= 0
    test = [(rng.standard_normal(ict_model.n_identity), rng.uniform(0, 0.5, ict_model.n_expression)) for _ in range(5)]
    err = []
    for a, e in test:
        want = d + E @ e + Ai @ a[:k] + V @ view_features(np.array([0.2, -0.1, 0.97]))[:5]
        got = b.at(a, e[None], np.array([[0.2, -0.1, 0.97]]))[0]
        err.append(np.linalg.norm(got - want, axis=1)[ok].mean())
    print("planted bias recovered to (mm)", np.round(1e3 * np.array(err), 3), "spread", 1e3 * np.median(b.spread[ok]))
    # tolerance 0.25 mm mean (offsets are ~5-10 mm; 160 samples, 69 features, 0.17 mm noise); measured 0.12-0.14 mm
    assert max(err) < 0.00025, err
    # the scatter left is the planted noise: 0.1 mm per axis -> 0.17 mm RMS, less the fitted dofs; measured 0.13 mm
    assert 0.00008 < np.median(b.spread[ok]) < 0.00025


def test_learning_recovers_a_view_term_of_degree_four(ict_model, tmp_path):
    """A planted offset quartic in the view direction: a degree-4 view term gets it back, the quadratic one cannot;
    the file keeps the degree through save / load."""
    rng = np.random.default_rng(2)
    lm = ict_model.landmark_map(SCHEME)
    n = lm.triangle.shape[0]
    ok = lm.triangle >= 0
    V = rng.normal(0, 0.004, (n, 3, 14))

    def view(yaw, pitch):
        return np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])

    samples = []
    for _ in range(120):
        v = view(rng.uniform(-0.7, 0.7), rng.uniform(-0.4, 0.4))
        a, e = np.zeros(ict_model.n_identity), np.zeros(ict_model.n_expression)
        hits = lm.points(ict_model.vertices(a, e), ict_model.triangles) + V @ view_features(v)
        hits[~ok] = np.nan
        samples.append(BiasSample(a, e, v, hits))
    test = view(0.6, -0.35)
    want = V @ view_features(test)
    err = {}
    for degree in (2, 4):
        b = learn_bias(ict_model, SCHEME, samples, identity_modes=0, ridge=1e-3, view_ridge=1e-9, view_degree=degree)
        err[degree] = np.linalg.norm(b.at(np.zeros(0), np.zeros((1, ict_model.n_expression)), test[None])[0]
                                     - want, axis=1)[ok].mean()
        assert b.view_degree == degree
    print("planted quartic view term recovered to (mm)", {d: round(1e3 * e, 3) for d, e in err.items()})
    # measured: degree 4 0.000 mm (noise-free data), degree 2 0.32 mm at this view; tolerances 0.05 / > 0.2 mm
    assert err[4] < 5e-5 and err[2] > 2e-4, err
    b.save(tmp_path / "v4.npz")
    b4 = load_bias(tmp_path / "v4.npz")
    assert b4.view_degree == 4 and np.allclose(b4.view, b.view, atol=1e-6)


def test_a_quadratic_view_file_means_what_it_did(bias, tmp_path):
    """A file written before the view term's degree could be chosen (5 view features, no contours field) loads with
    its view offsets padded with zeros to the 14 features: its offsets are the quadratic model's."""
    old = {k: v for k, v in np.load(builtin_path(), allow_pickle=False).items() if k != "contours"}
    old["view"] = old["view"][..., :5]
    np.savez(tmp_path / "old.npz", **old)
    b = load_bias(tmp_path / "old.npz")
    assert b.view.shape[2] == 14 and b.view_degree == 2 and b.contours == "computed"
    v = np.array([[0.3, -0.2, 0.93]])
    x, y = v[0, 0], v[0, 1]
    quad = np.einsum("ndk,k->nd", old["view"].astype(np.float64), [x, y, x * x, y * y, x * y])
    np.testing.assert_allclose(b.at(np.zeros(0), np.zeros((1, b.expression.shape[2])), v)[0] - b.offset, quad,
                               atol=1e-12)


def builtin_path():
    from reconstruct import assets

    return assets.detector_bias_path("ict", SCHEME)


def test_shipped_bias_is_quartic_in_the_view_and_learned_on_the_lid_lines(ict_model, bias):
    """The shipped file (docs/fitting.md "Detector bias"): view term of degree 4, learned with the eye contours on
    the model's lid lines, so the default fit (fit.lips=edges, fit.lids=edges) keeps its lid slopes and re-expresses
    only the inner-lip points."""
    from reconstruct.fitting.lip_anchor import anchor_inner_lips

    assert bias.view_degree == 4 and bias.contours == "lids"
    _, b = anchor_inner_lips(ict_model, SCHEME, bias)
    upper_lid = [159, 386]  # MediaPipe's upper-lid midpoints
    assert np.abs(b.expression[upper_lid]).max() > 0 and not b.expression[[13, 14]].any()


def test_fit_with_the_bias_undoes_it(ict_model, bias, face_region):
    """Landmarks where the biased detector would put them (the shipped bias, its view term per camera, 1 px
    noise): the fit with the bias recovers the face; the bare correspondence bends the shape."""
    cams = three_camera_rig()
    seq = make_sequence(ict_model, frames=6, seed=7)
    obs, conf = observe_biased(ict_model, seq, cams, SCHEME, bias)
    errs = {}
    for name, b in (("bias", bias), ("bare", None)):
        sol = fit_sequence(ict_model, SCHEME, cams, obs, conf, FitSettings(), bias=b)
        errs[name] = vertex_error(world_vertices(ict_model, sol), seq.vertices, face_region)
    print({k: round(1e3 * v, 2) for k, v in errs.items()})
    # tolerance 0.6 mm with the bias; measured 0.28 mm (bare correspondence: 4.72 mm)
    assert errs["bias"] < 0.0006
    assert errs["bare"] > 3 * errs["bias"]


def test_stage_smooths_more_with_a_bias():
    """With the bias the residuals halve and auto_sigma weighs the data more: the stage's default smoothing doubles
    (jitter of the error below the bare fit's, tests/fitting/test_extreme_fit.py); an explicit fit.smooth wins."""
    from deage_plugins.fit_stage import FitStageSettings
    from reconstruct.fitting.solver import BIAS_SMOOTH, FitSettings

    base = FitSettings()
    assert FitStageSettings().solver(False) == base
    s = FitStageSettings().solver(True)
    assert BIAS_SMOOTH == 2.0 and np.isclose(s.smooth_expression, base.smooth_expression / 2)
    assert np.isclose(s.smooth_rotation, base.smooth_rotation / 2)
    assert FitStageSettings(smooth=1.0).solver(True) == base
    assert FitStageSettings(smooth=0.0).solver(True).smooth_rotation == 0.0


def test_one_view_leaves_out_the_identity_term(bias):
    one = bias.for_views(1)
    assert bias.for_views(3) is bias
    assert not one.identity.any() and np.array_equal(one.offset, bias.offset)
    assert np.array_equal(one.expression, bias.expression) and np.array_equal(one.view, bias.view)


def test_stage_bias_option(ict_model, tmp_path):
    """fit.bias: auto -> the shipped file for ICT / MediaPipe, none -> bare, a missing file -> a clear error."""
    from deage_plugins.fit_stage import FitStageSettings

    assert FitStageSettings().detector_bias(ict_model, SCHEME) is not None
    assert FitStageSettings(bias="none").detector_bias(ict_model, SCHEME) is None
    assert FitStageSettings().detector_bias(ict_model, "ibug68") is None  # nothing ships for that scheme
    with pytest.raises(FaceModelError, match="cannot read") as exc:
        FitStageSettings(bias=str(tmp_path / "missing.npz")).detector_bias(ict_model, SCHEME)
    assert "learn_landmark_bias" in exc.value.hint
