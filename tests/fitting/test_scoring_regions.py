"""The scoring regions (the fit report's per-region jitter, tools/fit_lab.py's errors) computed the fast way (kd-tree
search of the face's vertices only, stopped just beyond each radius) equal their definition: face vertices within
the radius of the model's region in the mean shape."""

import numpy as np
from scipy.spatial import cKDTree

from reconstruct.fitting.scoring import BROW_RADIUS_M, EYE_RADIUS_M, MOUTH_RADIUS_M, regions


def test_regions_equal_their_definition(ict_model, face_region):
    got = regions(ict_model, face_region)
    mean = ict_model.mean.astype(np.float64)
    for name, src, r in (("mouth", "lips", MOUTH_RADIUS_M), ("eyes", "eyes", EYE_RADIUS_M),
                         ("brows", "brows", BROW_RADIUS_M)):
        d, _ = cKDTree(mean[np.asarray(ict_model.regions[src])]).query(mean)  # every vertex's nearest distance
        np.testing.assert_array_equal(got[name], face_region & (d <= r))
        assert got[name].sum() > 100  # measured on ICT with MediaPipe's face: mouth 1567, eyes 1232, brows 594
    np.testing.assert_array_equal(got["face"], face_region)
